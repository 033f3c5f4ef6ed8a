"""How the API's worker processes share one SQLite file as writers.

Two things, both for SQLite only (PostgreSQL has its own locks and its own checkpoints):

- `queued_writer()`: writers of decisions queue on a kernel lock before they ask SQLite for
  its write lock, instead of sleeping and retrying inside SQLite's busy handler;
- `WalCheckpointer`: the write-ahead log is copied back into the database after a response
  has been sent, not inside whichever commit first finds the log long.
"""

from __future__ import annotations

import fcntl
import logging
import os
import sqlite3
import struct
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import peewee as pw

_log = logging.getLogger("credo.api")


@contextmanager
def queued_writer() -> Iterator[None]:
    """On SQLite, queue the API's writers of one database file on an flock before they ask
    SQLite for its write lock.

    SQLite makes a writer that finds the file locked sleep and retry (1, 2, 5, 10 ms…), which
    under load costs workers more time asleep than the lock is ever held; a kernel lock hands
    over at once. Other writers (the nightly run) still meet SQLite's own lock and wait as
    before. Threads of one process are serialised by the same lock.
    """
    from storage.db import database

    db = database.obj
    if not isinstance(db, pw.SqliteDatabase) or db.database in ("", ":memory:"):
        yield
        return
    with _writer_queue(db.database):
        yield


_lock_files: dict[tuple[int, str], int] = {}
_lock_files_guard = threading.Lock()
_thread_lock = threading.Lock()


@contextmanager
def _writer_queue(path: str) -> Iterator[None]:
    key = (os.getpid(), path)
    with _lock_files_guard:
        fd = _lock_files.get(key)
        if fd is None:
            fd = os.open(path + ".lock", os.O_CREAT | os.O_RDWR, 0o600)
            _lock_files[key] = fd
    with _thread_lock:
        fcntl.flock(fd, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)


class Upkeep:
    """A chore a worker does in a thread of its own once a response has gone out: the worker
    serves the next request meanwhile (SQLite releases the GIL while it works), so no caller
    waits behind the chore. One at a time per process and chore."""

    def __init__(self) -> None:
        self._busy = threading.Lock()
        self._thread: threading.Thread | None = None

    def due(self) -> bool:
        raise NotImplementedError

    def run(self) -> None:
        raise NotImplementedError

    def start(self) -> None:
        """Run in a background thread, unless a run is already under way."""
        if self._busy.locked():
            return
        self._thread = threading.Thread(target=self.run, name=type(self).__name__, daemon=True)
        self._thread.start()

    def wait(self, timeout: float | None = None) -> None:
        """Until the run started last has ended (for tests and orderly shutdowns)."""
        if self._thread is not None:
            self._thread.join(timeout)


class WalCheckpointer(Upkeep):
    """Checkpoints a SQLite file's write-ahead log when the API chooses: after a response.

    SQLite's automatic checkpoint runs inside a COMMIT, while the API's other writers queue
    behind it: copying a thousand pages and its two fsyncs stalled both workers for about
    5 ms every 70 decisions on a two-core machine, a tenth of their time. The API turns the
    automatic checkpoint off on its connections and, once a response has been sent, starts
    `run()` if `due()`:

    1. a PASSIVE checkpoint outside the writer queue copies the log while the other workers
       go on committing (it takes no lock that writers need);
    2. once the log has grown to `restart_pages`, a second PASSIVE checkpoint inside the queue
       copies the few frames they appended meanwhile. Only a complete checkpoint lets the
       next writer start the log again from its beginning; without it the log would grow for
       as long as the load lasts (SQLite's counts cannot tell: they describe the log as the
       checkpoint began). It holds the queue for 2–3 ms, nearly all of it its two fsyncs, so
       it runs every fourth checkpoint under load rather than every one: the log is reused
       from the start once it reaches 16 MB, not 4 MB. On two cores the decisions' share of
       /healthz's throughput went from 38.8% to 40.1% (means of 5 alternating pairs of
       bench/api.py; 3 pairs favoured it, 2 were even).

    `due()` reads, with one pread of the `-shm` file (https://www.sqlite.org/walformat.html,
    in the host's byte order), the log's length (mxFrame, bytes 16–19 of the wal-index header)
    and how much of it is already in the database (nBackfill, bytes 96–99): a log copied
    whole is not due again, although its length stays until the next commit starts it anew.
    Other processes (the nightly run, `credo import`) keep the automatic checkpoint.
    """

    HEADER = struct.Struct("=16xI76xI")  # mxFrame, nBackfill

    # SQLite's own 1,000 pages (4 MB of log). At 4,000 pages a checkpoint copied less per
    # decision (about 60 against 80 µs), but each one ended in an fsync of some 6 MB, which
    # stalled the workers' own writes: p99 at half the peak rate reached 24 ms, against 5–12
    # ms at 1,000 pages in an A/B.
    def __init__(
        self,
        path: str,
        pages: int = 1000,
        min_interval: float = 0.05,
        restart_pages: int | None = None,
    ):
        super().__init__()
        self.path = path
        self.pages = pages
        self.restart_pages = 4 * pages if restart_pages is None else restart_pages
        self.min_interval = min_interval  # seconds between tries: a pinned log cannot cause a storm
        self._pid: int | None = None
        self._shm: int | None = None
        self._connection: sqlite3.Connection | None = None
        self._inherited: list[sqlite3.Connection] = []
        self._last = 0.0

    def due(self) -> bool:
        """Whether the log has reached `pages` frames (and the last try is long enough ago)."""
        if time.monotonic() - self._last < self.min_interval:
            return False
        return self.frames() >= self.pages

    def frames(self) -> int:
        """The frames in the log not yet copied into the database (0 when there is no log)."""
        length, copied = self._header()
        return max(length - copied, 0)

    def length(self) -> int:
        """The frames in the log, copied or not, until a writer starts it again (0: no log)."""
        return self._header()[0]

    def _header(self) -> tuple[int, int]:
        """mxFrame and nBackfill of the wal-index header; (0, 0) when there is no log."""
        try:
            if self._pid != os.getpid():  # a new worker process: its own descriptors
                if self._connection is not None:  # never closed here: it is the parent's
                    self._inherited.append(self._connection)
                self._pid, self._shm, self._connection = os.getpid(), None, None
            if self._shm is None:
                self._shm = os.open(self.path + "-shm", os.O_RDONLY)
            header = os.pread(self._shm, self.HEADER.size, 0)
        except OSError:
            return 0, 0
        if len(header) < self.HEADER.size:
            return 0, 0
        return self.HEADER.unpack(header)

    def run(self) -> None:
        """Checkpoint now (skipped while another thread of this process is at it). A failure
        is logged: the log stays valid, and the next response tries again."""
        if not self._busy.acquire(blocking=False):
            return
        try:
            self._last = time.monotonic()
            if not self._checkpoint():
                return  # another process is checkpointing: it finishes the job
            if self.length() < self.restart_pages:
                return  # the next writer starts the log again if nobody wrote meanwhile
            with _writer_queue(self.path):
                self._checkpoint()
        except sqlite3.Error as exc:
            _log.warning("WAL checkpoint of %s failed: %s", self.path, exc)
        finally:
            self._busy.release()

    def _checkpoint(self) -> bool:
        """One PASSIVE checkpoint; False if another connection was checkpointing."""
        if self._connection is None:
            self._connection = sqlite3.connect(
                self.path, timeout=5, isolation_level=None, check_same_thread=False
            )
            self._connection.execute("PRAGMA synchronous = NORMAL")
        checkpoint = self._connection.execute("PRAGMA wal_checkpoint(PASSIVE)")
        busy, _frames, _copied = checkpoint.fetchone()
        return not busy


class TagSettler(Upkeep):
    """Moves the tags of decisions stored one at a time (storage's RecentDecisionTag) into the
    searched tag table, a few hundred decisions at a time, after a response has been sent.

    Searches read both tables, so when this runs changes no answer, only how many pages each
    decision costs: a decision's tags share one page of the staging table, and moved together
    they share pages of the tag table too. Its count is of this process's decisions; a move
    takes every worker's.
    """

    def __init__(self, batch: int = 256):
        super().__init__()
        self.batch = batch
        self._staged = 0

    def staged(self, decisions: int = 1) -> None:
        self._staged += decisions

    def due(self) -> bool:
        return self._staged >= self.batch

    def run(self) -> None:
        """Move now (skipped while another thread of this process is at it). A failure is
        logged: the tags stay where searches find them, and a later response tries again."""
        from storage.db import database
        from storage.decisions import settle_recent_tags

        if not self._busy.acquire(blocking=False):
            return
        try:
            self._staged = 0
            with database.connection_context(), queued_writer():
                settle_recent_tags()
        except pw.PeeweeException as exc:
            _log.warning("moving recent decision tags failed: %s", exc)
        finally:
            self._busy.release()
