"""The group-commit state machine: requests queue rows, one writer task commits them together.

Writes go through one writer that commits whatever has queued up in a single transaction (group
commit): each request still waits for its own record to be durable, but concurrent requests share a
commit instead of queueing for one each. The writer is a separate process (``service.audit.writer``)
inserting through the driver itself, one multi-row ``INSERT`` per group, with values converted by
the columns' own SQLAlchemy bind processors, so rows read back through SQLAlchemy exactly as if it
had written them.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import sys
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import Engine, func, select
from sqlalchemy.exc import SQLAlchemyError

from service.audit import protocol
from service.audit.rows import DecisionColumns, DecisionRows, RowWriter
from service.audit.schema import decisions, make_engine, shadow_scores

logger = logging.getLogger("loanrisk.audit")


_Read = TypeVar("_Read")


class AuditUnavailable(RuntimeError):
    """A decision could not be recorded, or the store could not be read in time: the request
    must not be answered."""


# Of the deadline, what a commit's reply is given to travel back to the service: the database
# refuses a commit that would land later than the deadline less this (PostgreSQL, see
# service.audit.writer), so a commit the service gave up on is never carried out.
REPLY_MARGIN = 0.1

# The deadline of the first, empty commit at start (the writer process's start included).
STARTUP_S = 60.0

# A writer silent this long past its group's deadline is killed and replaced. Not sooner: a new
# writer process takes about a second to start on a busy machine (its imports), so replacing
# writers at every deadline of 2 s kept none alive long enough to commit; and a writer waiting on
# a frozen database carries on where it was once the database wakes. Meanwhile every request
# answers 503 at its own deadline.
ABANDON_S = 30.0


# The parts of the rows queued for the next group (one for ``submit``, none for the commit of
# parts already sent), the future their request waits on, the writer process their parts
# went to (None for rows sent with the group), the deadline (the event loop's clock), and the
# challenger's shadow scores of those decisions (rows of ``shadow_scores``, committed with them).
_Pending = tuple[
    tuple[DecisionRows, ...], asyncio.Future[None], int | None, float, tuple[DecisionRows, ...]
]


class AuditTrail:
    """Owns the writer process; ``record`` resolves once the rows are committed.

    Requests hand their rows to a writer task on the event loop and wait on a future. The writer
    task sends everything queued to the writer process (``service.audit.writer``) as one message
    and settles all the futures when the process answers that the group is committed. A large
    batch may send its rows ahead in parts (:meth:`submit_parts`), committed with the next group.
    The database work runs in that process: in a thread of this one, the driver's every call gave
    up and retook the GIL the event loop needs (callgrind and /proc measurements in
    docs/serving.md). Reads (``get``, ``count``) go through this process's own engine; from the
    event loop, through :meth:`read`.

    Every commit and read has a deadline (``timeout_s``): past it the future fails with
    AuditUnavailable and the rows are never committed (docs/reliability.md). The outcome of the
    last commit or probe is the store's health (:meth:`unavailable_reason`, for /ready).
    """

    def __init__(
        self,
        url: str,
        timeout_s: float = 2.0,
        probe_interval_s: float = 2.0,
        abandon_s: float = ABANDON_S,
    ) -> None:
        """``timeout_s``: the deadline of every commit and read (``LOANRISK_AUDIT_TIMEOUT_MS``);
        ``probe_interval_s``: how often an idle or failing store is probed (0: never);
        ``abandon_s``: how long past its group's deadline a silent writer process is still
        waited for before it is killed and replaced."""
        self.url = url
        self.timeout_s = timeout_s
        self.probe_interval_s = probe_interval_s
        self.abandon_s = abandon_s
        self.timeout_ms = max(1, round(timeout_s * 1000))
        self.engine: Engine = make_engine(url, self.timeout_ms)
        # Reads wait on their own threads: a frozen database holds these, nobody else's.
        self._readers: ThreadPoolExecutor | None = None
        self._prober: asyncio.Task[None] | None = None
        self._expired = 0  # requests expired in the queue since it was last pruned
        # Health, for /ready: when (time.monotonic()) the store last committed and last failed.
        self.last_success: float | None = None
        self.last_failure: float | None = None
        self.last_failure_reason: str | None = None
        # Built now so that an unsupported driver is refused at start, not on the first request.
        self._rows = RowWriter(self.engine)
        self._shadow_rows = RowWriter(self.engine, shadow_scores)
        self._pending: list[_Pending] = []
        self._wake: asyncio.Event | None = None
        self._writer: asyncio.Task[None] | None = None
        self._stopping = False
        self._process: asyncio.subprocess.Process | None = None
        self._pipe: asyncio.WriteTransport | None = None  # the writer process's stdin
        self._generation = 0  # counts writer processes: parts sent to one die with it
        self._composing = False  # a group is taken from the queue and not yet written
        self._parts_awaiting_commit = False  # parts sent to the writer precede no commit yet

    async def start(self) -> None:
        """Bring the schema up to date, start the writer process and the task feeding it.

        Raises :class:`~service.audit.migrations.AuditSchemaError` (a one-line reason) when the
        database's schema is newer than this code or cannot be upgraded.
        """
        # Here, not at the top: the writer process imports this package and needs no Alembic.
        from service.audit.migrations import upgrade

        await asyncio.to_thread(upgrade, self.url)
        await self._spawn()
        self._readers = ThreadPoolExecutor(4, thread_name_prefix="audit-read")
        self._wake = asyncio.Event()
        self._stopping = False
        self._writer = asyncio.create_task(self._write_forever(), name="audit-writer")
        # A first, empty commit waits out the writer's start (imports, connection): on a busy
        # machine that took longer than the deadline (6 services starting at once on 2 cores),
        # and would have failed the first requests. A store failing now only shows on /ready.
        with contextlib.suppress(AuditUnavailable):
            await self.probe(max(self.timeout_s, STARTUP_S))
        if self.probe_interval_s > 0:
            self._prober = asyncio.create_task(self._probe_forever(), name="audit-probe")

    async def stop(self) -> None:
        """Commit what is queued, then stop the writer process."""
        prober, self._prober = self._prober, None
        if prober is not None:
            prober.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await prober
        writer, self._writer = self._writer, None
        if writer is not None:
            self._stopping = True
            assert self._wake is not None
            self._wake.set()
            await writer
        await self._end_process()
        readers, self._readers = self._readers, None
        if readers is not None:
            readers.shutdown(wait=False, cancel_futures=True)  # a frozen read is left behind
        self.engine.dispose()

    async def record(self, rows: DecisionRows) -> None:
        """Queue rows and wait until they are committed; raise AuditUnavailable if they are not.

        Each row is a dict holding every column of ``decisions``, or the rows come as
        :class:`DecisionColumns`.
        """
        await self.submit(rows)

    def probe(self, timeout_s: float | None = None) -> asyncio.Future[None]:
        """Commit nothing: one ``SELECT 1`` through the writer process (started anew if it is
        not running), within ``timeout_s`` (default: the audit deadline). The future fails with
        AuditUnavailable as a commit would; its outcome counts for :meth:`unavailable_reason`."""
        return self._queue((), None, timeout_s)

    def submit(
        self, rows: DecisionRows, shadow: DecisionRows | None = None
    ) -> asyncio.Future[None]:
        """Queue rows for the next group; the future resolves once they are committed.

        ``shadow``: rows of ``shadow_scores`` (a challenger's scores of these decisions), inserted
        in the same transaction.

        The writer task sends the group at the event loop's next turn: a caller that yields once
        (``await asyncio.sleep(0)``) can do other work while the writer process commits.
        """
        return self._queue((rows,), None, shadow=() if shadow is None else (shadow,))

    def submit_parts(
        self, parts: Iterator[DecisionRows], shadow: DecisionRows | None = None
    ) -> asyncio.Future[None]:
        """Send rows ahead to the writer, part by part, and commit them whole with the next group;
        the future resolves once every part is committed, and fails if any part was lost.

        Consumes ``parts`` here and now, sending each part as soon as the iterator produces it: a
        large batch builds its parts lazily, so the writer process inserts one part while the
        service builds the next. Being a plain function is what keeps other groups out: nothing
        can reach the writer between the parts and their commit, which is queued like any group.
        If the iterator raises, the parts sent are rolled back and the exception propagates.
        When no writer process is running (or parts cannot go ahead now, see below), the parts
        are collected and submitted as one group. Raises AuditUnavailable if the trail is not
        running. ``shadow``: as for :meth:`submit`, sent with the commit.
        """
        shadows: tuple[DecisionRows, ...] = () if shadow is None else (shadow,)
        pipe, process = self._pipe, self._process
        self._check_running()
        # Not while a group taken from the queue waits to be written (a new writer process is
        # being started for it): it would commit these parts with it, and its failure would not
        # be theirs to see. Nor while other parts await their commit (sent by a call that the
        # iterator made, or before the writer task has written their commit): both would share
        # the writer's one open transaction, and one's abort would roll back the other's.
        if (
            pipe is None
            or pipe.is_closing()
            or process is None
            or process.returncode is not None
            or self._composing
            or self._parts_awaiting_commit
        ):
            return self._queue(tuple(parts), None, shadow=shadows)
        generation = self._generation
        # Until the writer task writes the next commit, which takes these parts along.
        self._parts_awaiting_commit = True
        try:
            for rows in parts:
                pipe.write(protocol.message("part", self._rows.values(rows)))
        except BaseException:
            pipe.write(protocol.message("abort", []))
            self._parts_awaiting_commit = False
            raise
        return self._queue((), generation, shadow=shadows)

    def _check_running(self) -> None:
        if self._writer is None or self._wake is None:
            raise AuditUnavailable("audit trail is not running")

    def _queue(
        self,
        parts: tuple[DecisionRows, ...],
        generation: int | None,
        timeout_s: float | None = None,
        shadow: tuple[DecisionRows, ...] = (),
    ) -> asyncio.Future[None]:
        self._check_running()
        assert self._wake is not None
        loop = asyncio.get_running_loop()
        future: asyncio.Future[None] = loop.create_future()
        deadline = loop.time() + (timeout_s or self.timeout_s)
        timer = loop.call_at(deadline, self._expire, future)
        future.add_done_callback(lambda _: timer.cancel())
        self._pending.append((parts, future, generation, deadline, shadow))
        self._wake.set()
        return future

    def _expire(self, future: asyncio.Future[None]) -> None:
        """The deadline of a commit: its request answers 503, and its rows are never committed
        (dropped from the queue, or refused by the database, see :data:`REPLY_MARGIN`)."""
        if future.done():
            return
        reason = f"audit commit exceeded its deadline ({self.timeout_s * 1000:.0f} ms)"
        future.set_exception(AuditUnavailable(reason))
        self._failed(reason)
        # While the writer waits on a frozen database the queue grows with expired requests:
        # dropped here now and then (keeping parts sent ahead, which need their abort).
        self._expired += 1
        if self._expired > 64 + len(self._pending) // 2:
            self._expired = 0
            self._pending = [e for e in self._pending if not e[1].done() or e[2] is not None]

    def _succeeded(self) -> None:
        self.last_success = time.monotonic()

    def _failed(self, reason: str) -> None:
        self.last_failure = time.monotonic()
        self.last_failure_reason = reason

    def unavailable_reason(self) -> str | None:
        """Why the store cannot take decisions now (its last write or probe failed, none has
        succeeded since), or None when it can."""
        if self.last_failure is None:
            return None
        if self.last_success is not None and self.last_success > self.last_failure:
            return None
        return self.last_failure_reason

    async def _probe_forever(self) -> None:
        """Commit nothing (one ``SELECT 1`` through the writer) whenever no commit was settled
        for a probe interval: an idle store's failure shows on /ready before traffic meets it,
        and a failed store's recovery without traffic."""
        while True:
            await asyncio.sleep(self.probe_interval_s)
            settled = max(self.last_success or 0.0, self.last_failure or 0.0)
            if time.monotonic() - settled < self.probe_interval_s:
                continue
            with contextlib.suppress(AuditUnavailable):  # recorded by the writer task
                await self.probe()

    async def _write_forever(self) -> None:
        assert self._wake is not None
        while True:
            await self._wake.wait()
            self._wake.clear()
            await self._commit_pending()
            if self._stopping and not self._pending:
                return

    async def _commit_pending(self) -> None:
        group, self._pending = self._pending, []
        # Requests whose deadline passed in the queue were answered 503: their rows never go.
        expired = [entry for entry in group if entry[1].done()]
        group = [entry for entry in group if not entry[1].done()]
        if any(entry[2] is not None and entry[2] == self._generation for entry in expired):
            # Parts of an expired batch sit in the writer's open transaction: roll them back.
            # (Only one batch's parts await a commit at a time, see submit_parts.)
            if self._pipe is not None and not self._pipe.is_closing():
                self._pipe.write(protocol.message("abort", []))
            self._parts_awaiting_commit = False
        if not group:
            return
        records = [
            row
            for parts, *_ in group
            for rows in parts
            if not isinstance(rows, DecisionColumns)
            for row in rows
        ]
        shadow_records = [
            row
            for *_, shadows in group
            for rows in shadows
            if not isinstance(rows, DecisionColumns)
            for row in rows
        ]
        generation = None
        self._composing = True
        # The earliest deadline decides: no request of the group may be answered 503 while its
        # record is committed.
        first, last = min(entry[3] for entry in group), max(entry[3] for entry in group)
        try:
            values = self._rows.values(records)
            for parts, *_ in group:
                for rows in parts:
                    if isinstance(rows, DecisionColumns):
                        values += self._rows.values(rows)
            shadow_values = self._shadow_rows.values(shadow_records)
            for *_, shadows in group:
                for rows in shadows:
                    if isinstance(rows, DecisionColumns):
                        shadow_values += self._shadow_rows.values(rows)
            generation, failure = await self._send(values, first, last, shadow_values)
        except Exception as exc:  # the writer must outlive anything, or requests wait forever
            logger.exception("audit writer failed")
            failure = f"audit writer failed: {type(exc).__name__}"
            # Its open transaction (parts of a batch in this group) must not be committed by the
            # next group, and a reply may be on its way: a new writer process starts afresh.
            try:
                await self._end_process()
            except Exception:  # it is forgotten all the same: the next group starts another
                logger.exception("audit writer could not be stopped")
        finally:
            self._composing = False
        if failure is None:
            self._succeeded()
            late = sum(
                future.done() and not future.cancelled() and future.exception() is not None
                for _, future, *_ in group
            )
            if late:  # despite the reply margin: see docs/reliability.md
                logger.warning("audit commit landed after %d of its requests answered 503", late)
        else:
            self._failed(failure)
        for _, future, required, *_ in group:
            if future.done():  # its request was cancelled (client gone), or its deadline passed
                continue
            if failure is None and required not in (None, generation):
                # Its parts went to a writer process that has since died.
                future.set_exception(AuditUnavailable("audit writer process exited"))
            elif failure is None:
                future.set_result(None)
            else:
                future.set_exception(AuditUnavailable(failure))

    async def _send(
        self,
        rows: list[tuple[Any, ...]],
        first: float,
        last: float,
        shadow: list[tuple[Any, ...]] | None = None,
    ) -> tuple[int, str | None]:
        """One group to the writer process: which process took it, and None once committed,
        else why not.

        ``first`` and ``last`` are the earliest and latest deadlines of the group's requests
        (the event loop's clock). Their requests answer 503 at their deadlines (timers, see
        :meth:`_expire`), whatever happens here; the commit is refused past ``first`` less the
        reply margin (by the writer, and by the database itself on PostgreSQL). The answer is
        still awaited after that, so a database that wakes up finds its writer where it was;
        only a writer silent for ``abandon_s`` past ``last`` is killed and replaced. ``shadow``:
        rows of ``shadow_scores``, inserted just before the commit, in its transaction.
        """
        loop = asyncio.get_running_loop()
        if self._process is None or self._process.returncode is not None:
            # It died (or could not start) since the last group: start another one.
            await self._end_process()
            await self._spawn()
        process, pipe, generation = self._process, self._pipe, self._generation
        assert process is not None and process.stdout is not None and pipe is not None
        commit_by = time.time() + (first - loop.time()) - REPLY_MARGIN * self.timeout_s
        ahead = protocol.message("shadow", shadow) if shadow else b""
        pipe.write(
            ahead + protocol.message("deadline", commit_by) + protocol.message("commit", rows)
        )
        self._composing = self._parts_awaiting_commit = False
        try:
            reply = await asyncio.wait_for(
                process.stdout.readline(), timeout=max(0.0, last + self.abandon_s - loop.time())
            )
        except TimeoutError:
            logger.warning(
                "audit writer answered nothing for %.1f s past its deadline: abandoned",
                self.abandon_s,
            )
            self._kill_process()
            # Its successor starts now, so the next group does not wait for its start too.
            try:
                await self._spawn()
            except Exception:  # the next group tries again
                logger.exception("audit writer could not be started")
            return generation, "audit writer abandoned"
        except ConnectionResetError:
            reply = b""
        if not reply:
            await self._end_process()
            return generation, "audit writer process exited"
        failure = protocol.failure_of(reply)
        if failure is None:
            return generation, None
        return generation, f"audit database write failed: {failure}"

    async def _spawn(self) -> None:
        project = str(Path(__file__).resolve().parents[2])
        path = os.pathsep.join(p for p in (project, os.environ.get("PYTHONPATH")) if p)
        # A pipe of our own rather than the event loop's: ours can be widened (uvloop gives its
        # subprocesses socket pairs).
        read_end, write_end = os.pipe()
        try:
            _widen_pipe(write_end)
            self._process = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "service.audit.writer",
                stdin=read_end,
                stdout=asyncio.subprocess.PIPE,
                env={**os.environ, "PYTHONPATH": path},
            )
        except BaseException:
            os.close(write_end)
            raise
        finally:
            os.close(read_end)
        # The transport writes what the pipe takes at once and the rest as it drains, so a
        # message is never half written, whoever writes it and whatever awaits follow.
        self._pipe, _ = await asyncio.get_running_loop().connect_write_pipe(
            asyncio.BaseProtocol, os.fdopen(write_end, "wb", buffering=0)
        )
        # The URL (its password included) on the pipe, not on the command line.
        self._pipe.write(protocol.message("open", (self.url, self.timeout_ms)))
        self._generation += 1

    def _kill_process(self) -> None:
        """Kill the writer at once: a commit it is waiting on is abandoned with its connection."""
        process, self._process = self._process, None
        pipe, self._pipe = self._pipe, None
        if pipe is not None:
            pipe.abort()
        if process is not None and process.returncode is None:
            with contextlib.suppress(ProcessLookupError):  # it exited just now
                process.kill()
            # Reaped by the event loop's child watcher; the next group starts another process.

    async def _end_process(self) -> None:
        process, self._process = self._process, None
        pipe, self._pipe = self._pipe, None
        if pipe is not None:
            pipe.close()  # end of input, once written out: the writer commits nothing more, exits
        if process is None:
            return
        try:
            await asyncio.wait_for(process.wait(), timeout=10)
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):  # it exited just now
                process.kill()
            await process.wait()

    async def read(self, query: Callable[[], _Read]) -> _Read:
        """``query()`` (e.g. :meth:`get`) on a thread of the audit reads, within the deadline.

        Raises AuditUnavailable when the database fails it or does not answer in time (the
        thread is left to finish or fail on its own; the database's statement timeout bounds
        it when the database answers at all)."""
        if self._readers is None:
            raise AuditUnavailable("audit trail is not running")
        loop = asyncio.get_running_loop()
        try:
            return await asyncio.wait_for(
                loop.run_in_executor(self._readers, query), timeout=self.timeout_s
            )
        except TimeoutError:
            raise AuditUnavailable(
                f"audit read exceeded its deadline ({self.timeout_s * 1000:.0f} ms)"
            ) from None
        except SQLAlchemyError as exc:
            raise AuditUnavailable(f"audit database read failed: {type(exc).__name__}") from None

    def get(self, request_id: str) -> dict[str, Any] | None:
        """The decision with this request id as a dict of its columns, or None. Blocking: from
        the event loop, ``await trail.read(lambda: trail.get(request_id))``."""
        with self.engine.connect() as connection:
            row = (
                connection.execute(select(decisions).where(decisions.c.request_id == request_id))
                .mappings()
                .first()
            )
        return dict(row) if row is not None else None

    def count(self) -> int:
        with self.engine.connect() as connection:
            return int(connection.execute(select(func.count()).select_from(decisions)).scalar_one())


# A 1,000-applicant group pickles to ~0.7 MB. Through Linux's default 64 KB pipe it went over in
# pieces, each waiting for the event loop to come back to the pipe; in a pipe this wide it goes
# in one write and the writer process starts on it at once.
PIPE_BYTES = 1 << 20


def _widen_pipe(fd: int) -> None:
    try:
        import fcntl
    except ImportError:  # Windows
        return
    set_size = getattr(fcntl, "F_SETPIPE_SZ", None)  # Linux only
    if set_size is None:
        return
    try:
        fcntl.fcntl(fd, set_size, PIPE_BYTES)
    except OSError as exc:  # above /proc/sys/fs/pipe-max-size: the default pipe still works
        logger.info("audit pipe keeps its default size: %s", exc)
