"""The one settings object. Nothing else in tagport reads os.environ."""

from __future__ import annotations

from functools import cached_property
from pathlib import Path

from pydantic import Field
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
        None, description="Where export files are written; default `<data dir>/results`."
    )
    host: str = Field("127.0.0.1", description="Address the HTTP server listens on.")
    port: int = Field(8080, description="Port the HTTP server listens on.")
    workers: int = Field(2, ge=1, description="Export worker threads inside the server process.")
    engine: str = Field("duckdb", description="Data engine: `duckdb` (embedded default).")
    duckdb_threads: int = Field(2, ge=1, description="Threads DuckDB may use.")
    duckdb_memory_limit: str = Field(
        "2GB", description="DuckDB memory limit; larger work spills to the data dir."
    )
    poll_interval: float = Field(
        0.5,
        gt=0,
        description="Seconds between worker looks at the job table for jobs of other processes.",
    )

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
    def spill_path(self) -> Path:
        return self.resolved_data_dir / "spill"

    @property
    def server_file(self) -> Path:
        """Written by a running server so that other processes can hand it work."""
        return self.resolved_data_dir / "server.json"

    @property
    def control_secret_file(self) -> Path:
        return self.resolved_data_dir / "control.secret"
