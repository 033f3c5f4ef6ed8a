"""A reminder version's templates: the files stored with it, {path: text}.

Letters are policy too: the reminder texts and the company settings they use are stored with
the reminder rule set's version (storage.rulesets files), so a change of wording goes through
the lifecycle like a change of rules, and a run renders with the texts of the version it
pinned. The paths are those of a templates directory (rules/templates):

    company.toml                   the sender's details and [languages]
    reminder/<tone>.<language>.j2  a text: friendly.en.j2, firm.de.j2, …
    reminder/_<piece>.j2           a piece the texts include: _pay.en.j2, …

This module reads them from a directory, checks a set (paths, storable text, sizes, and every
text rendered with the sample accounts, as `credo rules check` does) and hashes it
(templates_sha256, beside the version's sha256).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from api.lifecycle_rules import unstorable
from api.nightly.limits import MAX_TEMPLATE_CHARS
from api.nightly.messages import COMPANY_FILE, MessageError, MessageRenderer
from engine.errors import Problem

# The rule sets whose versions carry templates (the kind whose outcome is a reminder's tone).
TEMPLATE_KINDS = ("reminder",)
MAX_FILES = 200
_TEXT = r"reminder/[a-z][a-z0-9_]{0,39}\.[a-z]{2,3}(?:[-_][A-Za-z0-9]{2,8})?\.j2"
_PIECE = r"reminder/_[A-Za-z0-9_][A-Za-z0-9_.-]{0,79}\.j2"
PATH_RE = re.compile(rf"(?:company\.toml|{_TEXT}|{_PIECE})")
PATH_HELP = (
    "a path must be company.toml, reminder/<tone>.<language>.j2 (e.g. reminder/firm.en.j2) "
    "or reminder/_<piece>.j2 (e.g. reminder/_pay.en.j2)"
)


class TemplateFilesError(Exception):
    """A set of templates that cannot be stored: every problem, each naming its file and, for
    a text that fails to render, the line and the sample account."""

    def __init__(self, problems: list[Problem]):
        self.problems = problems
        super().__init__("; ".join(str(p) for p in problems))


def has_templates(kind: str) -> bool:
    """Whether versions of `kind` carry templates."""
    return kind in TEMPLATE_KINDS


def read_templates(directory: Path) -> dict[str, str]:
    """The templates in `directory`: company.toml and reminder/*.j2, {path: text}, the text as
    its bytes decoded (line ends kept). Other files are left out. TemplateFilesError when the
    directory is missing or a file cannot be read as UTF-8."""
    directory = Path(directory)
    if not directory.is_dir():
        raise TemplateFilesError([Problem(str(directory), "no such templates directory")])
    paths = [directory / COMPANY_FILE, *sorted((directory / "reminder").glob("*.j2"))]
    files, problems = {}, []
    for path in paths:
        name = path.relative_to(directory).as_posix()
        if not PATH_RE.fullmatch(name) or not path.is_file():
            continue
        try:
            files[name] = path.read_bytes().decode("utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            problems.append(Problem(str(path), f"cannot read it: {exc}"))
    if problems:
        raise TemplateFilesError(problems)
    return files


def check_templates(files: Any) -> dict[str, str]:
    """`files` if it is a set of templates that may be stored with a version: a JSON object of
    at most MAX_FILES paths (PATH_RE) to texts of at most MAX_TEMPLATE_CHARS characters that
    the databases can store, with company.toml, whose every text renders with each sample
    account within the limits (MessageRenderer.check). TemplateFilesError listing every
    problem otherwise, each naming the file and, where known, the line."""
    if not isinstance(files, Mapping):
        raise TemplateFilesError([Problem("templates", "must be an object of path: text")])
    if len(files) > MAX_FILES:
        raise TemplateFilesError([Problem("templates", f"at most {MAX_FILES} files")])
    problems = []
    for path, text in files.items():
        name = str(path)[:120]
        if not isinstance(path, str) or not PATH_RE.fullmatch(path):
            problems.append(Problem(repr(name), PATH_HELP))
        elif not isinstance(text, str):
            problems.append(Problem(path, "the text must be a string"))
        elif len(text) > MAX_TEMPLATE_CHARS:
            limit = f"{MAX_TEMPLATE_CHARS:,} characters"
            problems.append(Problem(path, f"{len(text):,} characters: at most {limit}"))
        elif bad := unstorable(text):
            line = next(n for n, row in enumerate(text.split("\n"), 1) if unstorable(row))
            problems.append(Problem(path, bad, line=line))
    if problems:
        raise TemplateFilesError(problems)
    try:
        renderer = MessageRenderer(files)
    except MessageError as exc:
        raise TemplateFilesError([render_problem(exc)]) from None
    failed = renderer.check()
    if failed:
        raise TemplateFilesError([render_problem(exc) for exc in failed])
    return dict(files)


def render_problem(exc: MessageError) -> Problem:
    """A template's failure as a problem: the file and line where it failed, what failed, and
    which text included it (when the failure is in a piece) on which sample account."""
    message = exc.problem
    if exc.file and exc.template and exc.file != exc.template:
        message += f" (in {exc.template}, which includes it)"
    if exc.sample:
        message += f" (sample: {exc.sample})"
    return Problem(exc.file or exc.template or "templates", message, line=exc.line or None)


def templates_sha256(files: Mapping[str, str]) -> str:
    """The hash a set of templates is known by (storage.rulesets.files_sha256)."""
    from storage.rulesets import file_sha256, files_sha256

    return files_sha256({path: file_sha256(text) for path, text in files.items()})


def pinned_templates(pinned: Mapping[str, Mapping[str, Any]]) -> dict[str, str]:
    """The templates of the reminder version a run pinned ({kind: {version, sha256}}), as
    stored with it, whatever rules/templates holds now; MessageError when there are none."""
    from storage.rulesets import get_files

    for kind in TEMPLATE_KINDS:
        if kind in pinned:
            version = pinned[kind]["version"]
            files = get_files(kind, version)
            if files is None:
                raise MessageError(
                    f"{kind} version {version} has no templates stored (run `credo init`)"
                )
            return files
    raise MessageError(f"no {' or '.join(TEMPLATE_KINDS)} rule set pinned")
