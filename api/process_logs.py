"""Log files of the processes credo starts in the background (a run over HTTP, a job): where
each writes, and the last line it wrote, which says why it failed."""

from __future__ import annotations

import logging
from pathlib import Path

log = logging.getLogger(__name__)


def log_file(folder: Path | None, name: str) -> Path | None:
    """folder/name.log, the folder made if need be; None (and a warning) when it cannot be."""
    if folder is None:
        return None
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        log.warning("%s: no log file (%s)", name, exc)
        return None
    return folder / f"{name}.log"


def last_line(log_path: Path | None) -> str:
    """The last non-empty line the process wrote (at most 500 characters), "" if none."""
    if log_path is None:
        return ""
    try:
        lines = log_path.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:
        return ""
    return next((line.strip() for line in reversed(lines) if line.strip()), "")[:500]
