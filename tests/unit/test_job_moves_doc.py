"""docs/design.md's table of job moves says what jobs/repository.py's MOVES does."""

from __future__ import annotations

import re
from pathlib import Path

from tagport.jobs.models import CLAIMED, UNFINISHED, JobStage
from tagport.jobs.repository import MOVES

DESIGN = Path(__file__).resolve().parents[2] / "docs" / "design.md"
NAMED = {"unfinished": UNFINISHED, "claimed": CLAIMED}


def documented_moves() -> dict[str, tuple[tuple[JobStage, ...], JobStage]]:
    rows = re.findall(r"^\| `(\w+)` +\| ([\w, ]+?) +\| (\w+) +\|",
                      DESIGN.read_text(encoding="utf-8"), re.M)
    return {name: (NAMED.get(start) or (JobStage(start),), JobStage(to))
            for name, start, to in rows}


def test_the_design_doc_draws_every_job_move_with_its_stages():
    assert documented_moves() == MOVES
