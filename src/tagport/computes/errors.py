"""How a computation fails: the job that runs it ends in ERROR with this message."""

from __future__ import annotations

from tagport.errors import TagportError


class ComputeFailed(TagportError):
    """The tag's query failed (a SQL tag's mistake, a value that does not fit the tag's
    type); no value was touched. Running it again would fail alike: not retried."""

    status = 400
    code = "COMPUTE_FAILED"


class ComputeStopped(TagportError):
    """The computation was stopped (its job lost its claim or was cancelled) before it
    replaced any value."""

    status = 409
    code = "COMPUTE_STOPPED"
