"""Under load: 200 concurrent clients submit 1,000 jobs in all against a real
`tagport serve` and poll them. Every accepted job finishes exactly once, every refused
one got 429, nothing answers 5xx, and no file is lost or duplicated."""

from __future__ import annotations

import asyncio
import itertools
import os
import signal
import sqlite3
import subprocess
import time
from pathlib import Path

import httpx
import pytest

from tests.acceptance.test_cli_and_server import TAGPORT, free_port, tagport
from tests.conftest import SEED_CATALOG, SEED_USERS, write_jsonl

CLIENTS, JOBS, TOKENS, QUEUE_LIMIT = 200, 1000, 10, 8
KEYS = ["id_$basic_userId", "usr_gender", "usr_age", "tag_rfm", "tag_interests"]


def distinct_requests(n: int) -> list[dict]:
    """n different request bodies (so that none is merged with an identical one)."""
    bodies = []
    for k in range(len(KEYS) + 1):
        for props in itertools.permutations(KEYS, k):
            for fmt, header in (("csv", "key"), ("csv", "name"), ("json", "key"), ("json", "name")):
                bodies.append({"properties": list(props), "fileFormat": fmt, "csvHeaderType": header})
    assert len(bodies) >= n
    return bodies[:n]


@pytest.fixture
def server(tmp_path):
    import json

    data = tmp_path / "data"
    catalog = tmp_path / "catalog.json"
    catalog.write_text(json.dumps(SEED_CATALOG, ensure_ascii=False), encoding="utf-8")
    tagport(data, "catalog", "apply", str(catalog))
    tagport(data, "load", str(write_jsonl(tmp_path / "users.jsonl", SEED_USERS)))
    tokens = [tagport(data, "token", "create", f"t{i}").stdout.strip().splitlines()[-1]
              for i in range(TOKENS)]
    port = free_port()
    env = {**os.environ, "TAGPORT_MAX_QUEUED_JOBS_PER_TOKEN": str(QUEUE_LIMIT),
           "TAGPORT_POLL_INTERVAL": "0.05"}
    proc = subprocess.Popen([*TAGPORT, "--data-dir", str(data), "serve", "--port", str(port)],
                            stdout=subprocess.DEVNULL, stderr=open(tmp_path / "server.log", "w"), env=env)
    base = f"http://127.0.0.1:{port}"
    for _ in range(300):
        try:
            httpx.get(base + "/openapi.json", timeout=1)
            break
        except httpx.TransportError:
            time.sleep(0.1)
    yield base, tokens, data
    proc.send_signal(signal.SIGINT)
    proc.wait(timeout=60)


async def drive(base: str, tokens: list[str]) -> dict:
    bodies = distinct_requests(JOBS)
    queue: asyncio.Queue[int] = asyncio.Queue()
    for i in range(JOBS):
        queue.put_nowait(i)
    outcome = {"accepted": [], "refused": 0, "statuses": [], "downloads": {}}
    # idle connections are dropped before the server (5 s keep-alive) would close them
    limits = httpx.Limits(max_connections=CLIENTS, max_keepalive_connections=CLIENTS,
                          keepalive_expiry=2)
    async with httpx.AsyncClient(base_url=base, timeout=60, limits=limits) as http:

        async def client() -> None:
            while not queue.empty():
                i = queue.get_nowait()
                auth = {"Authorization": f"Bearer {tokens[i % TOKENS]}"}
                r = await http.post("/v1/api/user_tags/tag_rfm/export_jobs", json=bodies[i],
                                    headers=auth)
                outcome["statuses"].append(r.status_code)
                if r.status_code == 429:
                    assert r.headers["retry-after"]
                    outcome["refused"] += 1
                    continue
                assert r.status_code == 200, r.text
                job = r.json()["id"]
                outcome["accepted"].append(job)
                while True:
                    res = await http.get(f"/v1/api/job/result/{job}", headers=auth)
                    outcome["statuses"].append(res.status_code)
                    doc = res.json()
                    if doc["stage"] in ("FINISH", "ERROR"):
                        break
                    await asyncio.sleep(0.2)
                assert doc["stage"] == "FINISH", doc
                [uri] = doc["uris"]
                got = await http.get("/download?file=" + uri, headers=auth)
                outcome["statuses"].append(got.status_code)
                outcome["downloads"][job] = (uri, len(got.content), doc["byteCount"])

        await asyncio.gather(*(client() for _ in range(CLIENTS)))
    return outcome


def test_200_clients_and_1000_jobs(server):
    base, tokens, data = server
    outcome = asyncio.run(drive(base, tokens))
    accepted = outcome["accepted"]
    assert all(s < 500 for s in outcome["statuses"])
    assert len(accepted) + outcome["refused"] == JOBS
    assert len(set(accepted)) == len(accepted)  # no job handed out twice
    assert outcome["refused"] > 0 and len(accepted) > QUEUE_LIMIT * TOKENS
    # each accepted job has its own file, downloaded whole
    uris = [uri for uri, _, _ in outcome["downloads"].values()]
    assert len(set(uris)) == len(accepted)
    assert all(size == expected for _, size, expected in outcome["downloads"].values())
    # on disk: exactly one file per accepted job, nothing half-written left behind
    results = Path(data) / "results"
    job_dirs = list(results.iterdir())
    assert len(job_dirs) == len(accepted)
    assert all(len(list(d.iterdir())) == 1 for d in job_dirs)
    assert not list(results.rglob(".work-*"))
    # each ran once: claimed once, finished once
    db = sqlite3.connect(Path(data) / "tagport.sqlite")
    rows = db.execute("SELECT stage, attempts, count(*) FROM jobs GROUP BY stage, attempts").fetchall()
    assert rows == [("FINISH", 1, len(accepted))]
