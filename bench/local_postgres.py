"""A private PostgreSQL server in a temp dir, for benchmarks (as scripts/test.sh starts one for the tests).

Durability stays at PostgreSQL's defaults (fsync, synchronous commit): the figures are a deployment's,
not a test server's. Needs PostgreSQL's server binaries (Debian: postgresql-15); run as root, the server
runs as the `postgres` user, as initdb requires.
"""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg

from bench.local_temporal import free_port


def server_binaries() -> Path | None:
    """The newest PostgreSQL's bin folder that has initdb, or None."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(Path(p).parent.parent.name))
    if found:
        return Path(found[-1]).parent
    initdb = shutil.which("initdb")
    return Path(initdb).parent if initdb else None


def _as_server_user(args: list[str]) -> list[str]:
    return ["runuser", "-u", "postgres", "--", *args] if os.geteuid() == 0 else args


@contextmanager
def private_server() -> Iterator[tuple[str, int]]:
    """Yields (URL of an empty database, the postmaster's pid); the server and its folder go at the end."""
    binaries = server_binaries()
    if binaries is None:
        raise RuntimeError("PostgreSQL's server binaries (initdb, pg_ctl) are not installed")
    folder = Path(tempfile.mkdtemp(prefix="dmcflow-bench-pg-"))
    if os.geteuid() == 0:
        shutil.chown(folder, "postgres", "postgres")
    data, port = folder / "data", free_port()
    run = {"cwd": "/tmp", "check": True, "stdout": subprocess.DEVNULL}
    subprocess.run(_as_server_user([str(binaries / "initdb"), "-D", str(data), "-U", "postgres", "-A", "trust",
                                    "-E", "UTF8", "--locale=C.UTF-8"]), **run)
    options = f"-c listen_addresses=127.0.0.1 -p {port} -k {folder}"
    pg_ctl = [str(binaries / "pg_ctl"), "-D", str(data), "-w", "-t", "60"]
    subprocess.run(_as_server_user([*pg_ctl, "-l", str(folder / "server.log"), "-o", options, "start"]), **run)
    try:
        with psycopg.connect(f"postgresql://postgres@127.0.0.1:{port}/postgres", autocommit=True) as conn:
            conn.execute("CREATE ROLE bench LOGIN PASSWORD 'bench'")
            conn.execute("CREATE DATABASE bench OWNER bench")
        pid = int((data / "postmaster.pid").read_text().split()[0])
        yield f"postgresql://bench:bench@127.0.0.1:{port}/bench", pid
    finally:
        subprocess.run(_as_server_user([*pg_ctl, "-m", "fast", "stop"]), cwd="/tmp", stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL)
        shutil.rmtree(folder, ignore_errors=True)


def server_cpu_s(postmaster: int) -> float:
    """CPU seconds used so far by the server's processes that are alive (the backends of the benchmark's
    connections stay alive in its pool, so their work is counted)."""
    from bench.harness import cpu_s

    total = 0.0
    for stat in glob.glob("/proc/[0-9]*/stat"):
        try:
            with open(stat) as f:
                parent = int(f.read().rsplit(")", 1)[1].split()[1])
            pid = int(stat.split("/")[2])
            if pid == postmaster or parent == postmaster:
                total += cpu_s(pid)
        except (OSError, ValueError, IndexError):
            continue
    return total
