"""The result store's interface, and the one function that builds it from the settings.

An attempt always writes into a local work dir, `<work_root>/<job name>/.work-<attempt>`.
Publishing then has two steps around the FINISH transaction (jobs/runner.py):

- `upload`, before it: an object store copies the files out (readers cannot reach them
  until the job's files are recorded); a directory does nothing;
- `place`, inside it: a directory renames the files into the job's folder (the same
  filesystem, so no copy); an object store does nothing, the transaction only records.

A worker whose FINISH is refused calls `discard` and has then published nothing.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

from tagport.config import Settings
from tagport.errors import ConfigError

OBJECT_PROTOCOLS = ("s3", "s3a")


@dataclass(frozen=True)
class StoredObject:
    """A published file in an object store: the client fetches it from there."""

    name: str  # the file name, as in the job's uri
    key: str  # `bucket/prefix/...`, as fsspec names it


class ResultStore(ABC):
    """Where finished result files live."""

    url: str  # for people: the directory or the `s3://` URL
    work_root: Path  # local; attempts write into `<work_root>/<job name>/.work-<attempt>`

    @abstractmethod
    def upload(self, job_name: str, attempt: int, files: list[Path]) -> None:
        """Before the FINISH transaction: make the files readable once they are recorded."""

    @abstractmethod
    def place(self, job_name: str, attempt: int, files: list[Path]) -> None:
        """Inside the FINISH transaction: put the files where downloads find them."""

    @abstractmethod
    def discard(self, job_name: str, attempt: int) -> None:
        """The attempt did not publish (its FINISH was refused, or it failed after
        `upload` began): remove what its `upload` put out."""

    @abstractmethod
    def delete(self, job_name: str) -> None:
        """Remove every file of a job: it failed for good, or its files expired."""

    @abstractmethod
    def locate(self, job_name: str, attempt: int, file_name: str) -> Path | StoredObject | None:
        """A published file: a local path to stream, an object to redirect to, or None
        when it is gone."""

    @abstractmethod
    def location(self, job_name: str, attempt: int, file_name: str) -> str:
        """Where a published file is, for people (`tagport jobs show`); no I/O."""

    def presigned_url(self, found: StoredObject, content_type: str, disposition: str,
                      expires: timedelta) -> str:
        """A URL that serves `found` for `expires` with these response headers."""
        raise NotImplementedError(f"{self.url} serves its files itself")

    def fetch(self, found: StoredObject, dest: Path) -> None:
        """Copy a published object to a local file (`tagport export`)."""
        raise NotImplementedError(f"{self.url} holds no objects")


def open_result_store(settings: Settings) -> ResultStore:
    """The store `TAGPORT_RESULT_URL` names through fsspec; default the result dir."""
    from tagport.results.directory import DirectoryResultStore

    if not settings.result_url:
        return DirectoryResultStore(settings.results_path)
    fs, root = _filesystem(settings.result_url, settings.result_storage_options or {})
    if _protocols(fs) & {"file", "local"}:
        return DirectoryResultStore(Path(root).expanduser().resolve())
    if _protocols(fs) & set(OBJECT_PROTOCOLS):
        from tagport.results.objects import ObjectResultStore

        return ObjectResultStore(fs, root.rstrip("/"), settings.result_url.rstrip("/"),
                                 settings.results_path)
    raise ConfigError(f"TAGPORT_RESULT_URL={settings.result_url!r}: only a directory "
                      "(a path or file://) or s3:// is supported")


def _filesystem(url: str, options: dict[str, Any]) -> tuple[Any, str]:
    from fsspec.core import url_to_fs

    if url.split("://", 1)[0] in OBJECT_PROTOCOLS:
        # another process (an API node, a worker) adds and deletes objects: never answer
        # from a stale listing; presign with SigV4, which every region accepts
        config = {"signature_version": "s3v4", **options.get("config_kwargs", {})}
        options = {"use_listings_cache": False, **options, "config_kwargs": config}
    try:
        return url_to_fs(url, **options)
    except ImportError as exc:
        raise ConfigError(f"TAGPORT_RESULT_URL={url!r} needs the S3 support: "
                          f"pip install 'tagport[s3]' ({exc})") from exc
    except (ValueError, TypeError) as exc:
        raise ConfigError(f"TAGPORT_RESULT_URL={url!r} or TAGPORT_RESULT_STORAGE_OPTIONS "
                          f"is not usable: {exc}") from exc


def _protocols(fs: Any) -> set[str]:
    protocol = fs.protocol
    return {protocol} if isinstance(protocol, str) else set(protocol)
