"""The export job and its stages."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from enum import StrEnum

from tagport.exports.formats import OutputFormat
from tagport.exports.spec import ExportRequest, output_format


class JobStage(StrEnum):
    """GrowingIO's own stages; a job moves left to right or ends in ERROR.

    NONE -> READY -> RUNNING -> DATA_READY -> FINISH
      \\________\\________\\___________\\-> ERROR
    """

    NONE = "NONE"  # submitted, waiting for a worker
    READY = "READY"  # claimed by a worker
    RUNNING = "RUNNING"  # the engine is writing the rows
    DATA_READY = "DATA_READY"  # rows written; the file is being finalised (synced, moved)
    FINISH = "FINISH"  # the file is in place; `uris` lists it
    ERROR = "ERROR"  # failed; `error` says why; no file is left

    @property
    def is_final(self) -> bool:
        return self in (JobStage.FINISH, JobStage.ERROR)


EXPORT = "export"
COMPUTE = "compute"

UNFINISHED = (JobStage.NONE, JobStage.READY, JobStage.RUNNING, JobStage.DATA_READY)
CLAIMED = (JobStage.READY, JobStage.RUNNING, JobStage.DATA_READY)


@dataclass(frozen=True)
class ExportJob:
    id: str
    name: str
    token_id: int | None
    tag_key: str
    properties: list[str]
    file_format: str
    header_type: str
    stage: JobStage
    created_at: datetime
    started_at: datetime | None = None
    finished_at: datetime | None = None
    attempts: int = 0
    files: tuple[str, ...] = ()  # API paths of the result files, in order, once FINISH
    row_count: int | None = None
    byte_count: int | None = None
    error_code: str | None = None
    error_message: str | None = None
    request_key: str | None = None  # the same token's identical request maps to this job
    expired_at: datetime | None = None  # when retention deleted the files
    claimed_by: str | None = None  # the worker running it (`host:pid:...`), while claimed
    lease_until: datetime | None = None  # the claim lapses then unless renewed
    compression: str = "none"
    charset: str = "UTF-8"
    kind: str = "export"  # | "compute": computes the tags listed in `properties`, in order
    as_of: date | None = None  # a computation's compute date

    @property
    def is_export(self) -> bool:
        return self.kind == EXPORT

    def request(self) -> ExportRequest:
        """The export request this job runs (validated again when it starts)."""
        return ExportRequest(self.tag_key, self.properties, self.file_format,
                             self.header_type, self.compression, self.charset)

    @property
    def output(self) -> OutputFormat:
        return output_format(self.request())


@dataclass(frozen=True)
class JobPage:
    """A page of jobs, and how many jobs there are in all."""

    jobs: list[ExportJob]
    total: int
