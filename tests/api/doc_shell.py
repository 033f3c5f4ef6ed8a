"""The shell the executable documents run in (imported as `doc_shell`): `credo …` in this
process on a fresh SQLite database, and `credo serve … &` as a real server process on a free
port, stopped afterwards."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from click.testing import CliRunner
from doc_runner import DocError, Shell

from api.cli.main import main

DOC_BASE = "http://127.0.0.1:8000"  # the server the documents talk to


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_until_up(base: str, process: subprocess.Popen, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"credo serve exited: {process.communicate()[1]}")
        try:
            with urllib.request.urlopen(f"{base}/healthz", timeout=5):
                return
        except OSError:
            time.sleep(0.1)
    raise AssertionError("credo serve did not answer in time")


@contextmanager
def doc_shell(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, *, chdir: bool = False
) -> Iterator[Shell]:
    """A Shell on a fresh SQLite database in tmp_path (with `chdir`, the commands also work
    there, so the files they write land in it); `credo serve … &` starts a real server."""
    url = f"sqlite:///{tmp_path / 'credo.db'}"
    monkeypatch.setenv("CREDO_DATABASE_URL", url)
    monkeypatch.setenv("CREDO_RUN_WORKERS", "1")  # a few customers: no worker processes
    if chdir:
        monkeypatch.chdir(tmp_path)
    servers: list[subprocess.Popen] = []

    def credo(args: list[str]) -> str:
        result = CliRunner().invoke(main, args, catch_exceptions=False)
        if result.exit_code != 0:
            raise DocError(f"credo {' '.join(args)}: exit {result.exit_code}: {result.output}")
        return result.stdout

    def serve(args: list[str]) -> str:
        port = str(free_port())  # instead of the document's
        if "--port" in args:
            at = args.index("--port")
            args = args[:at] + args[at + 2 :]
        script = Path(sys.executable).parent / "credo"
        command = [str(script)] if script.exists() else [sys.executable, "-m", "api"]
        process = subprocess.Popen(
            [*command, "serve", *args, "--port", port],
            env={**os.environ, "CREDO_DATABASE_URL": url},
            cwd=tmp_path,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        servers.append(process)
        base = f"http://127.0.0.1:{port}"
        wait_until_up(base, process)
        return base

    handlers = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield Shell(credo=credo, serve=serve, cwd=tmp_path, doc_base=DOC_BASE)
    finally:
        for sig, handler in handlers.items():  # `credo run` in this process sets its own
            signal.signal(sig, handler)
        for process in servers:
            process.terminate()
            try:
                process.communicate(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.communicate()
