#!/usr/bin/env python3
"""Set everything up in ./.venv and run tagport: `python3 dev.py demo` or `python3 dev.py test`.

Needs only python3 (3.11+). The virtual environment is made once and refreshed when
pyproject.toml changes.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
BIN = VENV / ("Scripts" if os.name == "nt" else "bin")
STAMP = VENV / ".tagport-installed"


def ensure_env(extras: str) -> None:
    """`.venv` with tagport and `extras` (`""` for the service, `"[test]"` for the suite)."""
    if sys.version_info < (3, 11):  # noqa: UP036 - dev.py runs under any python3
        sys.exit(f"tagport needs Python 3.11 or newer; this is {sys.version.split()[0]}")
    digest = hashlib.sha256((ROOT / "pyproject.toml").read_bytes()).hexdigest()
    installed = STAMP.read_text().split() if STAMP.exists() else []
    if f"{digest}{extras}" in installed or f"{digest}[test]" in installed:
        return
    if not (BIN / "python").exists():
        print("creating .venv ...", flush=True)
        venv.EnvBuilder(with_pip=True).create(VENV)
    print("installing tagport and its dependencies into .venv ...", flush=True)
    subprocess.run([str(BIN / "python"), "-m", "pip", "install", "-q", "--upgrade", "pip"],
                   check=True)
    subprocess.run([str(BIN / "python"), "-m", "pip", "install", "-q", "-e", f"{ROOT}{extras}"],
                   check=True)
    STAMP.write_text(" ".join([*installed, f"{digest}{extras}"]))


def main() -> int:
    if len(sys.argv) < 2 or sys.argv[1] not in ("demo", "test"):
        print(__doc__)
        return 2
    ensure_env("" if sys.argv[1] == "demo" else "[test]")
    if sys.argv[1] == "demo":
        args = [str(BIN / "tagport"), "demo", *sys.argv[2:]]
    else:
        args = [str(BIN / "python"), "-m", "pytest", *sys.argv[2:]]
        if not [a for a in sys.argv[2:] if not a.startswith("-")]:
            # the whole suite: one process per core (pytest-xdist), a test file's tests in
            # one process so that module-scoped fixtures (a Spark session, a server) are
            # built once per file
            args += ["-n", "2", "--dist", "loadfile", "tests"]
    os.chdir(ROOT)
    os.execv(args[0], args)


if __name__ == "__main__":
    sys.exit(main())
