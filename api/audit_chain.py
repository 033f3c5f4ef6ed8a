"""The auditor's chain use cases, shared by `credo audit verify|anchor|prune` and
/v1/audit/verify and /v1/audit/anchor (issue 15, items 1, 2 and 9).

- verify_trail: check the decision chain over a range (seq numbers or creation dates) and, given
  an anchor, that the chain still reaches it; over HTTP a range of more than
  `audit.verify_job_rows` decisions runs as a job (verify_job).
- current_anchor: the chain's head {seq, hash, time}, to be kept outside the database (each run
  report records one too).
- prune_trail: delete the decisions older than the retention allows, behind a checkpoint.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from api.settings import Settings

log = logging.getLogger("credo.audit")

MAX_PROBLEMS_LISTED = 1000  # a result lists the first problems; problems_count has them all
MAX_SEQ = 2**63 - 1
_HASH = re.compile(r"[0-9a-f]{64}")
_DATE = re.compile(r"\d{4}-\d\d-\d\d")
FIRST_DAY, LAST_DAY = date(1900, 1, 1), date(2199, 12, 31)  # as every date credo takes


class AuditInputError(ValueError):
    """A bad range, anchor or date: `field` names the input, the message what is wrong."""

    def __init__(self, field: str, message: str):
        self.field, self.message = field, message
        super().__init__(f"{field}: {message}")


@dataclass(frozen=True)
class Anchor:
    """The chain's head as recorded at `time`: decision `seq` had hash `hash`."""

    seq: int
    hash: str
    time: str = ""

    def to_json(self) -> dict[str, Any]:
        return {"seq": self.seq, "hash": self.hash, "time": self.time}


# --- anchors --------------------------------------------------------------------------------


def current_anchor() -> dict[str, Any]:
    """The chain's head now: {seq, hash, time}; seq 0 and the genesis hash when empty."""
    from storage.decisions import chain_head

    seq, digest = chain_head()
    return {"seq": seq, "hash": digest, "time": datetime.now(UTC).isoformat(timespec="seconds")}


def log_anchor(anchor: dict[str, Any], where: str) -> None:
    """One log line with the head, for logs shipped outside the database's reach."""
    log.info("chain head %s: seq=%s hash=%s time=%s", where, anchor["seq"], anchor["hash"],
             anchor["time"])  # fmt: skip


def make_anchor(seq: Any, digest: Any, field: str = "anchor") -> Anchor:
    """An Anchor from a seq and a hash given by a person; AuditInputError naming `field`."""
    if type(seq) is not int or not 0 <= seq <= MAX_SEQ:
        raise AuditInputError(f"{field}_seq", f"expected a whole number from 0 to {MAX_SEQ}")
    if not isinstance(digest, str) or not _HASH.fullmatch(digest):
        raise AuditInputError(f"{field}_hash", "expected 64 lowercase hexadecimal digits")
    return Anchor(seq, digest)


def read_anchor(text: str) -> Anchor:
    """The anchor in a file's text: the JSON `credo audit anchor` writes ({seq, hash, time}),
    or a run report holding one (`chain_head`, as `credo run --json` prints it)."""
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise AuditInputError("anchor", f"not JSON ({exc})") from None
    for path in (("chain_head",), ("report", "chain_head")):
        inner = data
        for key in path:
            inner = inner.get(key) if isinstance(inner, dict) else None
        if isinstance(inner, dict):
            data = inner
            break
    if not isinstance(data, dict) or not {"seq", "hash"} <= data.keys():
        raise AuditInputError("anchor", "expected an object with seq and hash")
    anchor = make_anchor(data["seq"], data["hash"])
    stamp = data.get("time")
    return Anchor(anchor.seq, anchor.hash, stamp if isinstance(stamp, str) else "")


def check_anchor(anchor: Anchor) -> str | None:
    """None when the stored chain still holds decision `anchor.seq` with `anchor.hash`;
    otherwise what does not match."""
    from storage.decisions.retention import latest_checkpoint
    from storage.models import Decision

    at = f" (anchored {anchor.time})" if anchor.time else ""
    if anchor.seq == 0:
        return None
    checkpoint = latest_checkpoint()
    if checkpoint is not None and anchor.seq <= checkpoint.seq:
        if anchor.seq == checkpoint.seq:
            return None if checkpoint.hash == anchor.hash else _rewritten(anchor, checkpoint.hash)
        raise AuditInputError(
            "anchor", f"decision #{anchor.seq}{at} was pruned (checkpoint at #{checkpoint.seq})"
        )
    row = Decision.select(Decision.hash).where(Decision.seq == anchor.seq).first()
    if row is None:
        head = Decision.select(Decision.seq).order_by(Decision.seq.desc()).first()
        last = head.seq if head else 0
        if last < anchor.seq:
            return (
                f"truncated: the chain ends at decision #{last}, but the anchor{at} names "
                f"#{anchor.seq}: decisions #{last + 1}–#{anchor.seq} were removed"
            )
        return f"decision #{anchor.seq}{at} is missing (deleted)"
    return None if row.hash == anchor.hash else _rewritten(anchor, row.hash)


def _rewritten(anchor: Anchor, stored: str) -> str:
    return (
        f"decision #{anchor.seq} has hash {stored[:16]}…, the anchor says "
        f"{anchor.hash[:16]}…: the chain was rewritten"
    )


# --- verify ---------------------------------------------------------------------------------


def parse_bound(field: str, text: str) -> int | date:
    """A range bound as given: a seq number (1, 2, …) or a creation date YYYY-MM-DD."""
    text = text.strip()
    if text.isascii() and text.isdigit():
        if len(text) > 19 or not 1 <= int(text) <= MAX_SEQ:
            raise AuditInputError(field, f"a seq number must be from 1 to {MAX_SEQ}")
        return int(text)
    if _DATE.fullmatch(text):
        try:
            day = date.fromisoformat(text)
        except ValueError:
            raise AuditInputError(field, f"{text} is not a date that exists") from None
        if not FIRST_DAY <= day <= LAST_DAY:
            raise AuditInputError(field, f"a date must be from {FIRST_DAY} to {LAST_DAY}")
        return day
    raise AuditInputError(field, "expected a seq number or a date YYYY-MM-DD")


def resolve_range(
    first: int | date | None, last: int | date | None
) -> tuple[int | None, int | None]:
    """(first seq or None for the start, last seq or None for the head) of a range given by
    seq numbers or dates (a date stands for the decisions created on it, UTC: `first` its first
    decision, `last` its last)."""
    import peewee as pw

    from storage.models import Decision

    if isinstance(first, date):
        start = datetime.combine(first, time(), UTC)
        found = Decision.select(pw.fn.MIN(Decision.seq)).where(Decision.created_at >= start)
        first = found.scalar() or MAX_SEQ
    if isinstance(last, date):
        end = datetime.combine(last + timedelta(days=1), time(), UTC)
        found = Decision.select(pw.fn.MAX(Decision.seq)).where(Decision.created_at < end)
        last = found.scalar() or 0
    if last is not None and last < (first or 1):
        raise AuditInputError("to", "the range ends before it starts")
    return first, last


def range_size(first: int, last: int | None) -> int:
    """How many decisions at most a range holds (from seq numbers: no count query)."""
    from storage.decisions import chain_head

    head, _ = chain_head()
    end = head if last is None else min(last, head)
    return max(0, end - first + 1)


def verify_trail(
    first: int | None = None,
    last: int | None = None,
    anchor: Anchor | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> dict[str, Any]:
    """Verify the chain from seq `first` to `last` (default: all) and, with `anchor`, that it
    still reaches the anchored decision with the anchored hash; and the whole operator log
    (api.audit_records.check_audit_log: the range is the decisions').

    {ok, from, to, count, head: {seq, hash}, problems: [first MAX_PROBLEMS_LISTED in seq order],
    problems_count, anchor: {seq, hash, time, ok, problem} | null, checkpoint | null,
    operator_log: {ok, events, head, problems}}, `ok` true when the decisions, the anchor and
    the operator log all hold. AuditInputError for a range that starts in the pruned part or an
    anchor before the cut.
    """
    from api.audit_records import check_audit_log
    from storage.decisions.chain import RangeError, scan_chain

    listed: list[dict[str, Any]] = []

    def keep(problem) -> None:
        if len(listed) < MAX_PROBLEMS_LISTED:
            listed.append(problem.to_json())

    total = range_size(first or 1, last) if progress else 0
    try:
        scan = scan_chain(keep, first, last, (lambda n: progress(n, total)) if progress else None)
    except RangeError as exc:
        raise AuditInputError("from", str(exc)) from None
    anchored = None
    if anchor is not None:
        problem = check_anchor(anchor)
        anchored = {**anchor.to_json(), "ok": problem is None, "problem": problem}
    operator_log = check_audit_log()
    return {
        "ok": scan.problems == 0 and (anchored is None or anchored["ok"]) and operator_log["ok"],
        "from": scan.first_seq,
        "to": scan.last_seq if scan.count else None,
        "count": scan.count,
        "head": {"seq": scan.last_seq, "hash": scan.last_hash},
        "problems": listed,
        "problems_count": scan.problems,
        "anchor": anchored,
        "checkpoint": scan.checkpoint.to_json() if scan.checkpoint else None,
        "operator_log": operator_log,
    }


def verify_job(settings: Settings, params: dict[str, Any], progress) -> dict[str, Any]:
    """The job `audit-verify` (api.jobs): verify_trail with the stored parameters."""
    anchor = params.get("anchor")
    return verify_trail(
        params.get("from"),
        params.get("to"),
        Anchor(**anchor) if anchor else None,
        progress,
    )


def describe_result(result: dict[str, Any]) -> list[str]:
    """verify_trail's result as lines for a person."""
    lines = []
    if result["checkpoint"]:
        c = result["checkpoint"]
        lines.append(f"starts at the retention checkpoint: decision #{c['seq']} {c['hash']}")
    head = result["head"]
    span = f"#{result['from']}–#{result['to']}" if result["count"] else "none"
    last = f"#{head['seq']} {head['hash']}"
    lines.append(f"{result['count']} decisions checked ({span}); last {last}")
    for problem in result["problems"]:
        which = f"decision #{problem['seq']} ({problem['decision_id'] or 'gone'})"
        lines.append(f"{which}: {problem['kind']}: {problem['problem']}")
    more = result["problems_count"] - len(result["problems"])
    if more > 0:
        lines.append(f"… and {more} more problems")
    anchor = result["anchor"]
    if anchor is not None:
        lines.append(
            f"anchor #{anchor['seq']} {anchor['hash']}: "
            + ("reached, hash matches" if anchor["ok"] else anchor["problem"])
        )
    from api.audit_records import describe_check

    operator_log = result["operator_log"]
    lines += describe_check(operator_log)
    chain_holds = result["problems_count"] == 0 and (anchor is None or anchor["ok"])
    if result["ok"]:
        lines.append("OK: the chain holds")
    elif chain_holds:
        lines.append("BROKEN: the chain holds, but the operator log does not")
    else:
        lines.append("BROKEN: the chain does not hold")
    return lines


# --- retention ------------------------------------------------------------------------------


class RetentionOff(Exception):
    """Pruning asked for without a retention setting."""


def prune_trail(settings: Settings, before: date, by: str, apply: bool) -> dict[str, Any]:
    """Delete the decisions created before `before` (UTC), never any newer than
    `audit.retention_days`, after verifying them and recording a checkpoint. With `apply`
    false only says what would go. RetentionOff without the setting; AuditInputError for a
    date the retention forbids; {pruned, through, checkpoint, problems...} otherwise (pruned 0
    and the problems when the decisions to go do not verify: nothing is deleted then)."""
    from storage.decisions.chain import scan_chain
    from storage.decisions.retention import prunable_through, prune_through

    days = settings.audit.retention_days
    if days <= 0:
        raise RetentionOff(
            "pruning is off: set audit.retention_days in config.toml (or "
            "CREDO_AUDIT_RETENTION_DAYS) to the days decisions must be kept"
        )
    newest = datetime.now(UTC).date() - timedelta(days=days)
    if before > newest:
        raise AuditInputError(
            "before",
            f"decisions of the last {days} days are kept (audit.retention_days): "
            f"the date must be {newest} or earlier",
        )
    cut = datetime.combine(before, time(), UTC)
    found = prunable_through(cut)
    result: dict[str, Any] = {"before": before.isoformat(), "pruned": 0, "through": None}
    if found is None:
        return {**result, "checkpoint": None, "problems": []}
    through, count = found
    problems: list[dict[str, Any]] = []
    scan_chain(lambda p: problems.append(p.to_json()), None, through)
    if problems:
        return {**result, "through": through, "would_prune": count, "problems": problems[:100]}
    if not apply:
        return {**result, "through": through, "would_prune": count, "problems": []}
    checkpoint = prune_through(through, cut, by)
    log.info("pruned decisions up to seq=%s hash=%s (created before %s) by %s",
             checkpoint.seq, checkpoint.hash, before, by)  # fmt: skip
    return {
        **result,
        "pruned": checkpoint.pruned,
        "through": through,
        "checkpoint": checkpoint.to_json(),
        "problems": [],
    }
