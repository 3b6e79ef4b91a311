"""The one settings object. Nothing else in tagport reads os.environ."""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta, tzinfo
from functools import cached_property
from pathlib import Path
from typing import Any, Literal
from zoneinfo import ZoneInfo

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """Every setting, read from `TAGPORT_*` environment variables."""

    model_config = SettingsConfigDict(env_prefix="TAGPORT_", extra="ignore")

    data_dir: Path = Field(Path("./tagport-data"), description="Where tagport keeps its state.")
    database_url: str | None = Field(
        None,
        description="SQLAlchemy URL of the metadata store; default a SQLite file in the data dir.",
    )
    result_dir: Path | None = Field(
        None, description="Where export files are written; default `<data dir>/results`. "
        "With an `s3://` result URL, where exports are written before their upload."
    )
    result_url: str | None = Field(
        None,
        description="Where finished result files live, through fsspec: a directory "
        "(`file:///shared/mount/results`, a shared mount) or `s3://bucket/prefix` (needs "
        "`pip install 'tagport[s3]'`; downloads redirect to a presigned URL); default the "
        "result dir.",
    )
    result_storage_options: dict[str, Any] | None = Field(
        None,
        description="JSON object of options for the result URL's fsspec filesystem, e.g. "
        "`{\"endpoint_url\": \"http://minio:9000\"}` for s3fs; credentials may also come "
        "from the standard `AWS_*` variables.",
    )
    host: str = Field("127.0.0.1", description="Address the HTTP server listens on.")
    port: int = Field(8080, description="Port the HTTP server listens on.")
    workers: int = Field(2, ge=1, description="Export worker threads inside the server process.")
    engine: str = Field(
        "duckdb", description="Data engine: `duckdb` (embedded default) or `spark`."
    )
    spark_master: str = Field(
        "local[2]",
        description="Spark master URL for the Spark engine: `local[N]`, `spark://host:7077`.",
    )
    spark_driver_memory: str | None = Field(
        None, pattern=r"^[0-9]+[kmgtKMGT]?$",
        description="Heap of each tagport process's Spark driver JVM (`spark.driver.memory`, "
        "`8g`). With a `local[N]` master the executors run inside the driver, so this is "
        "what a load or export of every user may use (a full load of 10M users needs more "
        "than Spark's 1g). Default: a quarter of the machine's memory for `local` masters, "
        "Spark's own 1g for a cluster. Read when the process starts its Spark session; "
        "`--driver-memory` in `PYSPARK_SUBMIT_ARGS` wins.",
    )
    profile_path: Path | None = Field(
        None,
        description="The Spark engine's Parquet profile dataset, a path every Spark executor "
        "shares; default `<data dir>/profiles.parquet`.",
    )
    max_rows_per_file: int | None = Field(
        None, ge=1,
        description="Spark engine: split an export into parts of at most this many rows; "
        "default one file.",
    )
    timezone: str | None = Field(
        None, description="IANA time zone of event times without an offset and of the "
        "calendar days of tag windows (`Asia/Shanghai`); default the server's own.",
    )
    compute_at: str = Field(
        "02:00", pattern=r"^([01][0-9]|2[0-3]):[0-5][0-9]$",
        description="Local time (HH:MM, in `TAGPORT_TIMEZONE`) at which `DAILY` tags and "
        "segments are computed, once a day across all processes.",
    )
    duckdb_threads: int = Field(2, ge=1, description="Threads DuckDB may use.")
    duckdb_memory_limit: str = Field(
        "128MB",
        description="DuckDB's memory limit for exports and queries: its cache of the "
        "profile table's blocks stays within it (the file itself sits in the OS page "
        "cache), so an export's memory does not grow with the users; larger work spills "
        "to the data dir.",
    )
    duckdb_load_memory_limit: str | None = Field(
        None,
        description="DuckDB's memory limit while a load runs (its joins and aggregates "
        "over the whole file; below what they need, they spill to disk and a 10M-user "
        "load takes 1.6x as long); back to `duckdb_memory_limit` when it ends. Default: "
        "half the machine's memory.",
    )
    log_format: Literal["text", "json"] = Field(
        "text", description="`serve`'s log lines: `text`, or `json` (one object per line)."
    )
    log_level: Literal["debug", "info", "warning", "error"] = Field(
        "info", description="The lowest level `serve` logs."
    )
    access_log: bool = Field(
        False,
        description="`serve` logs one line per HTTP request (uvicorn's access log). Off by "
        "default: under load it costs a share of the request time, and the lines about "
        "jobs (submitted, run, failed) are logged anyway; `/metrics` counts requests.",
    )
    url: str | None = Field(
        None, description="The server `tagport remote` talks to, e.g. `http://127.0.0.1:8080`."
    )
    token: str | None = Field(None, description="The API token `tagport remote` sends.")
    no_worker_grace: float = Field(
        10.0, gt=0,
        description="Seconds `tagport remote export` waits on a job that no live worker takes "
        "(the server runs with `--no-worker` and no `tagport worker` runs) before it stops "
        "with NO_WORKER.",
    )

    poll_interval: float = Field(
        0.5,
        gt=0,
        description="Seconds between worker looks at the job table for jobs of other processes.",
    )
    job_lease_seconds: float = Field(
        30.0, gt=0,
        description="How long a worker's claim on a job lasts; renewed every third of it while "
        "the export runs. A job whose worker died is claimed again once it lapses.",
    )
    max_attempts: int = Field(
        3, ge=1,
        description="Runs of a job (failed or interrupted) before it ends in ERROR with the last "
        "cause.",
    )
    shutdown_grace: float = Field(
        30.0, ge=0,
        description="Seconds a stopping worker lets running exports finish before it hands them "
        "back to the queue.",
    )

    result_ttl: timedelta = Field(
        timedelta(days=7),
        description="How long result files are kept (seconds, or ISO 8601 like `P7D`).",
    )
    retention_interval: float = Field(
        300.0, gt=0, description="Seconds between sweeps that delete expired result files."
    )
    max_queued_jobs_per_token: int = Field(
        20, ge=1, description="Unfinished jobs a token may have; beyond, submit answers 429."
    )
    max_body_bytes: int = Field(
        64 * 1024, ge=1024, description="Largest request body accepted (bytes); beyond, 413."
    )
    max_upload_bytes: int = Field(
        2 * 1024**3, ge=1024, description="Largest segment members upload (a CSV of identity "
        "values, `POST .../segment_profiles/{key}/members`); beyond, 413."
    )
    token_cache_seconds: float = Field(
        5.0, ge=0,
        description="How long `serve` trusts a token it has looked up; a token revoked in "
        "another process (`tagport token revoke`, another server) is refused within this "
        "time, one revoked in the same process at once. 0 looks every request up.",
    )
    signed_link_ttl: timedelta = Field(
        timedelta(minutes=15), description="Lifetime of signed download links."
    )

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                ZoneInfo(value)
            except (ValueError, KeyError) as exc:
                raise ValueError(f"unknown time zone {value!r} (use an IANA name such as "
                                 "Asia/Shanghai)") from exc
        return value

    @field_validator("result_ttl", "signed_link_ttl", mode="before")
    @classmethod
    def _seconds(cls, value: object) -> object:
        """A bare number of seconds is a duration too (`TAGPORT_RESULT_TTL=3600`)."""
        if isinstance(value, str) and value.strip().replace(".", "", 1).isdigit():
            return float(value)
        return value

    @cached_property
    def resolved_data_dir(self) -> Path:
        return self.data_dir.expanduser().resolve()

    @property
    def metadata_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{self.resolved_data_dir / 'tagport.sqlite'}"

    @property
    def results_path(self) -> Path:
        return (self.result_dir or self.resolved_data_dir / "results").expanduser().resolve()

    @property
    def profile_db_path(self) -> Path:
        return self.resolved_data_dir / "profiles.duckdb"

    @property
    def profile_dataset_path(self) -> Path:
        path = self.profile_path or self.resolved_data_dir / "profiles.parquet"
        return path.expanduser().resolve()

    @property
    def zone(self) -> tzinfo:
        """The time zone of event days and tag windows (the server's own by default)."""
        if self.timezone is None:
            return datetime.now().astimezone().tzinfo or UTC
        return ZoneInfo(self.timezone)

    @property
    def load_memory_limit(self) -> str:
        """`duckdb_load_memory_limit`, or half the machine's physical memory."""
        if self.duckdb_load_memory_limit:
            return self.duckdb_load_memory_limit
        total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
        return f"{total // 2 // 2**20}MB"

    @property
    def driver_memory(self) -> str | None:
        """`spark_driver_memory`, or for a `local` master a quarter of the machine's
        memory (at least 1g); None: Spark's default."""
        if self.spark_driver_memory:
            return self.spark_driver_memory
        if not self.spark_master.startswith("local"):
            return None
        total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
        return f"{max(1024, total // 4 // 2**20)}m"

    @property
    def spill_path(self) -> Path:
        return self.resolved_data_dir / "spill"

    @property
    def server_file(self) -> Path:
        """Written by a running server so that other processes can hand it work."""
        return self.resolved_data_dir / "server.json"

    @property
    def signing_secret_file(self) -> Path:
        return self.resolved_data_dir / "signing.secret"

    @property
    def control_secret_file(self) -> Path:
        return self.resolved_data_dir / "control.secret"
