"""docs/audit-decisions.md is executable: its shell examples run, in the order written,
against a real `credo serve` and a fresh SQLite database
(tests/api/doc_shell.py). A ```json
block after a run block is that block's answer (doc_runner.match); a ```text block after one is
its output, line for line, where `…` stands for any text and <id>, <hash>, <timestamp>, <int>
for values of that shape."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from doc_runner import DocError, Shell, match, read_blocks, split_commands
from doc_shell import doc_shell

DOC = Path(__file__).resolve().parents[2] / "docs" / "audit-decisions.md"
TEXT_PLACEHOLDERS = {
    "<id>": r"\S+",
    "<hash>": r"[0-9a-f]{64}",
    "<timestamp>": r"\d{4}-\d\d-\d\d[ T]\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)?",
    "<int>": r"\d+",
}


def text_pattern(shown: str) -> re.Pattern[str]:
    """The output a ```text block stands for, as a regular expression."""
    tokens = re.split(r"(<id>|<hash>|<timestamp>|<int>|…)", shown)
    parts = [TEXT_PLACEHOLDERS.get(t, ".*" if t == "…" else re.escape(t)) for t in tokens]
    return re.compile("".join(parts), re.S)


def text_answers(path: Path) -> dict[int, tuple[int, str]]:
    """For each run ```sh block (by its line), the ```text block right after it (only blank
    lines between): (that block's line, its text)."""
    blocks = read_blocks(path)
    lines = path.read_text(encoding="utf-8").splitlines()
    found = {}
    for before, after in zip(blocks, blocks[1:], strict=False):
        between = lines[before.line + before.text.count("\n") + 2 : after.line - 1]
        if before.run and after.language == "text" and not any(s.strip() for s in between):
            found[before.line] = (after.line, after.text)
    return found


@pytest.fixture
def shell(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    with doc_shell(tmp_path, monkeypatch) as opened:
        yield opened


def test_the_audit_guide_runs_and_answers_what_it_shows(shell: Shell):
    blocks = [b for b in read_blocks(DOC) if b.run]
    texts = text_answers(DOC)
    assert len(blocks) > 8 and len(texts) >= 3
    for block in blocks:
        commands = split_commands(block.text)
        shown = json.loads(block.answer.text) if block.answer else None
        for number, command in enumerate(commands, 1):
            where = (
                f"docs/audit-decisions.md, block at line {block.line}, "
                f"command {number}: {command[:200]}"
            )
            before = len(shell.curls)
            try:
                answer = shell.run(command)
            except DocError as exc:
                raise DocError(f"{where}\n{exc}") from None
            for sent in shell.curls[before:]:
                if sent.status >= 300:
                    raise DocError(f"{where}\nHTTP {sent.status}: {sent.output[:2000]}")
            if number < len(commands):
                continue
            if shown is not None:
                problems = match(shown, json.loads(answer.output))
                if problems:
                    raise DocError(f"{where}\n" + "\n".join(problems) + f"\n{answer.output[:3000]}")
            if block.line in texts:
                line, text = texts[block.line]
                if not text_pattern(text.rstrip("\n")).fullmatch(answer.output.rstrip("\n")):
                    raise DocError(
                        f"{where}\nthe output shown at line {line} differs; actual output:\n"
                        + answer.output[:3000]
                    )


def test_a_text_answer_matches_line_for_line_with_placeholders():
    pattern = text_pattern("decision <id> was made by <hash>\n  …\nOK: <int> replayed")
    assert pattern.fullmatch("decision d-1 was made by " + "ab" * 32 + "\n  x\n  y\nOK: 3 replayed")
    assert not pattern.fullmatch("decision d-1 was made by abc\n  x\nOK: 3 replayed")
