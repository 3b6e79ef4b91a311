"""Result files in a directory: the local result dir, or a shared mount every process sees.

Attempts write on the same filesystem (`<root>/<job name>/.work-<attempt>`), so publishing
is a rename inside the FINISH transaction, and downloads stream the file.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from tagport.durable import fsync_path
from tagport.results.store import ResultStore, StoredObject

WORK_DIR_PREFIX = ".work-"


class DirectoryResultStore(ResultStore):
    def __init__(self, root: Path) -> None:
        self.url = str(root)
        self.work_root = root

    def upload(self, job_name: str, attempt: int, files: list[Path]) -> None:
        pass  # the files are already on this filesystem: `place` renames them

    def place(self, job_name: str, attempt: int, files: list[Path]) -> None:
        """Move the finished files into the job dir, replacing what an interrupted attempt
        may have placed there before its commit, and make the renames durable."""
        job_dir = self.work_root / job_name
        names = {path.name for path in files}
        for entry in job_dir.iterdir():
            if not entry.name.startswith(WORK_DIR_PREFIX) and entry.name not in names:
                entry.unlink()
        for path in files:
            os.replace(path, job_dir / path.name)
        fsync_path(job_dir)

    def discard(self, job_name: str, attempt: int) -> None:
        pass  # nothing left the work dir, which the runner removes

    def delete(self, job_name: str) -> None:
        shutil.rmtree(self.work_root / job_name, ignore_errors=True)

    def locate(self, job_name: str, attempt: int, file_name: str) -> Path | StoredObject | None:
        path = self.work_root / job_name / file_name
        return path if path.is_file() else None

    def location(self, job_name: str, attempt: int, file_name: str) -> str:
        return str(self.work_root / job_name / file_name)
