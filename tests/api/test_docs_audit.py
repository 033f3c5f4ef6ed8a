"""docs/audit.md is executable: its shell examples run in the order written against a fresh
SQLite database and a real `credo serve`, every answer shown is the answer given, and its
auditor's script, run on the JSONL export those examples fetched, agrees with the stored chain
and stops at a tampered line."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from click.testing import CliRunner
from doc_runner import DocError, Shell, match, read_blocks, split_commands

from api.cli.main import main

DOC = Path(__file__).resolve().parents[2] / "docs" / "audit.md"
DOC_BASE = "http://127.0.0.1:8000"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _wait_until_up(base: str, process: subprocess.Popen, timeout: float = 30.0) -> None:
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


@pytest.fixture
def shell(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """A Shell on a fresh SQLite database, working in tmp_path (files the commands write land
    there); `credo serve … &` starts a real server process."""
    url = f"sqlite:///{tmp_path / 'credo.db'}"
    monkeypatch.setenv("CREDO_DATABASE_URL", url)
    monkeypatch.setenv("CREDO_RUN_WORKERS", "1")
    monkeypatch.chdir(tmp_path)
    servers: list[subprocess.Popen] = []

    def credo(args: list[str]) -> str:
        result = CliRunner().invoke(main, args, catch_exceptions=False)
        if result.exit_code != 0:
            raise DocError(f"credo {' '.join(args)}: exit {result.exit_code}: {result.output}")
        return result.stdout

    def serve(args: list[str]) -> str:
        port = str(_free_port())
        if "--port" in args:
            at = args.index("--port")
            args = args[:at] + args[at + 2 :]
        process = subprocess.Popen(
            [sys.executable, "-m", "api", "serve", *args, "--port", port],
            env={**os.environ, "CREDO_DATABASE_URL": url},
            cwd=tmp_path,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        servers.append(process)
        base = f"http://127.0.0.1:{port}"
        _wait_until_up(base, process)
        return base

    handlers = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    yield Shell(credo=credo, serve=serve, cwd=tmp_path, doc_base=DOC_BASE)
    for sig, handler in handlers.items():  # `credo demo` runs a run in this process
        signal.signal(sig, handler)
    for process in servers:
        process.terminate()
        try:
            process.communicate(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.communicate()


def run_document(shell: Shell) -> None:
    """Run every runnable block of DOC; each answer shown must match the one given."""
    for block in [b for b in read_blocks(DOC) if b.run]:
        commands = split_commands(block.text)
        shown = json.loads(block.answer.text) if block.answer else None
        for number, command in enumerate(commands, 1):
            where = f"docs/audit.md, block at line {block.line}, command {number}: {command}"
            before = len(shell.curls)
            try:
                answer = shell.run(command)
            except DocError as exc:
                raise DocError(f"{where}\n{exc}") from None
            for sent in shell.curls[before:]:
                if sent.status >= 300:
                    raise DocError(f"{where}\nHTTP {sent.status}: {sent.output[:2000]}")
            if number == len(commands) and shown is not None:
                problems = match(shown, json.loads(answer.output))
                if problems:
                    raise DocError(f"{where}\n" + "\n".join(problems) + f"\n{answer.output}")
            printed = _printed(block.text)
            if len(commands) == 1 and printed and _hashless(answer.output) != printed:
                raise DocError(f"{where}\nprints, unlike the lines shown:\n{answer.output}")


def _hashless(text: str) -> list[str]:
    """Lines of output with each hash as <hash>: they differ from one database to the next."""
    return [re.sub(r"\b[0-9a-f]{64}\b", "<hash>", line) for line in text.splitlines()]


def _printed(block: str) -> list[str]:
    """The output a one-command block shows as `# ` lines after its command."""
    lines = block.splitlines()
    if len(lines) < 2 or not all(line.startswith("# ") for line in lines[1:]):
        return []
    return _hashless("\n".join(line[2:] for line in lines[1:]))


def _script() -> str:
    (block,) = [b for b in read_blocks(DOC) if b.language == "python"]
    return block.text


def _recheck(path: Path, *args: str) -> subprocess.CompletedProcess:
    script = path.parent / "recheck.py"
    script.write_text(_script(), encoding="utf-8")
    return subprocess.run(
        [sys.executable, str(script), str(path), *args], capture_output=True, text=True
    )


def test_the_auditors_guide_runs_and_its_script_agrees_with_the_chain(shell, tmp_path):
    run_document(shell)
    from storage.decisions import chain_head

    export = tmp_path / "decisions.jsonl"
    lines = export.read_text(encoding="utf-8").splitlines()
    seq, head = chain_head()
    assert len(lines) == seq > 10
    checked = _recheck(export)
    assert checked.returncode == 0, checked.stderr
    assert checked.stdout.strip() == f"{seq} decisions hold; the last one's hash is {head}"
    anchor = json.loads((tmp_path / "anchor.json").read_text())
    assert anchor["hash"] == head  # the anchor the guide wrote is what the script ends on
    # Change one outcome in the file: the script stops on that line.
    row = json.loads(lines[6])
    row["outcome"] = {**row["outcome"], "tampered": True}
    lines[6] = json.dumps(row, ensure_ascii=False)
    export.write_text("\n".join(lines) + "\n", encoding="utf-8")
    tampered = _recheck(export)
    assert tampered.returncode == 1
    assert f"line 7 (seq {row['seq']}): the chain does not hold here" in tampered.stderr
    # The auditor's export the guide names too ({seq, record, prev_hash, hash} lines): the same
    # script agrees with it, and stops at a line whose record was changed.
    audit_export = tmp_path / "audit-export.jsonl"
    lines = audit_export.read_text(encoding="utf-8").splitlines()
    assert len(lines) == seq and set(json.loads(lines[0])) == {"seq", "record", "prev_hash", "hash"}
    checked = _recheck(audit_export)
    assert checked.returncode == 0, checked.stderr
    assert checked.stdout.strip() == f"{seq} decisions hold; the last one's hash is {head}"
    row = json.loads(lines[3])
    row["record"]["facts"] = {**row["record"]["facts"], "open_balance": "0.00"}
    lines[3] = json.dumps(row, ensure_ascii=False)
    audit_export.write_text("\n".join(lines) + "\n", encoding="utf-8")
    tampered = _recheck(audit_export)
    assert tampered.returncode == 1
    assert f"line 4 (seq {row['seq']}): the chain does not hold here" in tampered.stderr


def test_the_script_recomputes_every_record_format_and_starts_at_a_checkpoint(db, tmp_path):
    """Rows of formats 1, 2, 4, 3 and 5 (tests/api/test_audit_prune.py stores the old ones as
    credo did) and a chain cut by a prune, rechecked from the checkpoint's hash."""
    from datetime import UTC, datetime

    from test_audit_prune import _record, _store_old_format

    from storage.decisions import append_decisions, iter_decisions, retention

    for n, fmt in enumerate((1, 2, 4, 3), 1):
        _store_old_format(fmt, n)
    append_decisions([_record(n, datetime(2022, 1, n, tzinfo=UTC)) for n in range(5, 7)])
    export = tmp_path / "all.jsonl"
    export.write_text("".join(json.dumps(d) + "\n" for d in iter_decisions()), encoding="utf-8")
    assert _recheck(export).returncode == 0
    formats = [json.loads(line).get("format", 1) for line in export.read_text().splitlines()]
    assert formats == [1, 2, 4, 3, 5, 5]
    from api.audit_records import export_decisions

    nested = tmp_path / "audit-export.jsonl"  # the same rows as `credo audit export` writes them
    nested.write_text("".join(export_decisions("jsonl").chunks), encoding="utf-8")
    assert _recheck(nested).returncode == 0
    checkpoint = retention.prune_through(3, datetime(2022, 1, 4, tzinfo=UTC), "test")
    export.write_text("".join(json.dumps(d) + "\n" for d in iter_decisions()), encoding="utf-8")
    assert _recheck(export).returncode == 1  # from the genesis, the first line does not hold
    resumed = _recheck(export, checkpoint.hash)
    assert resumed.returncode == 0 and re.match(r"3 decisions hold", resumed.stdout)
