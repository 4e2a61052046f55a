"""One connection to the hub database (SQLite or PostgreSQL, :mod:`coldchain.statedb`) whose
writes are grouped into transactions, committed once, optionally on a writer thread (the base
of :class:`alerts.store.AlertStore`).

Changes made inside :meth:`TransactionalDb.transaction` (and records of other tables written
with :meth:`TransactionalDb.write_with`, or queued with :meth:`TransactionalDb.append` and
written together just before the commit, such as the audit log's) commit together, once, when
the outermost block ends: the hub applies all the transitions of one evaluation, with their
audit records and queued notifications, in one transaction. A change outside any block is
its own transaction. Work to do once the changes are durable (handing notifications to the
dispatcher) waits in :meth:`TransactionalDb.after_commit`; a block that raises rolls back and
drops that work. ``commits`` counts the transactions committed. The connection (WAL,
synchronous=FULL) is shared by the event loop and the API's worker threads: a lock makes each
transaction (and each read) whole, and a thread waits while another's transaction is open.

With ``writer_thread`` the commit of a ``background`` block on the event loop (the hub's
evaluations: a batch of readings, a tick) is made on the writer thread, so the loop does not
wait for the fsync; the next use of the connection (from any thread) waits for it, and the
work waiting for the commit is handed to the loop once it is durable. A background commit
that fails is logged and rolled back, and that work is dropped.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from coldchain.statedb import Cursor, Schema, StateConn, StateTarget, open_state

log = logging.getLogger(__name__)

T = TypeVar("T")
Batches = dict[Callable[[StateConn, list[Any]], object], list[Any]]


class TransactionalDb:
    """The hub's state database with ``schema``, written in grouped transactions (see the module
    docstring). ``writer_thread``: a :meth:`transaction` opened with ``background=True`` on
    a thread running an event loop commits on the writer thread."""

    def __init__(self, path: StateTarget, schema: Schema, *, writer_thread: bool = False) -> None:
        self._db = open_state(path, schema)
        self._lock = threading.RLock()
        self._idle = threading.Event()  # clear while the writer thread commits
        self._idle.set()
        self._writer = (
            ThreadPoolExecutor(1, thread_name_prefix="hub-db-writer") if writer_thread else None
        )
        self._depth = 0  # nesting of transaction() blocks, in the thread that owns the lock
        self._owner: int | None = None  # that thread
        self._begun = False  # BEGIN issued (at the first write of the block)
        self._after: list[Callable[[], object]] = []
        self._batches: Batches = {}  # rows queued by append(), by the function that writes them
        self.commits = 0  # transactions committed on this connection

    def close(self) -> None:
        with self._guard():
            self._db.close()
        if self._writer is not None:
            self._writer.shutdown()

    # --- transactions ----------------------------------------------------------------------

    @contextlib.contextmanager
    def _guard(self) -> Iterator[None]:
        """The connection, to this thread alone, once no commit is in flight."""
        with self._lock:
            self._idle.wait()
            yield

    @property
    def in_transaction(self) -> bool:
        """Whether the calling thread is inside :meth:`transaction`."""
        return self._depth > 0 and self._owner == threading.get_ident()

    @contextlib.contextmanager
    def transaction(self, *, background: bool = False) -> Iterator[None]:
        """Everything written inside commits once, at the end of the outermost block (nested
        blocks join it); nothing is written when the block raises. A block that writes
        nothing commits nothing. ``background`` (outermost block, store made with
        ``writer_thread``, called on an event loop): the block returns before its commit,
        which the writer thread makes; the store's next user waits for it, and the work
        waiting for the commit runs on the loop after it."""
        with self._guard():
            if self._depth:
                self._depth += 1
                try:
                    yield
                finally:
                    self._depth -= 1
                return
            self._depth, self._owner = 1, threading.get_ident()
            try:
                yield
                loop = self._loop() if background else None
                if loop is not None and self._writer is not None and self._begun:
                    after, self._after = self._after, []
                    batches, self._batches = self._batches, {}
                    self._idle.clear()
                    try:
                        self._writer.submit(self._commit, batches, after, loop)
                    except BaseException:
                        self._idle.set()
                        self._after, self._batches = after, batches
                        raise
                    self._begun = False
                    return
                self._end(commit=True)
            except BaseException:
                self._end(commit=False)
                raise
            finally:
                self._depth, self._owner = 0, None
            after, self._after = self._after, []
        for fn in after:  # the lock is free: this work may wait on another connection
            fn()

    @staticmethod
    def _loop() -> asyncio.AbstractEventLoop | None:
        try:
            return asyncio.get_running_loop()
        except RuntimeError:
            return None

    def _commit(
        self,
        batches: Batches,
        after: list[Callable[[], object]],
        loop: asyncio.AbstractEventLoop,
    ) -> None:
        """On the writer thread: write the queued rows and commit what the loop wrote, then
        hand ``after`` to it."""
        try:
            self._flush(batches)
            self._db.commit()
        except Exception:
            log.exception("committing %d alert changes failed; rolled back", len(after))
            with contextlib.suppress(self._db.Error):
                self._db.rollback()
        else:
            self.commits += 1
            for fn in after:
                loop.call_soon_threadsafe(fn)
        finally:
            self._idle.set()

    async def settled(self) -> None:
        """Wait until no commit is in flight and the work waiting for it has been handed to
        the loop (and, after one more turn of the loop, done)."""
        while not self._idle.is_set():
            await asyncio.to_thread(self._idle.wait, 0.1)
        await asyncio.sleep(0)

    def _end(self, *, commit: bool) -> None:
        if not self._begun:
            return
        self._begun = False
        batches, self._batches = self._batches, {}
        if commit:
            try:
                self._flush(batches)
                self._db.commit()
            except BaseException:
                with contextlib.suppress(self._db.Error):  # the first error is the one to see
                    self._db.rollback()
                self._after.clear()
                raise
            self.commits += 1
        else:
            self._db.rollback()
            self._after.clear()

    def _flush(self, batches: Batches) -> None:
        for write, rows in batches.items():
            write(self._db, rows)

    def after_commit(self, fn: Callable[[], object]) -> None:
        """Run ``fn`` once the calling thread's open transaction has committed (dropped when
        it rolls back); at once when there is none."""
        if self.in_transaction:
            self._after.append(fn)
        else:
            fn()

    def append(self, write: Callable[[StateConn, list[Any]], object], row: Any) -> None:
        """Queue ``row`` in the open transaction (one of its own when there is none): just
        before it commits, ``write(connection, rows)`` writes the rows queued with the same
        ``write``, in order, in one call (an ``executemany``); they are dropped if it rolls
        back. For rows nothing reads back inside the transaction, such as audit records."""
        if not self.in_transaction:
            with self.transaction():
                self.append(write, row)
            return
        self._begin()
        rows = self._batches.get(write)
        if rows is None:
            self._batches[write] = [row]
        else:
            rows.append(row)

    def queued(self, write: Callable[[StateConn, list[Any]], object]) -> list[Any]:
        """The rows queued with ``write`` in the calling thread's open transaction."""
        return self._batches.get(write, []) if self.in_transaction else []

    def _before_read(self) -> None:
        """Inside a transaction, before one of its reads: write what a subclass holds back
        (its reads must see its own writes)."""

    def write_with(self, fn: Callable[[StateConn], T]) -> T:
        """Run ``fn`` with the connection inside a write transaction (the open one, or one of
        its own): for another table of the hub database, such as the audit log."""
        if self.in_transaction:  # the common case: see _write
            self._begin()
            return fn(self._db)
        with self.transaction():
            self._begin()
            return fn(self._db)

    def _begin(self) -> None:
        if not self._begun:
            self._db.begin()
            self._begun = True

    def _write(self, sql: str, args: Any = ()) -> Cursor:
        if self.in_transaction:  # the common case, a statement of the open transaction
            self._begin()
            return self._db.execute(sql, args)
        with self.transaction():
            self._begin()
            return self._db.execute(sql, args)

    def _insert(self, sql: str, args: Any = ()) -> int:
        """An INSERT of the open transaction (one of its own when there is none): the id
        the database gave the row."""
        if self.in_transaction:
            self._begin()
            return self._db.insert(sql, args)
        with self.transaction():
            self._begin()
            return self._db.insert(sql, args)

    @property
    def kind(self) -> str:
        """The database's engine: ``sqlite`` or ``postgres``."""
        return self._db.kind

    def _read(self, sql: str, args: Any = ()) -> list[Any]:
        with self._guard():
            if self.in_transaction:
                self._before_read()
            return self._db.execute(sql, args).fetchall()
