"""Result files in an object store (S3, through fsspec's s3fs).

Attempts write into a local work dir; before the FINISH transaction each file is uploaded
to `<prefix>/<job name>/attempt-<n>/<file name>` (a PUT or multipart upload is atomic to
readers), and the transaction only records it. The attempt number is in the key because
a worker that lost its claim may still be uploading when its successor finishes: each
attempt writes and, when its FINISH is refused, deletes only its own objects. Downloads
find the object of the attempt that finished (the job's `attempts`, frozen at FINISH) and
are redirected to a presigned URL.
"""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path
from typing import Any

from tagport.errors import StorageError
from tagport.results.store import ResultStore, StoredObject

_ATTEMPT = re.compile(r"attempt-(\d+)")


class ObjectResultStore(ResultStore):
    def __init__(self, fs: Any, root: str, url: str, work_root: Path) -> None:
        self.fs = fs
        self.root = root  # `bucket/prefix`, as fsspec names it
        self.url = url  # `s3://bucket/prefix`, for people
        self.work_root = work_root

    def _prefix(self, job_name: str, attempt: int | None = None) -> str:
        prefix = f"{self.root}/{job_name}"
        return prefix if attempt is None else f"{prefix}/attempt-{attempt}"

    def upload(self, job_name: str, attempt: int, files: list[Path]) -> None:
        try:
            self._remove_earlier_attempts(job_name, attempt)
            for path in files:
                self.fs.put_file(str(path), f"{self._prefix(job_name, attempt)}/{path.name}")
        except Exception as exc:
            raise StorageError(f"uploading the result to {self.url} failed: "
                               f"{type(exc).__name__}: {exc}") from exc

    def _remove_earlier_attempts(self, job_name: str, attempt: int) -> None:
        """What interrupted attempts uploaded before their FINISH (they can never publish)."""
        try:
            entries = self.fs.ls(self._prefix(job_name), detail=False)
        except FileNotFoundError:
            return
        for entry in entries:
            match = _ATTEMPT.fullmatch(entry.rstrip("/").rsplit("/", 1)[-1])
            if match and int(match.group(1)) < attempt:
                self._remove(entry)

    def place(self, job_name: str, attempt: int, files: list[Path]) -> None:
        pass  # uploaded before the transaction, which only records them

    def discard(self, job_name: str, attempt: int) -> None:
        self._remove(self._prefix(job_name, attempt))

    def delete(self, job_name: str) -> None:
        self._remove(self._prefix(job_name))

    def _remove(self, prefix: str) -> None:
        try:
            self.fs.rm(prefix, recursive=True)
        except FileNotFoundError:
            pass
        except Exception as exc:
            raise StorageError(f"deleting {prefix} from {self.url} failed: "
                               f"{type(exc).__name__}: {exc}") from exc

    def locate(self, job_name: str, attempt: int, file_name: str) -> Path | StoredObject | None:
        key = f"{self._prefix(job_name, attempt)}/{file_name}"
        try:
            self.fs.info(key)
        except FileNotFoundError:
            return None
        except Exception as exc:
            raise StorageError(f"reading {self.url} failed: {type(exc).__name__}: {exc}") from exc
        return StoredObject(file_name, key)

    def location(self, job_name: str, attempt: int, file_name: str) -> str:
        return f"{self.url}/{job_name}/attempt-{attempt}/{file_name}"

    def presigned_url(self, found: StoredObject, content_type: str, disposition: str,
                      expires: timedelta) -> str:
        """A presigned GET whose response carries our Content-Type and Content-Disposition,
        so that following the redirect gives what a local download gives."""
        return str(self.fs.url(found.key, expires=int(expires.total_seconds()),
                               ResponseContentType=content_type,
                               ResponseContentDisposition=disposition))

    def fetch(self, found: StoredObject, dest: Path) -> None:
        self.fs.get_file(found.key, str(dest))
