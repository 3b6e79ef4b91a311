"""Job ids, job names, result file names and their percent-encoded uris."""

from __future__ import annotations

import re
import secrets
import string
from datetime import datetime
from urllib.parse import quote

from tagport.exports.formats import OutputFormat

RESULTS_PREFIX = "/jobs/results"
_ID_ALPHABET = string.ascii_letters + string.digits
# characters that are unsafe in a file name on common systems, and control characters
_UNSAFE = re.compile(r'[\x00-\x1f\x7f/\\:*?"<>|]')
_MAX_NAME_BYTES = 200


def new_job_id() -> str:
    """8 letters/digits, like the seed's `kqQeWeGr`."""
    return "".join(secrets.choice(_ID_ALPHABET) for _ in range(8))


def new_job_name(now: datetime) -> str:
    """`DES-<yyyyMMddHHmm>-<13 digits>`, like the seed's `DES-202205240136-5818534160000`."""
    return f"DES-{now:%Y%m%d%H%M}-{secrets.randbelow(10**13):013d}"


def new_compute_name(now: datetime) -> str:
    """`CMP-<yyyyMMddHHmm>-<13 digits>`: a computation's job name, beside exports' DES-."""
    return "CMP" + new_job_name(now)[3:]


def result_file_name(display_name: str, day: datetime, output: OutputFormat) -> str:
    """`{display name}_{yyyy-MM-dd}_UserList.{extension}` (`csv`, `csv.gz`, `parquet`...),
    unsafe characters replaced."""
    safe = _UNSAFE.sub("_", display_name).strip(" .") or "tag"
    while len(safe.encode("utf-8")) > _MAX_NAME_BYTES:
        safe = safe[:-1]
    return f"{safe}_{day:%Y-%m-%d}_UserList.{output.extension}"


def part_name(file_name: str, number: int, extension: str) -> str:
    """The name of part `number` (from 1) of a result split into several files:
    `x_UserList.csv.gz` -> `x_UserList-00001.csv.gz` for `extension` `csv.gz`."""
    stem = file_name.removesuffix(f".{extension}")
    return f"{stem}-{number:05d}.{extension}"


def result_path(job_name: str, file_name: str) -> str:
    """The file's path as the API names it: `/jobs/results/<job name>/<file name>`."""
    return f"{RESULTS_PREFIX}/{job_name}/{file_name}"


def encode_uri(path: str) -> str:
    """Percent-encode every reserved character, slashes too, as the seed's `uris` do."""
    return quote(path, safe="")
