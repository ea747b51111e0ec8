"""Event ingestion shared by the API and the CLI.

- validation: the rules every event meets (and the fast path with the same verdicts);
- storage: exactly-once storage, a batch per transaction under the partner's lock;
- files: JSON Lines and CSV readers for `flask ingest`;
- pipeline: the file import's forked reader process.

Rollup upkeep (add, rebuild, verify, re-bucket) is app/rollups.py. What callers use is
named here.
"""

from typing import Any

from .files import FileFormatError, detect_format, iter_csv, iter_file, iter_jsonl, open_text
from .storage import (
    IngestStopped,
    commit_rows,
    ingest_batch,
    ingest_stream,
    order_rows,
    store_rows,
    sum_rows,
)
from .validation import (
    MAX_BATCH,
    MAX_EVENT_ID_LENGTH,
    MAX_QUANTITY,
    TYPE_RE,
    IngestResult,
    OrgResolver,
    Rejection,
    parse_quantity,
    prepare_batch,
    storable_text,
    validate_event,
)

__all__ = [
    "MAX_BATCH",
    "MAX_EVENT_ID_LENGTH",
    "MAX_QUANTITY",
    "TYPE_RE",
    "FileFormatError",
    "IngestResult",
    "IngestStopped",
    "OrgResolver",
    "Rejection",
    "commit_rows",
    "detect_format",
    "ingest_batch",
    "ingest_stream",
    "ingest_stream_pipelined",
    "iter_csv",
    "iter_file",
    "iter_jsonl",
    "open_text",
    "order_rows",
    "parse_quantity",
    "pipeline_available",
    "prepare_batch",
    "storable_text",
    "store_rows",
    "sum_rows",
    "validate_event",
]


# The pipeline (multiprocessing, ctypes) is imported by the imports that use it.
def ingest_stream_pipelined(*args: Any, **kwargs: Any) -> Any:
    """pipeline.ingest_stream_pipelined: a file import with a reader process."""
    from .pipeline import ingest_stream_pipelined as run

    return run(*args, **kwargs)


def pipeline_available() -> bool:
    """pipeline.pipeline_available: whether a reader process can be forked here."""
    from .pipeline import pipeline_available as available

    return available()
