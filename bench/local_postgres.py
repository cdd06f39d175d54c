"""A private PostgreSQL server in a temp dir, for benchmarks (as scripts/test.sh starts one for the tests).

Durability stays at PostgreSQL's defaults (fsync, synchronous commit): the figures are a deployment's,
not a test server's. Needs PostgreSQL's server binaries (Debian: postgresql-15); run as root, the server
runs as the `postgres` user, as initdb requires.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg

from bench.harness import cpu_s, die_with_parent
from bench.local_temporal import free_port


def server_binaries() -> Path | None:
    """The newest PostgreSQL's bin folder that has initdb, or None."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(Path(p).parent.parent.name))
    if found:
        return Path(found[-1]).parent
    initdb = shutil.which("initdb")
    return Path(initdb).parent if initdb else None


def _as_server_user() -> None:
    """In the child: as `postgres` when we are root (initdb and the server refuse root), and SIGKILLed when the
    benchmark dies, however it dies (os._exit, a timeout): a server left behind would hold its memory."""
    if os.geteuid() == 0:
        user = pwd.getpwnam("postgres")
        os.setgroups([user.pw_gid])
        os.setgid(user.pw_gid)
        os.setuid(user.pw_uid)
    die_with_parent()  # after setuid, which clears it


@contextmanager
def private_server() -> Iterator[tuple[str, int]]:
    """Yields (URL of an empty database, the server's pid); the server and its folder go at the end."""
    binaries = server_binaries()
    if binaries is None:
        raise RuntimeError("PostgreSQL's server binaries (initdb, postgres) are not installed")
    folder = Path(tempfile.mkdtemp(prefix="dmcflow-bench-pg-"))
    if os.geteuid() == 0:
        shutil.chown(folder, "postgres", "postgres")
    data, port = folder / "data", free_port()
    subprocess.run([str(binaries / "initdb"), "-D", str(data), "-U", "postgres", "-A", "trust", "-E", "UTF8",
                    "--locale=C.UTF-8"], cwd="/tmp", check=True, stdout=subprocess.DEVNULL, preexec_fn=_as_server_user)
    server = subprocess.Popen([str(binaries / "postgres"), "-D", str(data), "-c", "listen_addresses=127.0.0.1",
                               "-p", str(port), "-k", str(folder)], cwd="/tmp", stdout=open(folder / "server.log", "ab"),
                              stderr=subprocess.STDOUT, start_new_session=True, preexec_fn=_as_server_user)
    try:
        admin = f"postgresql://postgres@127.0.0.1:{port}/postgres"
        for _ in range(600):  # accepting connections once its startup is done
            if server.poll() is not None:
                raise RuntimeError(f"PostgreSQL did not start: {(folder / 'server.log').read_text()[-2000:]}")
            try:
                with psycopg.connect(admin, autocommit=True) as conn:
                    conn.execute("CREATE ROLE bench LOGIN PASSWORD 'bench'")
                    conn.execute("CREATE DATABASE bench OWNER bench")
                break
            except psycopg.OperationalError:
                time.sleep(0.1)
        yield f"postgresql://bench:bench@127.0.0.1:{port}/bench", server.pid
    finally:
        server.send_signal(signal.SIGINT)  # fast shutdown
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
        shutil.rmtree(folder, ignore_errors=True)


def server_cpu_s(postmaster: int) -> float:
    """CPU seconds used so far by the server's processes that are alive (the backends of the benchmark's
    connections stay alive in its pool, so their work is counted)."""
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
