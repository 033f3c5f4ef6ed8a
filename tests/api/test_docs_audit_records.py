"""docs/audit-records.md's sections "The operator log" and "Export" are executable: their shell
examples run, in order, against a real `credo serve` on a fresh SQLite database
holding two customers
after one nightly run (as the document says), and every answer shown is the answer they get;
the auditor's script the document shows agrees with the export, and finds an edited line."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner
from doc_runner import Block, DocError, Shell, match, read_blocks, split_commands
from doc_shell import doc_shell

from api.cli.main import main

DOC = Path(__file__).resolve().parents[2] / "docs" / "audit-records.md"
SECTIONS = ("## The operator log", "## Export")
LEDGER = [
    {"type": "customer", "id": "C-1001", "name": "Acme GmbH", "currency": "EUR",
     "credit_limit": "20000.00", "since": "2020-02-29"},
    {"type": "customer", "id": "C-1002", "name": "Bolt Ltd", "currency": "GBP",
     "credit_limit": "5000.00", "since": "2021-06-01"},
    {"type": "invoice", "id": "INV-1", "customer_id": "C-1001", "issue_date": "2024-03-01",
     "due_date": "2024-03-31", "amount": "1200.00"},
    {"type": "invoice", "id": "INV-77", "customer_id": "C-1002", "issue_date": "2024-05-01",
     "due_date": "2024-05-31", "amount": "980.00"},
]  # fmt: skip


def section_blocks(path: Path = DOC) -> tuple[list[Block], list[Block]]:
    """The blocks under SECTIONS (to the next `## ` heading): (sh blocks to run, python
    blocks)."""
    lines = path.read_text(encoding="utf-8").splitlines()
    ranges, start = [], None
    for number, line in enumerate(lines, 1):
        if line.startswith("## ") or line.startswith("# "):
            if start is not None:
                ranges.append((start, number))
                start = None
            if line.strip() in SECTIONS:
                start = number
    if start is not None:
        ranges.append((start, len(lines) + 1))
    assert len(ranges) == len(SECTIONS), f"{path} lacks a section of {SECTIONS}"
    inside = [b for b in read_blocks(path) if any(a < b.line < z for a, z in ranges)]
    return [b for b in inside if b.run], [b for b in inside if b.language == "python"]


@pytest.fixture
def shell(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """A Shell on the document's database, with CREDO and AUDIT_KEY set and a server up; it
    works in tmp_path, where `credo … --output FILE` writes, as curl's -o does."""
    with doc_shell(tmp_path, monkeypatch, chdir=True) as opened:
        ledger = tmp_path / "ledger.jsonl"
        ledger.write_text("".join(json.dumps(r) + "\n" for r in LEDGER), encoding="utf-8")
        opened.credo(["init"])
        opened.credo(["import", str(ledger)])
        key = opened.credo(["keys", "create", "--name", "audit", "--role", "auditor"])
        opened.credo(["run", "--as-of", "2024-06-03"])
        base = opened.serve([])
        opened.serve, opened.doc_base = (lambda args: base), base
        opened.env.update(CREDO=base, AUDIT_KEY=key.splitlines()[-1])
        yield opened


def run_blocks(shell: Shell, blocks: list[Block]) -> None:
    """Run each block's commands; the last one's answer must match the block's shown answer."""
    for block in blocks:
        commands = split_commands(block.text)
        shown = json.loads(block.answer.text) if block.answer else None
        for number, command in enumerate(commands, 1):
            where = (
                f"docs/audit-records.md, block at line {block.line}, "
                f"command {number}: {command[:200]}"
            )
            before = len(shell.curls)
            try:
                answer = shell.run(command)
            except DocError as exc:
                raise DocError(f"{where}\n{exc}") from None
            last = number == len(commands)
            status = shown.get("status") if last and isinstance(shown, dict) else None
            for sent in shell.curls[before:]:
                if (sent.status != status) if isinstance(status, int) else sent.status >= 300:
                    raise DocError(f"{where}\nHTTP {sent.status}: {sent.output[:2000]}")
            if last and shown is not None:
                try:
                    actual = json.loads(answer.output)
                except ValueError:
                    raise DocError(f"{where}\nnot JSON: {answer.output[:2000]}") from None
                problems = match(shown, actual)
                if problems:
                    raise DocError(
                        f"{where}\nthe answer shown at line {block.answer.line} differs:\n  "
                        + "\n  ".join(problems)
                        + f"\nactual answer: {json.dumps(actual)[:4000]}"
                    )


def test_the_audit_guide_runs_and_answers_what_it_shows(shell: Shell):
    blocks, scripts = section_blocks()
    assert len(blocks) >= 7 and sum(b.answer is not None for b in blocks) >= 6
    run_blocks(shell, blocks)
    # the files the Export section wrote
    assert (shell.cwd / "decisions.csv").read_text(encoding="utf-8").startswith("seq,decision_id")
    credit = (shell.cwd / "credit.jsonl").read_text(encoding="utf-8").splitlines()
    assert len(credit) == 2 and all('"kind":"credit"' in line.replace(" ", "") for line in credit)

    # the auditor's script, as the document shows it, on a whole export and on an edited one
    (script_block,) = scripts
    script = shell.cwd / "check.py"
    script.write_text(script_block.text, encoding="utf-8")
    everything = shell.cwd / "all.jsonl"
    everything.write_text(shell.credo(["audit", "export"]), encoding="utf-8")

    def check(path: Path) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, str(script), str(path)], capture_output=True, text=True, timeout=60
        )

    good = check(everything)
    assert (good.returncode, good.stdout) == (0, "OK\n"), good.stderr
    lines = everything.read_text(encoding="utf-8").splitlines()
    assert len(lines) == 6  # two customers, three kinds
    edited = json.loads(lines[2])
    edited["record"]["outcome"] = {**edited["record"]["outcome"], "edited": True}
    lines[2] = json.dumps(edited)
    tampered = shell.cwd / "tampered.jsonl"
    tampered.write_text("\n".join(lines) + "\n", encoding="utf-8")
    bad = check(tampered)
    assert bad.returncode == 1
    assert bad.stdout.splitlines() == [f"decision #{edited['seq']}: altered", "1 problems"]


def test_the_commands_the_sections_name_exist():
    text = DOC.read_text(encoding="utf-8")
    named = set(re.findall(r"`(credo audit [a-z-]+)", text))
    assert {"credo audit log", "credo audit export"} <= named
    for command in named:
        words = command.split()[1:]
        result = CliRunner().invoke(main, [*words, "--help"])
        assert result.exit_code == 0, command
