"""Several processes on one PostgreSQL: API-only nodes (`serve --no-worker`) and
`tagport worker` processes sharing the job queue, with workers killed and frozen."""

from __future__ import annotations

import re
import signal
import time
from collections import Counter, defaultdict
from pathlib import Path

import pytest

from tagport.config import Settings
from tagport.core import Tagport
from tagport.exports.spec import ExportRequest
from tagport.jobs.models import JobStage
from tests.acceptance.processes import Api, TagportProcess, leftovers, wait_for_partial_file
from tests.big_dataset import BIG_REQUEST, BigProfiles

SMALL = [{"properties": props, "fileFormat": fmt}
         for props in ([], ["usr_city"], ["id_$basic_userId"], ["usr_gender", "usr_age"],
                       ["id_$basic_userId", "usr_city", "tag_vip"])
         for fmt in ("csv", "json")]  # ten requests on tag_vip (1,200 users)


class Cluster:
    """A data dir with the big store whose metadata lives in a PostgreSQL database."""

    def __init__(self, tmp: Path, url: str, big: BigProfiles, lease: float) -> None:
        self.tmp = tmp
        self.data = tmp / "data"
        big.install(self.data)
        self.settings = Settings(data_dir=self.data, database_url=url)
        big.apply_catalog(self.settings)
        self.env = {"TAGPORT_DATABASE_URL": url, "TAGPORT_JOB_LEASE_SECONDS": str(lease),
                    "TAGPORT_DUCKDB_THREADS": "1", "TAGPORT_POLL_INTERVAL": "0.1"}
        self.core = Tagport(self.settings)

    def worker(self, name: str, threads: int) -> TagportProcess:
        return TagportProcess(self.data, ["worker", "--threads", str(threads)], self.env,
                              self.tmp / f"{name}.log")

    def api(self, name: str, token: str) -> Api:
        return Api(self.data, token, self.env, self.tmp / f"{name}.log", "--no-worker")

    def owner_pid(self, job_id: str) -> int:
        claimed_by = self.core.jobs.get(job_id).claimed_by
        assert claimed_by, f"job {job_id} is not claimed"
        return int(claimed_by.split(":")[1])  # host:pid:...

    def wait_until_said(self, process: TagportProcess, words: str) -> None:
        """Until `process` has logged `words` and no work dir is left under results/."""
        deadline = time.monotonic() + 30
        while words not in process.output() or leftovers(self.data / "results"):
            assert time.monotonic() < deadline, (process.output(),
                                                 leftovers(self.data / "results"))
            time.sleep(0.1)

    def wait_for_partial(self, job_id: str) -> Path:
        return wait_for_partial_file(self.data / "results" / self.core.jobs.get(job_id).name)


@pytest.fixture
def cluster(tmp_path, postgres, big_profiles):
    made: list[Cluster] = []

    def make(lease: float) -> Cluster:
        made.append(Cluster(tmp_path, postgres.new_database(), big_profiles, lease))
        return made[-1]

    yield make
    for c in made:
        c.core.close()


def test_two_api_nodes_and_two_workers_finish_50_jobs_exactly_once_despite_a_killed_worker(
        cluster):
    c = cluster(lease=2)
    tokens = [c.core.tokens.create(f"client-{n}") for n in range(5)]
    apis = [c.api("api-1", tokens[0]), c.api("api-2", tokens[0])]
    workers = [c.worker("worker-1", 2), c.worker("worker-2", 2)]
    try:
        submitted = []  # (token, shape, job id); big exports first
        for n, token in enumerate(tokens):
            shapes = [("tag_rfm", BIG_REQUEST)] if n < 2 else []
            shapes += [("tag_vip", body) for body in SMALL][: 10 - len(shapes)]
            for tag, body in shapes:
                api = apis[len(submitted) % 2]
                submitted.append((token, (tag, repr(body)), api.submit(tag, body, token)["id"]))
        big = submitted[0][2]
        assert len({job_id for *_, job_id in submitted}) == 50

        c.wait_for_partial(big)
        owner = c.owner_pid(big)
        killed = next(w for w in workers if w.pid == owner)
        killed.kill()  # mid-export, with whatever else it was running

        contents: dict[tuple, set[bytes]] = defaultdict(set)
        for n, (token, shape, job_id) in enumerate(submitted):
            other = apis[(n + 1) % 2]  # poll and download through the node not submitted to
            result = other.wait(job_id, token)
            assert result["stage"] == "FINISH", result
            contents[shape].add(other.download(result, token))
        assert all(len(files) == 1 for files in contents.values())  # same request, same bytes
        assert c.core.jobs.get(big).attempts >= 2

        reference = c.core.tokens.create("reference")  # an uninterrupted run of the big export
        fresh = apis[0].wait(apis[0].submit("tag_rfm", BIG_REQUEST, reference)["id"], reference)
        assert contents[("tag_rfm", repr(BIG_REQUEST))] == {apis[0].download(fresh, reference)}

        finished = Counter(re.findall(r"job (\w{8}) finished", "".join(
            w.output() for w in workers)))
        assert {job_id: finished[job_id] for *_, job_id in submitted} == {
            job_id: 1 for *_, job_id in submitted}
        assert leftovers(c.data / "results") == []

        # the API-only nodes read profiles without holding the store: a load goes through
        assert apis[0].http.get("/v1/api/user_tags/tag_vip/users?limit=3").status_code == 200
        assert apis[1].http.get("/readyz").status_code == 200
        more = c.tmp / "more.jsonl"
        more.write_text('{"identifications": {"id_$basic_userId": "NEW-1"}}\n')
        load = TagportProcess(c.data, ["load", str(more)], c.env, c.tmp / "load.log")
        assert load.proc.wait(60) == 0, load.output()
    finally:
        for process in [*apis, *workers]:
            process.stop()
    assert workers[1 - workers.index(killed)].proc.returncode == 0


def test_a_frozen_worker_whose_lease_lapsed_publishes_nothing_when_it_wakes(cluster):
    c = cluster(lease=1.5)
    workers = [c.worker("worker-1", 1), c.worker("worker-2", 1)]
    request = ExportRequest("tag_rfm", BIG_REQUEST["properties"], "json", "key")
    job_id = c.core.jobs.submit(request, None).id
    c.wait_for_partial(job_id)
    frozen = next(w for w in workers if w.pid == c.owner_pid(job_id))
    frozen.proc.send_signal(signal.SIGSTOP)
    try:
        deadline = time.monotonic() + 60
        while (job := c.core.jobs.get(job_id)).stage is not JobStage.FINISH:
            assert time.monotonic() < deadline, job
            time.sleep(0.2)
        # another worker took it over (on a loaded machine a short lease may lapse again)
        assert job.attempts >= 2 and c.owner_pid(job_id) != frozen.pid
        _, path = c.core.jobs.file_for(job.files[0], None)
        published = path.read_bytes()
    finally:
        frozen.proc.send_signal(signal.SIGCONT)
    c.wait_until_said(frozen, "lost its claim")
    time.sleep(1)  # the woken export runs on; whatever it does must change nothing
    after = c.core.jobs.get(job_id)
    assert (after.stage, after.attempts, after.files) == (JobStage.FINISH, job.attempts, job.files)
    assert path.read_bytes() == published and published.count(b"\n") == job.row_count
    for worker in workers:
        assert worker.stop() == 0
    assert leftovers(c.data / "results") == []


def test_a_cancel_from_another_process_stops_the_workers_export_at_its_next_renewal(cluster):
    c = cluster(lease=1.5)
    worker = c.worker("worker", 1)
    request = ExportRequest("tag_rfm", BIG_REQUEST["properties"], "json", "key")
    job_id = c.core.jobs.submit(request, None).id
    c.wait_for_partial(job_id)
    # frozen while the job is cancelled, the worker wakes with its renewal overdue
    worker.proc.send_signal(signal.SIGSTOP)
    try:
        assert c.core.jobs.cancel(job_id).error_code == "CANCELLED"
        time.sleep(1.0)  # past the renewal interval (a third of the lease)
    finally:
        worker.proc.send_signal(signal.SIGCONT)
    c.wait_until_said(worker, "stopped its export")
    assert re.search(rf"job {job_id}: \S+ stopped its export \(the export was stopped after "
                     r"\d+ rows\)", worker.output())
    assert c.core.jobs.get(job_id).stage is JobStage.ERROR
    assert worker.stop() == 0
