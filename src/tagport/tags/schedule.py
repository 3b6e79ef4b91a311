"""The daily schedule: `DAILY` tags computed once a day at TAGPORT_COMPUTE_AT, across
every process, and a day missed while nothing ran caught up at the next start.

Every server and worker process runs the schedule; the one that first records the day in
`schedule_runs` (its primary key is the schedule and the day) queues the computation, so
it runs once however many processes look. The due day is the latest day whose compute time
has passed: at start, a process that finds it unrecorded (the machine was down at 02:00)
computes it then. Older missed days are not replayed: a computation replaces the values,
so only the latest one matters.
"""

from __future__ import annotations

import logging
from datetime import date, datetime, time, timedelta, tzinfo

from sqlalchemy.engine import Engine as DbEngine

from tagport.errors import Conflict
from tagport.jobs.periodic import Periodic
from tagport.tags import repository
from tagport.tags.service import TagComputeService, computed_tags

log = logging.getLogger("tagport.tags")

DAILY_TAGS = "daily-tags"
CHECK_INTERVAL = 30.0  # seconds between looks at the clock


def due_day(now: datetime, at: time) -> date:
    """The latest day whose compute time has passed at `now` (local)."""
    return now.date() if now.time() >= at else now.date() - timedelta(days=1)


class DailySchedule(Periodic):
    def __init__(self, db: DbEngine, computes: TagComputeService, compute_at: str,
                 zone: tzinfo, worker: str, *, interval: float = CHECK_INTERVAL) -> None:
        super().__init__(interval, "tagport-schedule")
        self.db = db
        self.computes = computes
        hour, minute = compute_at.split(":")
        self.at = time(int(hour), int(minute))
        self.zone = zone
        self.worker = worker

    def __enter__(self):  # type: ignore[no-untyped-def]
        self.tick()  # catch up at once, not a minute after the start
        return super().__enter__()

    def tick(self) -> bool | None:
        try:
            self.run_due(datetime.now(self.zone))
        except Exception:  # the metadata store hiccuped: look again at the next tick
            log.exception("the daily schedule could not run")
        return None

    def run_due(self, now: datetime) -> bool:
        """Queue the due day's computation of the DAILY tags unless a process already
        did; True when this call queued it."""
        day = due_day(now, self.at)
        with self.db.connect() as conn:
            last = repository.last_run(conn, DAILY_TAGS)
        if last is not None and last >= day:
            return False
        daily = [k for k, e in self.computes.catalog.by_key().items()
                 if k in computed_tags({k: e}) and (e.scheduler or "DAILY") == "DAILY"]
        daily += self.computes.others.ordered(None)  # DAILY segments, after the tags
        with self.db.begin() as conn:
            if not repository.claim_run(conn, DAILY_TAGS, day, self.worker):
                return False
        if not daily:
            return True
        try:
            job = self.computes.trigger(daily, as_of=day)
        except Conflict as busy:  # being computed already (a trigger by hand)
            log.info("daily computation of %s skipped: %s", day, busy.message)
            return True
        log.info("job %s: the daily computation of %d tags and segments as of %s", job.id,
                 len(daily), day)
        return True
