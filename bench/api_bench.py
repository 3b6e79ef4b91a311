#!/usr/bin/env python3
"""The API under load (issue 3, item 3): submit latency and polling throughput.

    .venv/bin/python bench/api_bench.py [--users 100000] [--submits 1000] [--clients 50]
        [--duration 10] [--work-dir bench/data/api]

Against a real `tagport serve` subprocess on the demo data
(`tagport --data-dir D demo --no-serve --users N`, then tokens):

1. polling: `GET /v1/api/job/result/{id}` of one finished job from `--clients` concurrent
   connections for `--duration` seconds, with wrk (C; `apt-get install -y wrk`) if it is
   installed, and with a Python client (threads, one stdlib HTTPConnection each);
2. submit: `--submits` `POST /v1/api/user_tags/tag_rfm/export_jobs` from `--clients`
   concurrent Python clients, then, with wrk, `--clients` connections POSTing for
   `--duration` seconds. Each client is a separate API user with its own token, and every
   request asks for a different property list: tagport answers an identical unfinished
   request of the same token with the existing job (no insert) and refuses a token's
   21st unfinished job with 429, so identical requests from one token would measure
   neither the insert nor the export. The Python phase sends `--submits / --clients`
   requests per token (within the per-token queue limit, so every submit is a real new
   job); wrk submits without pause and does meet the limit: its 429s are counted apart.
   Every accepted submit queues a real export job that the server's workers run
   meanwhile, as in production; after each submit phase the bench waits until the queue
   has drained and reports how long that took.

Both load generators run on the same machine as the server and share its cores: on a
2-core machine the Python client takes a large part of the CPU, so its figures are a
lower bound; wrk's are closer to what the server can do. httpx's AsyncClient was tried
first as the Python client: with 50 connections it topped out near 100 requests/s with
the server 75% idle, i.e. it measured itself. Prints a Markdown table and writes it to
bench/results/<date>-api.md.
"""

from __future__ import annotations

import argparse
import datetime as dt
import http.client
import json
import os
import re
import resource
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import (  # noqa: E402
    BENCH_DIR,
    RESULTS_DIR,
    PeakRss,
    create_token,
    fmt_mib,
    free_port,
    log,
    machine_lines,
    snapshot_source,
    start_server,
    table,
    tagport,
)

TAG = "tag_rfm"
SUBMIT_PATH = f"/v1/api/user_tags/{TAG}/export_jobs"
POLL_BODY = {"properties": ["ids_$basic_userId", "usr_gender", "tag_rfm"], "fileFormat": "csv",
             "csvHeaderType": "name"}


def distinct_body(k: int, keys: list[str]) -> dict:
    """The k-th of len(keys)·(len−1)·(len−2)·(len−3) distinct ordered 4-property lists."""
    pool = list(keys)
    chosen = []
    for _ in range(4):
        chosen.append(pool.pop(k % len(pool)))
        k //= len(pool) + 1
    return {"properties": chosen, "fileFormat": "csv", "csvHeaderType": "key"}


def pct(values: list[float], p: float) -> float:
    """The p-th percentile (nearest rank) of `values`."""
    ordered = sorted(values)
    k = max(0, min(len(ordered) - 1, int(round(p / 100 * len(ordered) + 0.5)) - 1))
    return ordered[k]


class Phase:
    """One measured phase: requests, statuses, seconds, latencies (s) or wrk's figures."""

    def __init__(self, name: str, client: str) -> None:
        self.name = name
        self.client = client
        self.requests = 0
        self.statuses: Counter[str] = Counter()
        self.seconds = 0.0
        self.latencies: list[float] = []  # of the 200 answers
        self.wrk_pcts: dict[str, float] = {}
        self.server_peak = 0
        self.server_cpu = 0.0
        self.client_cpu = 0.0  # the load generator's own CPU seconds
        self.note = ""

    @property
    def rps(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0

    def p(self, q: float) -> float | None:
        if self.latencies:
            return pct(self.latencies, q)
        return self.wrk_pcts.get(f"{q:g}")

    def row(self) -> list[str]:
        def ms(v: float | None) -> str:
            return "–" if v is None else f"{v * 1000:.1f}"
        top = max(self.latencies) if self.latencies else self.wrk_pcts.get("max")
        statuses = ", ".join(f"{n:,}× {s}" for s, n in sorted(self.statuses.items()))
        return [self.name, self.client, f"{self.requests:,}", f"{self.seconds:.1f}",
                f"{self.rps:,.0f}", ms(self.p(50)), ms(self.p(90)), ms(self.p(99)), ms(top),
                statuses, fmt_mib(self.server_peak),
                f"{self.server_cpu / self.seconds * 100:.0f}%" if self.seconds else "–",
                f"{self.server_cpu / self.requests * 1000:.2f}" if self.requests else "–",
                f"{self.client_cpu / self.seconds * 100:.0f}%" if self.seconds else "–"]


# --- Python client (threads + http.client) ------------------------------------------------


def python_phase(server, name: str, tokens: list[str], method: str, path: str, *,  # type: ignore[no-untyped-def]
                 per_client: int | None = None, duration: float | None = None,
                 body_for=None) -> tuple[Phase, list[str]]:  # type: ignore[no-untyped-def]
    """One thread per token, each with its own persistent connection, sending `per_client`
    requests or until `duration` ends; `body_for(k)` gives the k-th request's JSON body."""
    clients = len(tokens)
    phase = Phase(name, f"Python threads+http.client, {clients} conns")
    ids: list[str] = []
    lock = threading.Lock()
    counter = iter(range(10**9))
    t0 = deadline = 0.0

    def set_start() -> None:  # runs once, when every connection is open
        nonlocal t0, deadline
        t0 = time.perf_counter()
        deadline = t0 + (duration or 0.0)

    gate = threading.Barrier(clients + 1, action=set_start)

    def worker(token: str) -> None:
        headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
        conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=120)
        conn.request("GET", "/openapi.json")  # connect before the clock starts
        conn.getresponse().read()
        gate.wait()
        sent = 0
        while (sent < per_client) if per_client is not None else (time.perf_counter() < deadline):
            sent += 1
            with lock:
                k = next(counter)
            body = json.dumps(body_for(k)).encode() if body_for else None
            t = time.perf_counter()
            try:
                conn.request(method, path, body=body, headers=headers)
                resp = conn.getresponse()
                data = resp.read()
                status = str(resp.status)
            except (OSError, http.client.HTTPException) as exc:
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=120)
                data, status = b"", type(exc).__name__
            elapsed = time.perf_counter() - t
            with lock:
                phase.statuses[status] += 1
                if status == "200":
                    phase.latencies.append(elapsed)
                    if method == "POST":
                        ids.append(json.loads(data)["id"])
        conn.close()

    threads = [threading.Thread(target=worker, args=(tok,), daemon=True) for tok in tokens]
    with PeakRss(server.pid) as mem:
        for th in threads:
            th.start()
        gate.wait()
        cpu0 = time.process_time()
        for th in threads:
            th.join()
        phase.seconds = time.perf_counter() - t0
        phase.client_cpu = time.process_time() - cpu0
    phase.requests = sum(phase.statuses.values())
    phase.server_peak, phase.server_cpu = mem.peak, mem.cpu
    return phase, ids


# --- wrk ---------------------------------------------------------------------------------


_UNITS = {"us": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0}


def _duration(text: str) -> float:
    m = re.fullmatch(r"([0-9.]+)(us|ms|s|m)", text.strip())
    if not m:
        raise ValueError(f"not a wrk duration: {text!r}")
    return float(m.group(1)) * _UNITS[m.group(2)]


def _lua_list(values: list[str]) -> str:
    return "{" + ", ".join(json.dumps(v) for v in values) + "}"


# Counts the statuses in each thread and sums them in done(). With `submit`, each request
# carries the token of "its" client and a distinct property list (as distinct_body does).
_WRK_LUA = """
local threads = {}
function setup(thread)
  thread:set("id", #threads)
  table.insert(threads, thread)
end
function init(args)
  n = 0
  statuses = {}
end
tokens = %(tokens)s
keys = %(keys)s
submit = %(submit)s
function body(k)
  local pool = {}
  for i, v in ipairs(keys) do pool[i] = v end
  local chosen = {}
  for j = 1, 4 do
    local idx = (k %% #pool) + 1
    table.insert(chosen, '"' .. pool[idx] .. '"')
    table.remove(pool, idx)
    k = math.floor(k / (#pool + 1))
  end
  return '{"properties": [' .. table.concat(chosen, ", ") ..
         '], "fileFormat": "csv", "csvHeaderType": "key"}'
end
function request()
  n = n + 1
  local k = (n - 1) * %(threads)d + id
  local headers = {}
  headers["Authorization"] = "Bearer " .. tokens[(k %% #tokens) + 1]
  if submit then
    headers["Content-Type"] = "application/json"
    return wrk.format("POST", nil, headers, body(k + 1000000))
  end
  return wrk.format("GET", nil, headers, nil)
end
function response(status, headers, body)
  statuses[status] = (statuses[status] or 0) + 1
end
function done(summary, latency, requests)
  local total = {}
  for _, t in ipairs(threads) do
    local s = t:get("statuses")
    for code, count in pairs(s) do total[code] = (total[code] or 0) + count end
  end
  for code, count in pairs(total) do io.write(string.format("STATUS %%s %%d\\n", code, count)) end
end
"""


def wrk_phase(server, name: str, tokens: list[str], duration: float, path: str,  # type: ignore[no-untyped-def]
              *, submit: bool = False, keys: list[str] | None = None) -> Phase:
    threads = 2
    clients = max(len(tokens), threads)
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
        script.write(_WRK_LUA % {"tokens": _lua_list(tokens), "keys": _lua_list(keys or []),
                                 "submit": "true" if submit else "false", "threads": threads})
    cmd = ["wrk", f"-t{threads}", f"-c{clients}", f"-d{int(duration)}s", "--latency",
           "-s", script.name, server.base + path]
    phase = Phase(name, f"wrk -t{threads} -c{clients}")
    try:
        with PeakRss(server.pid) as mem:
            before = resource.getrusage(resource.RUSAGE_CHILDREN)
            out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
            after = resource.getrusage(resource.RUSAGE_CHILDREN)
        phase.client_cpu = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
    finally:
        Path(script.name).unlink()
    phase.server_peak, phase.server_cpu = mem.peak, mem.cpu
    m = re.search(r"(\d+) requests in ([0-9.]+\w+),", out)
    if not m:
        raise RuntimeError(f"cannot read wrk's output:\n{out}")
    phase.requests, phase.seconds = int(m.group(1)), _duration(m.group(2))
    for q, value in re.findall(r"^\s+(50|75|90|99)%\s+(\S+)", out, re.M):
        phase.wrk_pcts[q] = _duration(value)
    lat = re.search(r"Latency\s+(\S+)\s+(\S+)\s+(\S+)", out)
    if lat:
        phase.wrk_pcts["max"] = _duration(lat.group(3))
    for code, count in re.findall(r"^STATUS (\d+) (\d+)", out, re.M):
        phase.statuses[code] += int(count)
    sock = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    if sock:
        phase.statuses["socket error"] += sum(map(int, sock.groups()))
        phase.note = sock.group(0)
    if submit and phase.statuses.get("429"):
        phase.note = (phase.note + "; " if phase.note else "") + (
            "wrk's latency percentiles mix the 200 and the 429 answers")
    return phase


# --- the ceiling: a bare FastAPI app under the same uvicorn --------------------------------

# The two routes' shapes without tagport: a poll answers a constant job result, a submit
# validates the same body and answers a constant id. What the framework, the server and
# the load generators cost on this machine, measured the same way.
_BARE_APP = """
from fastapi import FastAPI
from pydantic import BaseModel

app = FastAPI()
RESULT = %(result)s


class Body(BaseModel):
    properties: list[str] | None = None
    fileFormat: str = "csv"
    csvHeaderType: str = "key"


class Created(BaseModel):
    id: str
    name: str


@app.get("/v1/api/job/result/{job_id}")
async def job_result(job_id: str) -> dict:
    return RESULT


@app.post("/v1/api/user_tags/{tag_key}/export_jobs", response_model=Created)
async def submit(tag_key: str, body: Body | None = None) -> Created:
    return Created(id="kqQeWeGr", name="DES-202205240136-5818534160000")
"""


class BareServer:
    """`uvicorn bare_app:app` (httptools and uvloop as tagport's, no access log)."""

    def __init__(self, work_dir: Path, result: dict) -> None:
        work_dir.mkdir(parents=True, exist_ok=True)
        (work_dir / "bare_app.py").write_text(_BARE_APP % {"result": repr(result)}, "utf-8")
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "uvicorn", "bare_app:app", "--port", str(self.port),
             "--no-access-log", "--log-level", "warning"], cwd=work_dir)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                if httpx.get(self.base + "/openapi.json", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                time.sleep(0.1)
        self.stop()
        raise RuntimeError("the bare FastAPI app did not start")

    @property
    def pid(self) -> int:
        return self.proc.pid

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(30)


def ceiling_phases(args: argparse.Namespace, data_dir: Path, result: dict, keys: list[str],
                   poll_path: str, phases: list[Phase]) -> None:
    bare = BareServer(data_dir / "bare", result)
    try:
        python_phase(bare, "warm-up", ["x"] * 10, "GET", poll_path, per_client=20)
        if shutil.which("wrk") and not args.no_wrk:
            phases.append(wrk_phase(bare, "ceiling: bare FastAPI poll", ["x"] * args.clients,
                                    args.duration, poll_path))
        phases.append(python_phase(bare, "ceiling: bare FastAPI poll", ["x"] * args.clients,
                                   "GET", poll_path, duration=args.duration)[0])
        phases.append(python_phase(
            bare, "ceiling: bare FastAPI submit", ["x"] * args.clients, "POST", SUBMIT_PATH,
            per_client=max(1, args.submits // args.clients),
            body_for=lambda k: distinct_body(k, keys))[0])
        log("ceiling: " + ", ".join(f"{ph.rps:,.0f} req/s" for ph in phases[-3:]))
    finally:
        bare.stop()


# --- the run -----------------------------------------------------------------------------


def wait_done(server, job_id: str, timeout: float = 1800) -> dict:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    with httpx.Client(base_url=server.base, headers=server.headers, timeout=60) as c:
        while time.monotonic() < deadline:
            doc = c.get(f"/v1/api/job/result/{job_id}").json()
            if doc["stage"] in ("FINISH", "ERROR"):
                return doc
            time.sleep(0.1)
    raise RuntimeError(f"job {job_id} did not finish within {timeout}s")


def submit_one(server, body: dict) -> str:  # type: ignore[no-untyped-def]
    r = httpx.post(server.base + SUBMIT_PATH, json=body, headers=server.headers, timeout=60)
    r.raise_for_status()
    return r.json()["id"]


def drain(server, label: str, jobs: int, key: str, users: int) -> str:  # type: ignore[no-untyped-def]
    """Wait until the queue is empty: a job submitted now is claimed after all earlier ones
    (a json request, so that it is no duplicate of a queued one)."""
    t0 = time.perf_counter()
    doc = wait_done(server, submit_one(server, {"properties": [key], "fileFormat": "json"}))
    seconds = time.perf_counter() - t0
    log(f"{label}: queue drained {seconds:.1f}s after the last submit")
    return (f"{label}: the {jobs:,} export jobs they queued (~{users * 7 // 10:,} rows × 4"
            " columns each) were"
            f" all done {seconds:.1f}s after the phase ended"
            f" (a job submitted then: {doc['stage']}).")


def make_tokens(data_dir: Path, n: int) -> list[str]:
    """`n` API users. Through tagport's token service in this process (the CLI would start
    one interpreter per token); the server is not running yet."""
    try:
        from tagport.config import Settings
        from tagport.core import Tagport

        tp = Tagport(Settings(data_dir=data_dir))
        try:
            return [tp.tokens.create(f"client-{i}") for i in range(n)]
        finally:
            tp.close()
    except (ImportError, AttributeError, TypeError) as exc:
        log(f"creating tokens through the CLI ({exc})")
        return [create_token(data_dir, f"client-{i}") for i in range(n)]


def _access_log_on() -> bool:
    """As the server reads TAGPORT_ACCESS_LOG (it inherits this environment)."""
    return os.environ.get("TAGPORT_ACCESS_LOG", "").strip().lower() in ("1", "true", "yes", "on")


def _free_result_path(stem: str) -> Path:
    """bench/results/<stem>.md, or <stem>-2.md, -3 ... : never overwrite an earlier report."""
    dest, n = RESULTS_DIR / f"{stem}.md", 1
    while dest.exists():
        n += 1
        dest = RESULTS_DIR / f"{stem}-{n}.md"
    return dest


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--users", type=int, default=100_000)
    p.add_argument("--submits", type=int, default=1000)
    p.add_argument("--clients", type=int, default=50)
    p.add_argument("--duration", type=float, default=10.0, help="Seconds of each timed phase.")
    p.add_argument("--work-dir", type=Path, default=BENCH_DIR / "data" / "api")
    p.add_argument("--no-wrk", action="store_true", help="Use only the Python client.")
    p.add_argument("--no-snapshot", action="store_true",
                   help="Run tagport from src/ as it is, not from a copy taken at the start.")
    p.add_argument("--phases", default="poll,submit,ceiling",
                   help="Comma-separated phases to run: poll, submit, ceiling (a bare FastAPI"
                   " app's poll and submit routes, measured the same way); default all.")
    p.add_argument("--output", type=Path, default=None,
                   help="Where to write the report; default bench/results/<date>-api.md,"
                   " or -2, -3 ... when that exists.")
    args = p.parse_args()
    use_wrk = not args.no_wrk and shutil.which("wrk") is not None
    phases_wanted = {p.strip() for p in args.phases.split(",") if p.strip()}
    if not phases_wanted or phases_wanted - {"poll", "submit", "ceiling"}:
        p.error("--phases takes poll, submit, ceiling")
    t_start = time.perf_counter()

    data_dir = args.work_dir.resolve()
    shutil.rmtree(data_dir, ignore_errors=True)
    data_dir.mkdir(parents=True)
    snapshot = None if args.no_snapshot else snapshot_source(data_dir / "src-snapshot")
    log(f"tagport demo --no-serve --users {args.users} in {data_dir}")
    tagport(data_dir, "demo", "--no-serve", "--users", str(args.users))
    catalog = json.loads((data_dir / "demo" / "catalog.json").read_text("utf-8"))
    keys = [e["key"] for kind in ("identities", "attributes", "tags") for e in catalog[kind]]
    main_token = create_token(data_dir, "bench")
    tokens = make_tokens(data_dir, args.clients)
    per_client = max(1, args.submits // args.clients)
    server = start_server(data_dir, main_token, log_path=data_dir / "server.log")
    phases: list[Phase] = []
    notes: list[str] = []
    try:
        job = submit_one(server, POLL_BODY)
        doc = wait_done(server, job)
        log(f"poll target: job {job} ({doc['stage']}, {doc['rowCount']} rows)")
        poll_path = f"/v1/api/job/result/{job}"
        poll_tokens = [main_token] * args.clients
        python_phase(server, "warm-up", poll_tokens[:10], "GET", poll_path, per_client=20)

        if use_wrk and "poll" in phases_wanted:
            phases.append(wrk_phase(server, "poll result", poll_tokens, args.duration, poll_path))
            log(f"poll (wrk): {phases[-1].rps:,.0f} req/s")
        if "poll" in phases_wanted:
            phase, _ = python_phase(server, "poll result", poll_tokens, "GET", poll_path,
                                    duration=args.duration)
            phases.append(phase)
            log(f"poll (python): {phase.rps:,.0f} req/s")
        if "submit" in phases_wanted:
            submit_phases(server, args, tokens, keys, per_client, phases, notes)
    finally:
        server.stop()
    if "ceiling" in phases_wanted:
        ceiling_phases(args, data_dir, doc, keys, poll_path, phases)
    write_report(args, t_start, snapshot, poll_path, per_client, phases, notes)


def submit_phases(server, args: argparse.Namespace, tokens: list[str], keys: list[str],  # type: ignore[no-untyped-def]
                  per_client: int, phases: list[Phase], notes: list[str]) -> None:
    """The Python submits, the queue drained, then wrk's submits, drained too."""
    use_wrk = not args.no_wrk and shutil.which("wrk") is not None
    phase, ids = python_phase(server, "submit export job", tokens, "POST", SUBMIT_PATH,
                              per_client=per_client,
                              body_for=lambda k: distinct_body(k, keys))
    phases.append(phase)
    log(f"submit (python): {dict(phase.statuses)}, p50 {phase.p(50) * 1000:.1f} ms,"
        f" p99 {phase.p(99) * 1000:.1f} ms")
    notes.append(drain(server, "after the Python submits", len(ids), keys[0], args.users))

    if use_wrk:
        phase = wrk_phase(server, "submit export job", tokens, args.duration, SUBMIT_PATH,
                          submit=True, keys=keys)
        phases.append(phase)
        log(f"submit (wrk): {dict(phase.statuses)}, p50 {phase.p(50) * 1000:.1f} ms,"
            f" p99 {phase.p(99) * 1000:.1f} ms")
        notes.append(drain(server, "after the wrk submits", phase.statuses.get("200", 0),
                           keys[1], args.users))


def write_report(args: argparse.Namespace, t_start: float, snapshot: str | None,
                 poll_path: str, per_client: int, phases: list[Phase], notes: list[str]) -> None:
    lines = [
        f"# tagport API under load: demo data, {args.users:,} users",
        "",
        f"- run: {dt.datetime.now().isoformat(timespec='seconds')}, `bench/api_bench.py"
        f" --users {args.users} --submits {args.submits} --clients {args.clients}"
        f" --duration {args.duration:g}`, total {(time.perf_counter() - t_start) / 60:.1f} min",
        *machine_lines(("duckdb", "pyarrow", "httpx", "uvicorn", "fastapi", "starlette", "h11",
                        "httptools", "uvloop"), snapshot),
        "- server: one `tagport serve` process (uvicorn, 1 process), default settings (2"
        f" export workers, access log {'on' if _access_log_on() else 'off'}); the load"
        " generators run on the same machine",
        f"- poll: `GET {poll_path}` of a finished job, one token; submit: `POST {SUBMIT_PATH}`"
        f" with a different 4-property csv request each time, {args.clients} clients each with"
        f" its own token (the Python phase: {per_client} submits per client, within the"
        " per-token limit of unfinished jobs, so each is a new job that the workers export"
        " while the submits go on)",
        "- latency percentiles: the Python client's over the 200 answers; wrk's from its"
        " --latency distribution over all answers",
        "- server CPU: the server process's user+system CPU during the phase, as a share of"
        " one core and per request (per request it includes the export jobs the submits"
        " queued, as far as they ran within the phase). The server is one Python process:"
        " its request handling is bound to one core by the GIL, so 1,000 requests/s needs"
        " well under 1 ms of CPU per request. Client CPU: the load generator's own (wrk's"
        " process; the Python client's threads, in the bench's process), as a share of one"
        " core",
        "",
        table(["request", "client", "requests", "s", "req/s", "p50 ms", "p90 ms", "p99 ms",
               "max ms", "statuses", "server peak RSS", "server CPU",
               "server CPU ms/request", "client CPU"],
              [ph.row() for ph in phases]),
        "",
        *[f"- {n}" for n in notes],
        *[f"- {ph.name} ({ph.client}): {ph.note}" for ph in phases if ph.note],
    ]
    if any(ph.name.startswith("ceiling") for ph in phases):
        lines += ["", "The ceiling rows: a bare FastAPI app (the same uvicorn, httptools, uvloop;"
                  " no access log) whose poll answers this job's result as a constant and whose"
                  " submit validates the same body and answers a constant id, under the same load"
                  " generators: what the framework and the clients cost on this machine."]
    polls = [ph for ph in phases if ph.name == "poll result"]
    submits = [ph for ph in phases if ph.name == "submit export job"]
    poll_rows = [["polling ≥ 1,000 req/s",
                  " / ".join(f"{ph.rps:,.0f} ({ph.client.split(',')[0]})" for ph in polls),
                  "yes" if max(ph.rps for ph in polls) >= 1000 else "**no**"]] if polls else []
    lines += ["", "## Targets (issue 3)", "", table(["target", "measured", "met"], [
        *poll_rows,
        *[[f"submit p99 ≤ 100 ms at {args.clients} clients ({ph.client.split(',')[0]})",
           f"{ph.p(99) * 1000:.0f} ms", "yes" if ph.p(99) <= 0.1 else "**no**"]
          for ph in submits],
    ])]
    text = "\n".join(lines) + "\n"
    print(text)
    dest = args.output or _free_result_path(f"{dt.date.today().isoformat()}-api")
    dest.parent.mkdir(parents=True, exist_ok=True)
    dest.write_text(text, "utf-8")
    log(f"written to {dest}")


if __name__ == "__main__":
    main()
