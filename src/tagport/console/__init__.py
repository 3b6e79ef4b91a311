"""The web console at `/console`: one HTML page, one script, one stylesheet, served from
the package. The page talks to the public API with the token from sessionStorage."""

from tagport.console.routes import install

__all__ = ["install"]
