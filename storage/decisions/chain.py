"""The decision chain as a whole: its head, and verification of every link (SPEC §5).

`scan_chain` reads the rows in seq order, in chunks, holding at most a window of WINDOW rows
before and after the one it judges (constant memory whatever the chain's length), and finds:
- altered: a row whose contents no longer give its stored hash;
- deleted: seq numbers missing from the range, or a row whose prev_hash is no stored
  decision's hash (a row removed and the later ones renumbered, or the row before it altered
  and its hash recomputed);
- inserted: a row nothing chains to, skipped by the row after it;
- reordered: a row chained after a decision other than the one stored before it.
A row whose link breaks only because a neighbour is one of these is not reported again.
Rows moved further than WINDOW apart are still found, as a broken link ("deleted").

Removing the newest rows leaves a valid shorter chain: an anchor of the head (seq, hash) kept
outside the database catches that (`check_anchor`). After a prune (storage.decisions.retention)
the chain starts at the retention checkpoint: the seq and hash of the last pruned decision.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from engine.trace import GENESIS_HASH
from storage.db import database
from storage.decisions.rehash import COLUMNS, INDEX, altered
from storage.decisions.retention import Checkpoint, latest_checkpoint
from storage.errors import StorageError
from storage.models import Decision

WINDOW = 1000  # rows read before and after the one judged; also the reading chunk
KINDS = ("altered", "deleted", "inserted", "reordered")


class RangeError(StorageError):
    """The range asked for cannot be verified (it starts in the pruned part)."""


@dataclass(frozen=True)
class ChainProblem:
    """One row where the chain does not hold: `kind` is one of KINDS; `decision_id` is None
    for a row that is gone."""

    seq: int
    decision_id: str | None
    kind: str
    problem: str

    def __str__(self) -> str:
        return f"decision #{self.seq} ({self.decision_id or 'gone'}): {self.kind}: {self.problem}"

    def to_json(self) -> dict[str, Any]:
        return {
            "seq": self.seq,
            "decision_id": self.decision_id,
            "kind": self.kind,
            "problem": self.problem,
        }


@dataclass
class ChainScan:
    """What a scan covered: rows read in the range, and the last one's seq and hash."""

    first_seq: int  # the first seq of the range (after the checkpoint, if any)
    count: int = 0
    last_seq: int = 0
    last_hash: str = GENESIS_HASH
    problems: int = 0
    checkpoint: Checkpoint | None = None


def chain_head() -> tuple[int, str]:
    """The last decision's seq and hash; (0, GENESIS_HASH) when none is stored (or, after
    every decision was pruned, the checkpoint's)."""
    head = Decision.select(Decision.seq, Decision.hash).order_by(Decision.seq.desc()).first()
    if head:
        return head.seq, head.hash
    checkpoint = latest_checkpoint()
    return (checkpoint.seq, checkpoint.hash) if checkpoint else (0, GENESIS_HASH)


def verify_chain(first_seq: int | None = None, last_seq: int | None = None) -> list[ChainProblem]:
    """Check the chain from `first_seq` to `last_seq` (default: all); [] when it holds.
    The problems in seq order (see scan_chain)."""
    problems: list[ChainProblem] = []
    scan_chain(problems.append, first_seq, last_seq)
    return problems


def scan_chain(
    report: Callable[[ChainProblem], None],
    first_seq: int | None = None,
    last_seq: int | None = None,
    progress: Callable[[int], None] | None = None,
) -> ChainScan:
    """Check every link from `first_seq` to `last_seq` (default: from the start, or the
    retention checkpoint, to the head), calling `report` with each problem in seq order and
    `progress(rows read)` after each chunk. RangeError when `first_seq` lies in the pruned part.
    """
    checkpoint = latest_checkpoint()
    start = first_seq if first_seq is not None else 1
    if checkpoint is not None and start <= checkpoint.seq:
        if first_seq is not None:
            raise RangeError(
                f"decisions up to #{checkpoint.seq} were pruned ({checkpoint.describe()}); "
                f"verify from #{checkpoint.seq + 1}"
            )
        start = checkpoint.seq + 1
    # Up to WINDOW rows before the range are read as context, like those after it: a row is
    # judged by its neighbours, but only the range's problems are reported.
    context = max(start - WINDOW, checkpoint.seq + 1 if checkpoint else 1)
    prev_seq, prev_hash = _before(context, checkpoint)
    scan = ChainScan(first_seq=start, checkpoint=checkpoint)
    judge = _Judge(report, prev_seq, prev_hash, start, last_seq, scan)
    for rows in _chunks(context, last_seq):
        for raw in rows:
            judge.add(raw)
        if progress is not None:
            progress(scan.count)
    judge.finish()
    return scan


def _before(start: int, checkpoint: Checkpoint | None) -> tuple[int, str]:
    """(seq, hash) the row at `start` must chain to: the row before it, the checkpoint, or
    the genesis."""
    if checkpoint is not None and start == checkpoint.seq + 1:
        return checkpoint.seq, checkpoint.hash
    if start > 1:
        before = (
            Decision.select(Decision.seq, Decision.hash)
            .where(Decision.seq < start)
            .order_by(Decision.seq.desc())
            .first()
        )
        if before is not None:
            return before.seq, before.hash
        if checkpoint is not None:
            return checkpoint.seq, checkpoint.hash
    return 0, GENESIS_HASH


def _chunks(start: int, last_seq: int | None) -> Iterator[list[tuple]]:
    """The rows from `start` in chunks of WINDOW, then up to WINDOW rows after `last_seq`
    (context to judge the last rows of the range by)."""
    after = start - 1
    end = None if last_seq is None else last_seq + WINDOW
    while True:
        query = Decision.select(*COLUMNS).where(Decision.seq > after)
        if end is not None:
            query = query.where(Decision.seq <= end)
        # Raw rows: a tampered column must become a problem, not an exception while reading.
        rows = database.execute_sql(*query.order_by(Decision.seq).limit(WINDOW).sql()).fetchall()
        if not rows:
            return
        yield rows
        after = rows[-1][0]


@dataclass(eq=False, slots=True)
class _Row:
    seq: int
    decision_id: str
    prev: str
    hash: str
    in_range: bool
    linked: bool  # prev equals the stored hash of the row before it
    gap: tuple[int, int] | None = None  # seq numbers missing just before it
    altered: str | None = None
    explained: bool = False  # its broken link is a neighbour's problem, reported there
    reported: bool = False


@dataclass
class _Judge:
    """Judges each row once WINDOW rows after it are read; holds at most 2 × WINDOW rows."""

    report: Callable[[ChainProblem], None]
    prev_seq: int
    prev_hash: str
    first_seq: int
    last_seq: int | None
    scan: ChainScan
    rows: list[_Row] = field(default_factory=list)
    next: int = 0  # index in rows of the next row to judge
    by_hash: dict[str, int] = field(default_factory=dict)  # stored hash -> seq
    chained_to: dict[str, int] = field(default_factory=dict)  # prev_hash -> how many rows
    held: list[tuple[int, int, ChainProblem]] = field(default_factory=list)  # a heap by seq
    order: int = 0

    def add(self, raw: tuple) -> None:
        seq, prev = raw[0], raw[_PREV]
        in_range = self._in_range(seq)
        row = _Row(seq, raw[_ID], prev, raw[_HASH], in_range, prev == self.prev_hash)
        if seq > self.prev_seq + 1:
            row.gap = (self.prev_seq + 1, seq - 1)
        row.altered = altered(raw)
        if in_range:
            self.scan.count += 1
            self.scan.last_seq, self.scan.last_hash = seq, row.hash
        self.prev_seq, self.prev_hash = seq, row.hash
        self.rows.append(row)
        self.by_hash[row.hash] = seq
        self.chained_to[row.prev] = self.chained_to.get(row.prev, 0) + 1
        if len(self.rows) - self.next > WINDOW:
            self._judge_next()

    def finish(self) -> None:
        while self.next < len(self.rows):
            self._judge_next()
        self._release(None)

    def _judge_next(self) -> None:
        index = self.next
        row = self.rows[index]
        self.next += 1
        following = self.rows[index + 1] if index + 1 < len(self.rows) else None
        before = self.rows[index - 1] if index > 0 else None
        self._judge(row, before, following)
        if self.next > 2 * WINDOW:  # forget the oldest WINDOW rows
            for old in self.rows[:WINDOW]:
                if self.by_hash.get(old.hash) == old.seq:
                    del self.by_hash[old.hash]
                left = self.chained_to[old.prev] - 1
                if left:
                    self.chained_to[old.prev] = left
                else:
                    del self.chained_to[old.prev]
            del self.rows[:WINDOW]
            self.next -= WINDOW
            self._release(self.rows[0].seq)

    def _in_range(self, seq: int) -> bool:
        return self.first_seq <= seq and (self.last_seq is None or seq <= self.last_seq)

    def _judge(self, row: _Row, before: _Row | None, following: _Row | None) -> None:
        if row.gap is not None:
            first, last = row.gap
            gone = f"decision #{first} is" if first == last else f"decisions #{first}–#{last} are"
            self._problem(first, None, "deleted", f"{gone} missing (deleted)")
            row.explained = True
        if row.altered is not None:
            self._problem(row.seq, row.decision_id, "altered", row.altered)
            row.reported = True
        if following is not None and self._inserted(row, following):
            return
        if row.linked or row.explained:
            return
        found = self.by_hash.get(row.prev)
        if found is not None and row.hash in self.chained_to:
            if following is None or not following.linked:
                self._problem(
                    row.seq, row.decision_id, "reordered",
                    f"moved: it is chained after decision #{found}, not after #{row.seq - 1}",
                )  # fmt: skip
                row.reported = True
                return
        if before is not None and before.reported:
            return  # the row before it was moved or inserted: reported there
        if found is None:
            self._problem(
                row.seq, row.decision_id, "deleted",
                "its prev_hash is no stored decision's hash: a decision before it was deleted "
                f"(and the later ones renumbered), or decision #{row.seq - 1} was altered and "
                "its hash recomputed",
            )  # fmt: skip
        else:
            self._problem(
                row.seq, row.decision_id, "reordered",
                f"it is chained after decision #{found}, not after #{row.seq - 1}",
            )  # fmt: skip
        row.reported = True

    def _inserted(self, row: _Row, following: _Row) -> bool:
        """Whether `row` ends a run of rows nothing chains to that `following` skips (chained
        to an earlier row): those rows were inserted; report each."""
        if following.linked or row.hash in self.chained_to:
            return False
        own = self.by_hash.get(row.prev)
        if own is not None and own > row.seq:  # chained after a later row: moved, not inserted
            return False
        found = self.by_hash.get(following.prev)
        if found is None or found >= row.seq:
            return False
        for other in self.rows:
            if found < other.seq <= row.seq and not other.reported:
                self._problem(
                    other.seq, other.decision_id, "inserted",
                    f"not in the chain: decision #{following.seq} is chained to #{found}",
                )  # fmt: skip
                other.reported = True
        following.explained = True
        return True

    def _problem(self, seq: int, decision_id: str | None, kind: str, text: str) -> None:
        if not self._in_range(seq):
            return
        self.order += 1
        heapq.heappush(self.held, (seq, self.order, ChainProblem(seq, decision_id, kind, text)))

    def _release(self, below: int | None) -> None:
        """Report the held problems of rows before seq `below` (all with None), in seq order."""
        while self.held and (below is None or self.held[0][0] < below):
            self.scan.problems += 1
            self.report(heapq.heappop(self.held)[2])


_ID, _PREV, _HASH = INDEX["decision_id"], INDEX["prev_hash"], INDEX["hash"]
