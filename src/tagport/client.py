"""A Python client for tagport's HTTP API (and GrowingIO CDP 2.9's, which it follows).

    from tagport.client import Client

    with Client("http://127.0.0.1:8080", token) as client:
        [path] = client.export_tag("tag_rfm", ["id_$basic_userId", "usr_gender"], dest="out/")

Errors the server answers with surface as `TagportAPIError` subclasses (one per HTTP
status) carrying the server's `code` and `message`; an export that ends in ERROR raises
`JobFailedError`. Network failures stay httpx's own `httpx.TransportError`s.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote

import httpx

ProgressCallback = Callable[[int, int | None], None]  # bytes so far, total (when known)
StageCallback = Callable[[dict[str, Any]], None]  # each job result seen while polling

FINAL_STAGES = ("FINISH", "ERROR")


class TagportAPIError(Exception):
    """An error answer from the server: HTTP status, `code` and `message`."""

    status: int | None = None

    def __init__(self, code: str, message: str, *, status: int | None = None,
                 body: Any = None) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        if status is not None:
            self.status = status
        self.body = body


class BadRequestError(TagportAPIError):
    status = 400


class UnauthorizedError(TagportAPIError):
    status = 401


class ForbiddenError(TagportAPIError):
    status = 403


class NotFoundError(TagportAPIError):
    status = 404


class ConflictError(TagportAPIError):
    status = 409


class GoneError(TagportAPIError):
    status = 410


class PayloadTooLargeError(TagportAPIError):
    status = 413


class TooManyRequestsError(TagportAPIError):
    """Too many jobs queued; `retry_after` says when to try again (seconds)."""

    status = 429

    def __init__(self, code: str, message: str, *, retry_after: float | None = None,
                 **kwargs: Any) -> None:
        super().__init__(code, message, **kwargs)
        self.retry_after = retry_after


class ServerError(TagportAPIError):
    status = 500


def _no_worker(result: dict[str, Any], grace: float) -> str:
    return (f"job {result['id']} is {result['stage']}, and no live worker has taken jobs "
            f"of its kind for {grace:g} s (the server runs with --no-worker, or its workers "
            "stopped or died): start `tagport worker` on a machine that reaches the "
            "server's metadata store, or the server without --no-worker, then run the "
            "command again (the job stays queued and runs then)")


class JobFailedError(TagportAPIError):
    """The export job ended in ERROR; `job` is its last result document."""

    def __init__(self, job: dict[str, Any]) -> None:
        error = job.get("error") or {}
        super().__init__(error.get("code", "EXPORT_FAILED"),
                         error.get("message", "the export job failed"), body=job)
        self.job = job


_BY_STATUS: dict[int, type[TagportAPIError]] = {
    cls.status: cls for cls in (BadRequestError, UnauthorizedError, ForbiddenError,
                                NotFoundError, ConflictError, GoneError, PayloadTooLargeError,
                                TooManyRequestsError)  # type: ignore[misc]
}


def error_from(response: httpx.Response) -> TagportAPIError:
    """The typed error for an error response (its JSON `code`/`message` when it has them)."""
    try:
        body = response.json()
        code, message = str(body["code"]), str(body["message"])
    except (ValueError, KeyError, TypeError):
        body = response.text
        code, message = f"HTTP_{response.status_code}", response.text or response.reason_phrase
    status = response.status_code
    cls = _BY_STATUS.get(status) or (ServerError if status >= 500 else TagportAPIError)
    if cls is TooManyRequestsError:
        retry = response.headers.get("Retry-After")
        return TooManyRequestsError(code, message, status=status, body=body,
                                    retry_after=float(retry) if retry else None)
    return cls(code, message, status=status, body=body)


class Client:
    """One API token against one tagport server; reuse it (it keeps connections open)."""

    def __init__(
        self, base_url: str, token: str, *, language: str | None = None,
        timeout: float = 60.0, transport: httpx.BaseTransport | None = None,
        poll_interval: float = 0.2, max_poll_interval: float = 5.0,
        download_retries: int = 5, no_worker_grace: float = 10.0,
    ) -> None:
        headers = {"Authorization": f"Bearer {token}"}
        if language:
            headers["language"] = language
        self._http = httpx.Client(base_url=base_url.rstrip("/"), headers=headers,
                                  timeout=timeout, transport=transport)
        self.poll_interval = poll_interval
        self.max_poll_interval = max_poll_interval
        self.download_retries = download_retries
        self.no_worker_grace = no_worker_grace
        self._default_project: str | None = None

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    def _call(self, method: str, url: str, **kwargs: Any) -> Any:
        response = self._http.request(method, url, **kwargs)
        if response.status_code >= 400:
            raise error_from(response)
        return response.json()

    # -- reading -------------------------------------------------------------------

    def list_tags(self, page_size: int = 1000) -> list[dict[str, Any]]:
        """Every user tag with its value type and coverage (`detector`)."""
        tags: list[dict[str, Any]] = []
        while True:
            page = self._call("GET", "/v1/api/user_tags",
                              params={"limit": page_size, "offset": len(tags)})
            tags += page["values"]
            if not page["hasNextPage"]:
                return tags

    def tag_users(self, tag_key: str, properties: Sequence[str] = (), *, limit: int = 1000,
                  offset: int = 0) -> dict[str, Any]:
        """One page of the users a tag covers: `values`, `totalCount`, `hasNextPage`..."""
        params: dict[str, Any] = {"limit": limit, "offset": offset}
        if properties:
            params["properties"] = list(properties)
        return self._call(  # type: ignore[no-any-return]
            "GET", f"/v1/api/user_tags/{quote(tag_key, safe='')}/users", params=params)

    def iter_tag_users(self, tag_key: str, properties: Sequence[str] = (),
                       page_size: int = 1000) -> Iterator[dict[str, Any]]:
        """Every user the tag covers, page after page, in gio_id order."""
        offset = 0
        while True:
            page = self.tag_users(tag_key, properties, limit=page_size, offset=offset)
            yield from page["values"]
            if not page["hasNextPage"]:
                return
            offset += len(page["values"])

    def user(self, user_key: str, value: str) -> dict[str, Any] | None:
        """One user found by an identity value (`user_key` like `$basic_userId`), in
        GrowingIO's shape (`gioId`, identity lists, values as strings); None when no user
        holds it (the server's `gioId` "0")."""
        found: dict[str, Any] = self._call(
            "GET", f"/v1/api/users/{quote(user_key, safe='')}/{quote(value, safe='')}")
        return None if found.get("gioId") == "0" else found

    # -- exporting -----------------------------------------------------------------

    def submit_export(self, tag_key: str, properties: Sequence[str] = (),
                      file_format: str = "csv", header: str = "key", *,
                      compression: str = "none", charset: str = "UTF-8") -> dict[str, Any]:
        """Queue an export job; its `{"id", "name"}`. `file_format` csv, json or parquet;
        `compression` none, gzip or zstd; `charset` (csv) UTF-8, UTF-8-BOM or UTF-16LE."""
        return self._submit(f"/v1/api/user_tags/{quote(tag_key, safe='')}/export_jobs",
                            properties, file_format, header, compression, charset)

    def _submit(self, url: str, properties: Sequence[str], file_format: str, header: str,
                compression: str, charset: str) -> dict[str, Any]:
        body: dict[str, Any] = {"properties": list(properties), "fileFormat": file_format,
                                "csvHeaderType": header}
        if compression != "none":
            body["compression"] = compression
        if charset != "UTF-8":
            body["charset"] = charset
        return self._call("POST", url, json=body)  # type: ignore[no-any-return]

    def job_result(self, job_id: str) -> dict[str, Any]:
        return self._call("GET", f"/v1/api/job/result/{quote(job_id, safe='')}")  # type: ignore[no-any-return]

    def wait(self, job_id: str, *, timeout: float | None = None,
             on_stage: StageCallback | None = None) -> dict[str, Any]:
        """Poll until the job is FINISH (its result) or ERROR (JobFailedError), backing
        off from `poll_interval` to `max_poll_interval`. A job that no live worker takes
        (`liveWorkers` 0) for `no_worker_grace` seconds raises TagportAPIError NO_WORKER:
        nobody would run it (the job stays queued)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        interval = self.poll_interval
        nobody_since: float | None = None  # since when no live worker takes the job
        while True:
            result = self.job_result(job_id)
            if on_stage is not None:
                on_stage(result)
            if result["stage"] == "FINISH":
                return result
            if result["stage"] == "ERROR":
                raise JobFailedError(result)
            now = time.monotonic()
            if result.get("liveWorkers") != 0:  # a worker, or a server too old to say
                nobody_since = None
            elif nobody_since is None:
                nobody_since = now
            elif now - nobody_since >= self.no_worker_grace:
                raise TagportAPIError("NO_WORKER", _no_worker(result, self.no_worker_grace))
            if deadline is not None and now + interval > deadline:
                raise TimeoutError(f"job {job_id} is still {result['stage']} after {timeout} s")
            time.sleep(interval)
            interval = min(interval * 1.5, self.max_poll_interval)

    def export_tag(
        self, tag_key: str, properties: Sequence[str] = (), file_format: str = "csv",
        header: str = "key", dest: str | os.PathLike[str] | None = None, *,
        timeout: float | None = None, on_stage: StageCallback | None = None,
        on_progress: ProgressCallback | None = None, compression: str = "none",
        charset: str = "UTF-8",
    ) -> list[Path]:
        """Submit, wait, download: the paths of the job's files, in order.

        `dest` is a directory (existing, or ending in `/`; the files keep the server's
        names) or a file path (several parts get `-00001`... before the suffix); default
        the current directory.
        """
        job = self.submit_export(tag_key, properties, file_format, header,
                                 compression=compression, charset=charset)
        return self._fetch_job(job, dest, timeout, on_stage, on_progress)

    def _fetch_job(self, job: dict[str, Any], dest: str | os.PathLike[str] | None,
                   timeout: float | None, on_stage: StageCallback | None,
                   on_progress: ProgressCallback | None) -> list[Path]:
        result = self.wait(job["id"], timeout=timeout, on_stage=on_stage)
        targets = destinations(result["uris"], dest)
        return [self.download(uri, target, on_progress=on_progress)
                for uri, target in zip(result["uris"], targets, strict=True)]

    # -- segments (a project's; default: the default project) -----------------------

    def projects(self) -> list[dict[str, Any]]:
        """The projects, the default project first."""
        return self._call("GET", "/v1/api/projects")["values"]  # type: ignore[no-any-return]

    def _segments_url(self, project: str | None, key: str | None = None) -> str:
        if project is None:
            if self._default_project is None:
                self._default_project = self.projects()[0]["id"]
            project = self._default_project
        url = f"/v1/api/projects/{quote(project, safe='')}/segment_profiles"
        return url if key is None else f"{url}/{quote(key, safe='')}"

    def list_segments(self, *, project: str | None = None) -> list[dict[str, Any]]:
        """Every segment of the project, with its detector (`stage`, `totalUsers`)."""
        segments: list[dict[str, Any]] = []
        while True:
            page = self._call("GET", self._segments_url(project),
                              params={"limit": 1000, "offset": len(segments)})
            segments += page["values"]
            if not page["hasNextPage"]:
                return segments

    def segment(self, key: str, *, project: str | None = None) -> dict[str, Any]:
        return self._call("GET", self._segments_url(project, key))  # type: ignore[no-any-return]

    def define_segment(self, key: str, name: str, definition: dict[str, Any] | None = None,
                       *, description: str = "", scheduler: str = "DAILY",
                       created_by: str = "DIRECT", wait: bool = False,
                       timeout: float | None = None, project: str | None = None
                       ) -> dict[str, Any]:
        """Create the segment, or change it when the key exists (an admin token); with
        `wait`, poll until its computation ends (`wait_segment`)."""
        body: dict[str, Any] = {"key": key, "name": name, "description": description,
                                "scheduler": scheduler, "createdBy": created_by}
        if definition is not None:
            body["definition"] = definition
        try:
            segment = self._call("POST", self._segments_url(project), json=body)
        except ConflictError as exc:
            if exc.code != "SEGMENT_EXISTS":
                raise
            segment = self._call("PUT", self._segments_url(project, key), json=body)
        return self.wait_segment(key, timeout=timeout, project=project) if wait else segment

    def wait_segment(self, key: str, *, timeout: float | None = None,
                     project: str | None = None) -> dict[str, Any]:
        """Poll the segment until its computation is no longer queued or running; a
        computation that failed raises TagportAPIError with the detector's error."""
        deadline = None if timeout is None else time.monotonic() + timeout
        interval = self.poll_interval
        while True:
            segment = self.segment(key, project=project)
            stage = segment["detector"]["stage"]
            if stage == "ERROR":
                raise TagportAPIError(segment["detector"]["error"]["code"],
                                      segment["detector"]["error"]["message"])
            if stage != "RUNNING":
                return segment
            if deadline is not None and time.monotonic() + interval > deadline:
                raise TimeoutError(f"segment {key} is still computing after {timeout} s")
            time.sleep(interval)
            interval = min(interval * 1.5, self.max_poll_interval)

    def estimate_segment(self, definition: dict[str, Any], *,
                         project: str | None = None) -> dict[str, Any]:
        """How many users a definition selects, quickly: `{"users", "totalUsers",
        "exact", "sampleRatio"}`."""
        url = self._segments_url(project).removesuffix("/segment_profiles")
        return self._call("POST", url + "/segment_estimates",  # type: ignore[no-any-return]
                          json={"definition": definition})

    def segment_portrait(self, key: str, properties: Sequence[str], *, top: int = 20,
                         bins: int = 10, project: str | None = None) -> dict[str, Any]:
        """群体画像: each key's values among the members against all users."""
        return self._call(  # type: ignore[no-any-return]
            "GET", self._segments_url(project, key) + "/portrait",
            params={"properties": list(properties), "top": top, "bins": bins})

    def segment_users(self, key: str, properties: Sequence[str] = (), *, limit: int = 1000,
                      offset: int = 0, project: str | None = None) -> dict[str, Any]:
        """One page of the segment's members, as `tag_users`."""
        params: dict[str, Any] = {"limit": limit, "offset": offset}
        if properties:
            params["properties"] = list(properties)
        return self._call("GET", self._segments_url(project, key) + "/users",  # type: ignore[no-any-return]
                          params=params)

    def upload_segment_members(self, key: str, path: str | os.PathLike[str], *,
                               project: str | None = None) -> dict[str, Any]:
        """A FROM_FILES segment's members from a CSV headed by an identity key (streamed):
        `{"values", "members", "unknown"}`."""
        with open(path, "rb") as f:
            return self._call(  # type: ignore[no-any-return]
                "POST", self._segments_url(project, key) + "/members", content=f,
                headers={"Content-Type": "text/csv"})

    def compute_segment(self, key: str, *, project: str | None = None) -> dict[str, Any]:
        return self._call(  # type: ignore[no-any-return]
            "POST", self._segments_url(project, key) + "/computes")

    def export_segment(
        self, key: str, properties: Sequence[str] = (), file_format: str = "csv",
        header: str = "key", dest: str | os.PathLike[str] | None = None, *,
        timeout: float | None = None, on_stage: StageCallback | None = None,
        on_progress: ProgressCallback | None = None, compression: str = "none",
        charset: str = "UTF-8", project: str | None = None,
    ) -> list[Path]:
        """`export_tag` for a segment's members: `{segment name}_{date}_UserList...`."""
        job = self._submit(self._segments_url(project, key) + "/export_jobs", properties,
                           file_format, header, compression, charset)
        return self._fetch_job(job, dest, timeout, on_stage, on_progress)

    def download(self, uri: str, dest: str | os.PathLike[str], *,
                 on_progress: ProgressCallback | None = None) -> Path:
        """Stream a result file to `dest` through a hidden temporary file, resuming with
        an HTTP Range request when the connection breaks; rename it once complete."""
        dest = Path(dest)
        dest.parent.mkdir(parents=True, exist_ok=True)
        part = dest.with_name(f".{dest.name}.part")
        try:
            with open(part, "wb") as f:
                self._fetch_into(f, uri, on_progress)
                f.flush()
                os.fsync(f.fileno())
            os.replace(part, dest)
        finally:
            part.unlink(missing_ok=True)
        return dest

    def _fetch_into(self, f: Any, uri: str, on_progress: ProgressCallback | None) -> None:
        url = f"/download?file={uri}"  # the uri is already percent-encoded, as returned
        have, total, failures = 0, None, 0
        while True:
            headers = {"Range": f"bytes={have}-"} if have else {}
            try:
                # results in S3 answer 307 to a presigned URL; httpx drops the token there
                with self._http.stream("GET", url, headers=headers,
                                       follow_redirects=True) as response:
                    if response.status_code >= 400:
                        response.read()
                        raise error_from(response)
                    if have and response.status_code != 206:  # the range was ignored
                        f.seek(0)
                        f.truncate()
                        have = 0
                    total = _total_size(response, have)
                    for chunk in response.iter_bytes():
                        f.write(chunk)
                        have += len(chunk)
                        if on_progress is not None:
                            on_progress(have, total)
                if total is None or have >= total:
                    return
                raise httpx.RemoteProtocolError("the body ended early")
            except httpx.TransportError:
                failures += 1
                if failures > self.download_retries:
                    raise
                time.sleep(min(0.2 * 2 ** (failures - 1), 5.0))


def _total_size(response: httpx.Response, offset: int) -> int | None:
    """The whole file's size: from Content-Range on a 206, else Content-Length."""
    if response.status_code == 206:
        _, _, size = response.headers.get("Content-Range", "").rpartition("/")
        return int(size) if size.isdigit() else None
    length = response.headers.get("Content-Length")
    return int(length) + offset if length and length.isdigit() else None


def destinations(uris: Sequence[str], dest: str | os.PathLike[str] | None) -> list[Path]:
    """Where each result file goes (see Client.export_tag)."""
    names = [unquote(uri).rsplit("/", 1)[-1] for uri in uris]
    if dest is None:
        return [Path(name) for name in names]
    target = Path(dest)
    if target.is_dir() or str(dest).endswith(("/", os.sep)):
        return [target / name for name in names]
    if len(uris) == 1:
        return [target]
    return [target.with_name(f"{target.stem}-{n:05d}{target.suffix}")
            for n in range(1, len(uris) + 1)]
