"""Run a Markdown document's shell examples and compare their answers with the ones it shows.

Imported by the tests as `doc_runner` (tests/ has no packages). What a document may hold:

- A ```sh block is run, command by command, in the order written. A block preceded by an
  HTML comment starting `<!-- not run` is only read.
- A ```json block that follows a run ```sh block with only blank lines between is the answer of
  that block's last command, and must match it (see `match`).
- Commands: `curl` (-X, -H, -d, -o, -s; sent with urllib, so curl need not be installed),
  `credo …` (run by the caller's `credo` function), `export NAME=value`,
  `export NAME=$(command)` and `command | jq -r FILTER` (FILTER a path such as
  `.items[0].run_id`). `$NAME` and `${NAME}` expand outside single quotes; `#` starts a
  comment; a backslash at the end of a line continues it. Anything else fails the test, naming
  the line, so a document cannot silently drift from what is checked.
- Every curl must answer 2xx, unless its shown answer is a problem (an object with an integer
  `status`): then the status must be that one.
"""

from __future__ import annotations

import json
import re
import shlex
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

# Shown strings that stand for a value of a shape: ids, times and hashes differ on every run.
PLACEHOLDERS: dict[str, Callable[[Any], bool]] = {
    "<id>": lambda v: isinstance(v, str) and bool(v),
    "<cursor>": lambda v: isinstance(v, str) and bool(v),
    "<date>": lambda v: isinstance(v, str) and bool(re.fullmatch(r"\d{4}-\d\d-\d\d", v)),
    "<timestamp>": lambda v: (
        isinstance(v, str)
        and bool(re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)", v))
    ),
    "<hash>": lambda v: isinstance(v, str) and bool(re.fullmatch(r"[0-9a-f]{64}", v)),
    "<int>": lambda v: isinstance(v, int) and not isinstance(v, bool),
}
ELLIPSIS = "…"  # in a shown string: any text; as a list's last item or an object key: more


class DocError(AssertionError):
    """The document and what its commands do disagree; the message says where and how."""


@dataclass
class Block:
    language: str
    text: str
    line: int  # of the opening fence, 1-based
    run: bool  # a ```sh block not marked `<!-- not run`
    answer: Block | None = None  # the ```json block shown as its answer


def read_blocks(path: Path) -> list[Block]:
    """The fenced blocks of a Markdown file, each sh block with the json answer shown after it."""
    lines = path.read_text(encoding="utf-8").splitlines()
    blocks: list[Block] = []
    previous = ""  # the last non-blank line before the current position
    after: Block | None = None  # the sh block directly above, while only blank lines follow
    index = 0
    while index < len(lines):
        stripped = lines[index].strip()
        if stripped.startswith("```") and len(stripped) > 3:
            indent = len(lines[index]) - len(lines[index].lstrip())
            end = index + 1
            while lines[end].strip() != "```":
                end += 1
            text = "\n".join(line[indent:] for line in lines[index + 1 : end])
            language = stripped[3:].strip()
            block = Block(language, text, index + 1, language == "sh")
            block.run = block.run and not previous.startswith("<!-- not run")
            if language == "json" and after is not None:
                after.answer = block
            blocks.append(block)
            after = block if block.run else None
            previous, index = "```", end + 1
            continue
        if stripped:
            previous, after = stripped, None
        index += 1
    return blocks


def split_commands(text: str) -> list[str]:
    """A shell block's commands: one per line, joined across a backslash at the end of a line
    and across newlines inside quotes or $( ); comments dropped."""
    commands, current, quote, depth, i = [], [], "", 0, 0
    while i < len(text):
        char = text[i]
        if quote == "'":
            quote = "" if char == "'" else quote
        elif char == "\\" and text[i + 1 : i + 2] == "\n":
            i += 2
            continue
        elif quote == '"':
            quote = "" if char == '"' else quote
        elif char in "'\"":
            quote = char
        elif char == "$" and text[i + 1 : i + 2] == "(":
            depth += 1
        elif char == ")" and depth:
            depth -= 1
        elif char == "#" and (not current or current[-1] in " \t\n"):
            while i < len(text) and text[i] != "\n":
                i += 1
            continue
        elif char == "\n" and not depth:
            commands.append("".join(current).strip())
            current, i = [], i + 1
            continue
        current.append(char)
        i += 1
    commands.append("".join(current).strip())
    return [command for command in commands if command]


def expand(text: str, env: dict[str, str]) -> str:
    """$NAME and ${NAME} replaced outside single quotes; an unset name is an error."""
    out, quote, i = [], "", 0
    while i < len(text):
        char = text[i]
        if char == "'" and quote != '"':
            quote = "" if quote == "'" else "'"
        elif char == '"' and quote != "'":
            quote = "" if quote == '"' else '"'
        elif char == "$" and quote != "'":
            found = re.match(r"\$(?:\{(\w+)\}|(\w+))", text[i:])
            if found:
                name = found.group(1) or found.group(2)
                if name not in env:
                    raise DocError(f"${name} is used before it is set")
                out.append(env[name])
                i += found.end()
                continue
        out.append(char)
        i += 1
    return "".join(out)


@dataclass
class Answer:
    """What a command gave: its output, and for curl the HTTP status."""

    output: str
    status: int | None = None


@dataclass
class Shell:
    """Runs commands of the documented subset. `credo(args) -> stdout` runs a credo command;
    `serve(args) -> base URL` starts `credo serve` (`credo serve … &`); `base`, once set,
    replaces `doc_base` when the document exports it."""

    credo: Callable[[list[str]], str]
    serve: Callable[[list[str]], str]
    cwd: Path
    doc_base: str
    env: dict[str, str] = field(default_factory=dict)
    base: str | None = None
    curls: list[Answer] = field(default_factory=list)

    def run(self, command: str) -> Answer:
        exported = re.fullmatch(r"export (\w+)=(.*)", command, re.S)
        if exported:
            name, value = exported.groups()
            substituted = re.fullmatch(r"\$\((.*)\)", value, re.S)
            if substituted:
                value = self.pipeline(substituted.group(1)).output.rstrip("\n")
            else:
                value = shlex.split(expand(value, self.env))[0]
            if name == "CREDO" and value == self.doc_base and self.base:
                value = self.base
            self.env[name] = value
            return Answer("")
        if command.endswith("&"):
            words = shlex.split(expand(command[:-1], self.env))
            if words[:2] != ["credo", "serve"]:
                raise DocError(f"only `credo serve … &` may run in the background: {command}")
            self.base = self.serve(words[2:])
            return Answer("")
        return self.pipeline(command)

    def pipeline(self, command: str) -> Answer:
        stages = [shlex.split(part) for part in _split_pipe(expand(command, self.env))]
        answer = self.simple(stages[0])
        for stage in stages[1:]:
            if stage[:2] != ["jq", "-r"] or len(stage) != 3:
                raise DocError(f"after a pipe only `jq -r FILTER` is supported: {command}")
            answer = Answer(_jq(stage[2], answer.output), answer.status)
        return answer

    def simple(self, words: list[str]) -> Answer:
        if words[0] == "curl":
            answer = curl(words[1:], self.cwd)
            self.curls.append(answer)
            return answer
        if words[0] == "credo":
            return Answer(self.credo(words[1:]))
        raise DocError(f"unsupported command (curl, credo, export, jq only): {shlex.join(words)}")


def _split_pipe(text: str) -> list[str]:
    parts, current, quote = [], [], ""
    for char in text:
        if char in "'\"" and quote in ("", char):
            quote = "" if quote else char
        if char == "|" and not quote:
            parts.append("".join(current))
            current = []
            continue
        current.append(char)
    parts.append("".join(current))
    return parts


def _jq(path: str, text: str) -> str:
    value: Any = json.loads(text)
    for name, index in re.findall(r"\.(\w+)|\[(\d+)\]", path):
        value = value[name] if name else value[int(index)]
    if value is None:
        return "null\n"
    return (value if isinstance(value, str) else json.dumps(value)) + "\n"


def curl(args: list[str], cwd: Path) -> Answer:
    """The request a curl command line sends, sent with urllib: (body, status)."""
    method, headers, data, output, url = None, {}, None, None, None
    words = iter(args)
    for word in words:
        if word in ("-X", "--request"):
            method = next(words)
        elif word in ("-H", "--header"):
            name, _, value = next(words).partition(":")
            headers[name.strip()] = value.strip()
        elif word in ("-d", "--data", "--data-binary"):
            data = next(words).encode("utf-8")
        elif word in ("-o", "--output"):
            output = cwd / next(words)
        elif word in ("-s", "--silent", "-S", "--show-error"):
            continue
        elif word.startswith("-") or url is not None:
            raise DocError(f"unsupported curl argument {word!r} in: curl {shlex.join(args)}")
        else:
            url = word
    if url is None:
        raise DocError(f"curl without a URL: curl {shlex.join(args)}")
    method = method or ("POST" if data is not None else "GET")
    request = urllib.request.Request(url, data=data, headers=headers, method=method)
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            status, body = response.status, response.read()
    except urllib.error.HTTPError as error:
        status, body = error.code, error.read()
    if output is not None:
        output.write_bytes(body)
        return Answer("", status)
    return Answer(body.decode("utf-8"), status)


def match(shown: Any, actual: Any, where: str = "answer") -> list[str]:
    """How `actual` differs from the `shown` answer; [] when it matches.

    Every key shown must be present with a matching value; keys not shown are allowed (an API
    may add fields). A shown list matches item by item, and has exactly as many items unless its
    last is "…". A shown string matches equal text, a placeholder's shape (PLACEHOLDERS), or,
    when it holds "…", any text in its place. Numbers, booleans and null must be equal.
    """
    if isinstance(shown, dict):
        if not isinstance(actual, dict):
            return [f"{where}: expected an object, got {actual!r}"]
        problems = []
        for key, value in shown.items():
            if key in (ELLIPSIS, "..."):
                continue
            if key not in actual:
                problems.append(f"{where}: missing {key!r}")
            else:
                problems += match(value, actual[key], f"{where}.{key}")
        return problems
    if isinstance(shown, list):
        if not isinstance(actual, list):
            return [f"{where}: expected a list, got {actual!r}"]
        more = bool(shown) and shown[-1] == ELLIPSIS
        items = shown[:-1] if more else shown
        if len(actual) < len(items) or (not more and len(actual) != len(items)):
            return [
                f"{where}: expected {len(items)} items{' or more' if more else ''}, got {actual!r}"
            ]
        return [p for i, s in enumerate(items) for p in match(s, actual[i], f"{where}[{i}]")]
    if isinstance(shown, str):
        if shown.startswith("<") and shown.endswith(">") and " " not in shown:
            if shown not in PLACEHOLDERS:
                return [f"{where}: unknown placeholder {shown} (known: {', '.join(PLACEHOLDERS)})"]
            return [] if PLACEHOLDERS[shown](actual) else [f"{where}: {actual!r} is not {shown}"]
        if ELLIPSIS in shown and isinstance(actual, str):
            pattern = ".*".join(re.escape(part) for part in shown.split(ELLIPSIS))
            return (
                [] if re.fullmatch(pattern, actual, re.S) else [f"{where}: {actual!r} ≠ {shown!r}"]
            )
    same = shown == actual and isinstance(shown, bool) == isinstance(actual, bool)
    return [] if same else [f"{where}: expected {shown!r}, got {actual!r}"]
