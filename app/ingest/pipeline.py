"""The file import's second process: a forked reader parses and validates the next chunk
of a batch while the importer stores the one before, in file order."""

from __future__ import annotations

import ctypes
import ctypes.util
import multiprocessing
import os
import pickle
import queue
import signal
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from ..database import dialect_name
from ..models import Partner
from ..rollups import Sums, rollup_rows
from ..timeutil import utcnow
from .storage import (
    Part,
    SqliteFormatters,
    add_batch_result,
    chunks,
    frozen_heap,
    ingest_stream,
    order_rows,
    sqlite_formatters,
    sqlite_params,
    store_chunked_batch,
    sum_rows,
)
from .validation import IngestResult, OrgResolver, prepare_batch

_PR_SET_PDEATHSIG = 1  # linux/prctl.h
# The most lines the reader prepares before handing them over (a batch is stored in
# chunks of this size: the importer stores one while the reader prepares the next).
CHUNK_LINES = 5000
# How long the reader waits on a full queue before checking that its parent still lives.
_READER_POLL_SECONDS = 1.0


def pipeline_available() -> bool:
    """Tell whether a reader process can be forked here (Linux and macOS with fork)."""
    return "fork" in multiprocessing.get_all_start_methods()


def _die_with_parent(parent: int) -> None:
    """Have the kernel end this reader when the importer dies (Linux: PR_SET_PDEATHSIG).

    Polling alone is not enough: a reader that has read the whole file waits at exit for
    its queue's feeder thread, which waits for an importer that will never read again, and
    the reader keeps the importer's inherited database connection open meanwhile, so its
    uncommitted batch stays locked on the server and a re-run waits on it.
    """
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    except (OSError, AttributeError):  # not Linux: the polling in send() remains
        return
    if os.getppid() != parent:  # the importer died before the request took effect
        os._exit(1)


def _read_batches(
    pairs: Iterable[tuple[int, Any]],
    resolver: OrgResolver,
    partner_id: str,
    tz: str,
    batch_size: int,
    out: Any,
    parent: int,
    formatters: SqliteFormatters | None,
) -> None:
    """The reader process: parse and validate batches, hand them to the parent in order.

    A batch goes as chunks of at most CHUNK_LINES prepared rows, so that the parent
    stores one while the next is prepared, then as the rollup rows of all its chunks:
    the parent adds those once per batch.
    """
    _die_with_parent(parent)

    def send(message: tuple[Any, ...]) -> None:
        while True:
            try:
                out.put(message, timeout=_READER_POLL_SECONDS)
                return
            except queue.Full:
                if os.getppid() != parent:  # the importer is gone (killed): stop too
                    os._exit(1)

    sums: Sums = {}
    now = None
    try:
        for lines, chunk, ends_batch in chunks(pairs, batch_size, CHUNK_LINES):
            if now is None:  # the batch's receipt time
                now = utcnow()
            result = IngestResult()
            rows = prepare_batch(chunk, resolver, tz, now, result)
            order_rows(partner_id, rows, now)
            sum_rows(rows, into=sums)
            if formatters is None:
                send(("chunk", (lines, chunk[0][0], rows, None, result)))
            else:  # SQLite: the text parameters are made here, and the rows need not travel
                send(("chunk", (lines, chunk[0][0], [], sqlite_params(rows, formatters), result)))
            if ends_batch:
                # The rollups' rows too: the storing process is the busier one.
                rolled = rollup_rows(partner_id, sums, tz) if sums else None
                sums, now = {}, None
                send(("end", rolled))
        send(("done",))
    except Exception as exc:  # noqa: BLE001 - handed to the parent, which raises it
        try:
            pickle.dumps(exc)
        except Exception:  # noqa: BLE001
            exc = RuntimeError(f"{type(exc).__name__}: {exc}")
        send(("error", exc))


def ingest_stream_pipelined(
    partner: Partner,
    pairs: Iterable[tuple[int, Any]],
    batch_size: int = 5000,
    on_batch: Callable[[int, IngestResult], None] | None = None,
    wait: float = 0.0,
) -> IngestResult:
    """ingest_stream with reading and validation in a second process.

    A forked reader process parses and validates the next chunk (CHUNK_LINES lines) while
    this process stores the one before, so a file import uses two cores. The reader
    never touches the database; this process stores every batch (batch_size lines) in
    its own transaction, chunk by chunk, in file order (store_chunked_batch), so the
    results, the rejections (with their line numbers) and the crash behaviour are those
    of ingest_stream. pairs must not be read by the caller afterwards.
    """
    if not pipeline_available():
        return ingest_stream(partner, pairs, batch_size, on_batch, wait)
    resolver = OrgResolver(partner.id)
    partner_id, tz = partner.id, partner.timezone
    formatters = sqlite_formatters() if dialect_name() == "sqlite" else None
    context = multiprocessing.get_context("fork")
    # Two batches in flight bound the memory: one being stored, one waiting.
    channel = context.Queue(maxsize=2)
    reader = context.Process(
        target=_read_batches,
        daemon=True,
        name="ingest-reader",
        args=(pairs, resolver, partner_id, tz, batch_size, channel, os.getpid(), formatters),
    )
    total = IngestResult()
    # Frozen before the fork: the reader inherits the frozen heap, and its pages shared
    # with this process are not written by the collector's passes either.
    with frozen_heap():
        reader.start()
        return _store_batches(reader, channel, partner_id, tz, wait, on_batch, total)


def _store_batches(
    reader: Any,
    channel: Any,
    partner_id: str,
    tz: str,
    wait: float,
    on_batch: Callable[[int, IngestResult], None] | None,
    total: IngestResult,
) -> IngestResult:
    """Store the reader's batches in order until it is done; stop it on the way out."""
    try:
        parts = _received(reader, channel)
        for kind, first in parts:
            # tz stays the reader's: every batch is prepared with it (a batch is
            # re-bucketed if the partner's timezone has changed since).
            assert kind == "chunk", "a batch begins with a chunk"
            _tz, results = store_chunked_batch(partner_id, tz, first, parts, wait, total)
            for lines, result in results:
                add_batch_result(total, lines, result, on_batch)
    finally:
        if reader.is_alive():
            reader.terminate()
        reader.join()
        channel.close()
        channel.cancel_join_thread()
    return total


def _received(reader: Any, channel: Any) -> Iterator[Part]:
    """Yield the reader's chunks and batch ends in order until it is done; raise its
    error, or a RuntimeError if it stopped without a word."""
    while True:
        try:
            message = channel.get(timeout=_READER_POLL_SECONDS)
        except queue.Empty:
            if reader.is_alive():
                continue
            try:
                message = channel.get(timeout=_READER_POLL_SECONDS)
            except queue.Empty:
                raise RuntimeError(
                    f"the file reader process stopped unexpectedly (exit code {reader.exitcode})"
                ) from None
        if message[0] == "done":
            return
        if message[0] == "error":
            raise message[1]
        yield message
