"""tagport: export the users of a user tag through GrowingIO CDP 2.9's OpenAPI."""

__version__ = "0.1.0"
