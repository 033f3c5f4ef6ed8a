"""docs/erp.md is executable: its shell examples run, in the order written, against a real
`credo serve` on a free local port and a fresh SQLite database, and every answer it shows is the
answer they get (doc_runner says how answers are matched and which commands a doc may use)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from doc_runner import DocError, Shell, match, read_blocks, split_commands
from doc_shell import DOC_BASE, doc_shell

DOC = Path(__file__).resolve().parents[2] / "docs" / "erp.md"


@pytest.fixture
def shell(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    with doc_shell(tmp_path, monkeypatch) as opened:
        yield opened


def test_the_erp_guide_runs_and_answers_what_it_shows(shell: Shell):
    blocks = [b for b in read_blocks(DOC) if b.run]
    assert len(blocks) > 10 and sum(b.answer is not None for b in blocks) > 5
    for block in blocks:
        commands = split_commands(block.text)
        shown = json.loads(block.answer.text) if block.answer else None
        for number, command in enumerate(commands, 1):
            where = f"docs/erp.md, block at line {block.line}, command {number}: {command[:200]}"
            before = len(shell.curls)
            try:
                answer = shell.run(command)
            except DocError as exc:
                raise DocError(f"{where}\n{exc}") from None
            last = number == len(commands)
            expected_status = None
            if last and isinstance(shown, dict) and isinstance(shown.get("status"), int):
                expected_status = shown["status"]  # a problem's status
            for sent in shell.curls[before:]:
                problem = sent.status != expected_status if expected_status else sent.status >= 300
                if problem:
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


def test_the_matcher_allows_added_fields_and_checks_shapes():
    actual = {
        "decision_id": "d03bf5e9",
        "created_at": "2024-05-20T09:14:03.511028+00:00",
        "hash": "ab" * 32,
        "seq": 7,
        "ok": True,
        "reasons": ["Open dispute on 450.50; reminders paused", "second"],
        "via": "api",  # a field added later: the document need not show it
    }
    shown = {
        "decision_id": "<id>",
        "created_at": "<timestamp>",
        "hash": "<hash>",
        "seq": "<int>",
        "ok": True,
        "reasons": ["Open dispute on …; reminders paused", "…"],
        "…": "…",
    }
    assert match(shown, actual) == []
    assert match({"seq": "<hash>"}, actual) == ["answer.seq: 7 is not <hash>"]
    assert match({"seq": "<uuid>"}, actual)[0].startswith("answer.seq: unknown placeholder")
    assert match({"ok": 1}, actual) == ["answer.ok: expected 1, got True"]
    assert match({"gone": 1}, actual) == ["answer: missing 'gone'"]
    assert match({"reasons": ["second"]}, actual)[0].startswith("answer.reasons: expected 1 items")
    assert match({"reasons": ["Open …", "third"]}, actual) == [
        "answer.reasons[1]: expected 'third', got 'second'"
    ]


def test_commands_are_split_as_a_shell_would():
    text = (
        'curl -X POST "$CREDO/x" \\\n  -d \'{"a": 1,\n  "b": 2}\'   # a comment\n'
        "export RUN=$(curl -s \"$CREDO/runs\" \\\n  | jq -r '.items[0].run_id')\n"
        "# a line of comment\ncredo keys list\n"
    )
    assert split_commands(text) == [
        'curl -X POST "$CREDO/x"   -d \'{"a": 1,\n  "b": 2}\'',
        "export RUN=$(curl -s \"$CREDO/runs\"   | jq -r '.items[0].run_id')",
        "credo keys list",
    ]


def test_a_command_outside_the_subset_is_refused(tmp_path):
    shell = Shell(credo=lambda a: "", serve=lambda a: "", cwd=tmp_path, doc_base=DOC_BASE)
    with pytest.raises(DocError, match="unsupported command"):
        shell.run("rm -rf data")
    with pytest.raises(DocError, match=r"\$RUN is used before it is set"):
        shell.run('curl "http://127.0.0.1:1/v1/runs/$RUN"')
    with pytest.raises(DocError, match="only `jq -r FILTER`"):
        shell.run("credo keys list | sort")
