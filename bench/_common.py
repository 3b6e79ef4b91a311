"""What both benchmark scripts share: running tagport as subprocesses, a server on a free
port, /proc memory readings, versions, Markdown tables.

Not part of tagport; only the scripts in bench/ import it.
"""

from __future__ import annotations

import os
import platform
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
BENCH_DIR = ROOT / "bench"
RESULTS_DIR = BENCH_DIR / "results"
MIB = 1024 * 1024
MB = 1_000_000


def tagport_command() -> list[str]:
    """The `tagport` console script of this interpreter's environment."""
    script = Path(sys.executable).with_name("tagport")
    return [str(script)] if script.exists() else [sys.executable, "-m", "tagport"]


@dataclass
class Timed:
    """A finished subprocess: wall seconds, peak RSS (ru_maxrss of the process), output."""

    seconds: float
    peak_rss: int
    returncode: int
    stdout: str
    stderr: str


def run_timed(cmd: list[str], *, env: dict[str, str] | None = None, check: bool = True) -> Timed:
    """Run `cmd`; its wall time (from outside) and peak RSS (from wait4's rusage)."""
    import tempfile

    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        t0 = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=out, stderr=err, env=env)
        _, status, usage = os.wait4(proc.pid, 0)
        seconds = time.perf_counter() - t0
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        result = Timed(seconds, usage.ru_maxrss * 1024, proc.returncode,
                       out.read().decode("utf-8", "replace"), err.read().decode("utf-8", "replace"))
    if check and result.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed ({result.returncode}):\n"
                           f"{result.stdout}\n{result.stderr}")
    return result


def tagport(data_dir: Path, *args: str, check: bool = True) -> Timed:
    return run_timed([*tagport_command(), "--data-dir", str(data_dir), *args], check=check)


def create_token(data_dir: Path, name: str = "bench") -> str:
    """`tagport token create`; the token is the last line of stdout."""
    return tagport(data_dir, "token", "create", name).stdout.strip().splitlines()[-1].strip()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# --- /proc ---------------------------------------------------------------------------


def _status_kib(pid: int, field_name: str) -> int:
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(field_name + ":"):
                    return int(line.split()[1])
    except (FileNotFoundError, ProcessLookupError):
        pass
    return 0


def rss(pid: int) -> int:
    return _status_kib(pid, "VmRSS") * 1024


def hwm(pid: int) -> int:
    return _status_kib(pid, "VmHWM") * 1024


def reset_hwm(pid: int) -> bool:
    """Reset the peak RSS (VmHWM) of `pid` (Linux clear_refs 5); False when not allowed."""
    try:
        with open(f"/proc/{pid}/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def children(pid: int) -> list[int]:
    """All descendants of `pid`."""
    found: list[int] = []
    todo = [pid]
    while todo:
        p = todo.pop()
        try:
            for task in os.listdir(f"/proc/{p}/task"):
                with open(f"/proc/{p}/task/{task}/children") as f:
                    kids = [int(k) for k in f.read().split()]
                found += kids
                todo += kids
        except (FileNotFoundError, ProcessLookupError):
            continue
    return found


def cpu_seconds(pid: int) -> float:
    """utime + stime of `pid` so far."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (FileNotFoundError, ProcessLookupError):
        return 0.0


class PeakRss:
    """Samples the RSS of a process and its descendants while running; also reads VmHWM
    (reset at start) so that a peak between two samples is not missed."""

    def __init__(self, pid: int, interval: float = 0.02) -> None:
        self.pid = pid
        self.interval = interval
        self.sampled = 0
        self.hwm_reset = False
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._kids: list[int] = []

    def __enter__(self) -> PeakRss:
        self.hwm_reset = reset_hwm(self.pid)
        self._kids = children(self.pid)
        for kid in self._kids:
            reset_hwm(kid)
        self.cpu0 = cpu_seconds(self.pid)
        self._thread.start()
        return self

    def _run(self) -> None:
        n = 0
        while not self._stop.is_set():
            if n % 25 == 0:
                self._kids = children(self.pid)
            self.sampled = max(self.sampled, rss(self.pid) + sum(rss(k) for k in self._kids))
            n += 1
            self._stop.wait(self.interval)

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.cpu = cpu_seconds(self.pid) - self.cpu0
        peak_hwm = hwm(self.pid) + sum(hwm(k) for k in self._kids) if self.hwm_reset else 0
        self.peak = max(self.sampled, peak_hwm)


# --- the server --------------------------------------------------------------------------


@dataclass
class Server:
    data_dir: Path
    port: int
    proc: subprocess.Popen
    log_path: Path
    token: str
    base: str = field(init=False)

    def __post_init__(self) -> None:
        self.base = f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int:
        return self.proc.pid

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}

    def stop(self, timeout: float = 90.0) -> None:
        """SIGINT (a graceful uvicorn shutdown, releasing the DuckDB file), then wait."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def start_server(data_dir: Path, token: str, *, log_path: Path,
                 env: dict[str, str] | None = None, ready_timeout: float = 120.0) -> Server:
    port = free_port()
    log = open(log_path, "ab")
    proc = subprocess.Popen(
        [*tagport_command(), "--data-dir", str(data_dir), "serve", "--host", "127.0.0.1",
         "--port", str(port)],
        stdout=log, stderr=subprocess.STDOUT, env=env,
    )
    log.close()
    server = Server(data_dir, port, proc, log_path, token)
    deadline = time.monotonic() + ready_timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"tagport serve exited ({proc.returncode}); see {log_path}:\n"
                               + log_path.read_text(errors="replace")[-3000:])
        try:
            r = httpx.get(f"{server.base}/openapi.json", timeout=2)
            if r.status_code == 200:
                return server
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    server.stop()
    raise RuntimeError(f"tagport serve did not answer within {ready_timeout}s; see {log_path}")


# --- a frozen copy of the source ------------------------------------------------------------


def source_digest(root: Path) -> str:
    import hashlib

    h = hashlib.sha256()
    for f in sorted(root.rglob("*")):
        if f.is_file() and "__pycache__" not in f.parts:
            h.update(str(f.relative_to(root)).encode() + b"\0" + f.read_bytes())
    return h.hexdigest()[:12]


def snapshot_source(dest: Path) -> str:
    """Copy src/tagport to `dest` and make every tagport subprocess import it from there
    (PYTHONPATH precedes the editable install's path), so that edits others make to src/
    during a long run do not mix versions. Returns the copy's digest."""
    src = ROOT / "src" / "tagport"
    shutil.rmtree(dest, ignore_errors=True)
    shutil.copytree(src, dest / "tagport", ignore=shutil.ignore_patterns("__pycache__"))
    sys.path.insert(0, str(dest))
    os.environ["PYTHONPATH"] = os.pathsep.join(
        [str(dest)] + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p])
    found = subprocess.run([sys.executable, "-c", "import tagport; print(tagport.__file__)"],
                           capture_output=True, text=True, check=True).stdout.strip()
    if not found.startswith(str(dest)):
        raise RuntimeError(f"the snapshot is not used: tagport imports from {found}")
    return source_digest(dest / "tagport")


# --- reporting ---------------------------------------------------------------------------


def git_rev() -> str:
    try:
        rev = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"],
                             capture_output=True, text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(ROOT), "status", "--porcelain", "--", "src"],
                               capture_output=True, text=True, check=True).stdout.strip()
        return rev + ("+uncommitted changes in src/" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def mem_total() -> int:
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemTotal:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def versions(*modules: str) -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    found = {"python": platform.python_version()}
    for m in modules:
        try:
            found[m] = version(m)
        except PackageNotFoundError:
            found[m] = "not installed"
    found["tagport"] = f"{version('tagport')} @ git {git_rev()}"
    return found


def machine_lines(extra_versions: tuple[str, ...], snapshot: str | None = None) -> list[str]:
    v = versions(*extra_versions)
    if snapshot:
        v["tagport"] += (f" (run from a snapshot of src/tagport taken at the start,"
                         f" digest {snapshot})")
    return [
        f"- machine: {os.cpu_count()} cores ({cpu_model()}), "
        f"{mem_total() / 2**30:.1f} GiB RAM, {platform.system()} {platform.release()}",
        "- versions: " + ", ".join(f"{k} {val}" for k, val in v.items()),
        "- load average (1/5/15 min) when the report was written: "
        + " / ".join(f"{x:.2f}" for x in os.getloadavg())
        + " (the machine is shared; other processes may have run during the measurements)",
    ]


def table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def fmt_rate(x: float) -> str:
    if x >= 1e6:
        return f"{x / 1e6:.2f} M"
    if x >= 1e3:
        return f"{x / 1e3:.0f} k"
    return f"{x:.0f}"


def fmt_mib(n: int | float) -> str:
    return f"{n / MIB:,.0f} MiB"


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)
