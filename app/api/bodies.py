"""Request bodies of the bulk endpoint (POST /partner/events): gzip and NDJSON.

Pure functions, no request: app/api/guards.py reads the request with them and turns their
exceptions into the API's 400/413 answers.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable

NDJSON_TYPE = "application/x-ndjson"
GZIP_ENCODINGS = frozenset({"gzip", "x-gzip"})
# Compressed bytes read from the client at a time.
CHUNK = 64 * 1024
# Blank lines hold nothing but JSON whitespace (str.strip would also take NBSP and friends).
JSON_SPACE = " \t\r"


class NotGzip(ValueError):
    """The body is not a complete, valid gzip stream."""


class InflatedTooLarge(ValueError):
    """The body inflates to more than the limit (inflating stopped at limit + 1 bytes)."""


def inflate_gzip(read: Callable[[int], bytes], limit: int) -> bytes:
    """Inflate the gzip stream that read(n) returns piece by piece, keeping at most
    limit + 1 bytes of output in memory.

    Raises InflatedTooLarge as soon as the output passes limit (a decompression bomb is
    never inflated further), NotGzip for anything that is not gzip, a truncated stream
    or trailing garbage. Several gzip members one after the other (`cat a.gz b.gz`) are
    one body, as gzip(1) reads them. An empty body stays empty.
    """
    parts: list[bytes] = []
    size = 0
    inflater = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)  # gzip header and trailer
    fed = False
    try:
        while chunk := read(CHUNK):
            data = chunk
            while data:
                if inflater.eof:  # the next member begins
                    inflater = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
                fed = True
                # max_length bounds the output of this call: never more than limit + 1.
                out = inflater.decompress(data, limit + 1 - size)
                size += len(out)
                if size > limit:
                    raise InflatedTooLarge(f"the body inflates to more than {limit:,} bytes")
                parts.append(out)
                data = inflater.unused_data if inflater.eof else inflater.unconsumed_tail
    except zlib.error as exc:
        raise NotGzip(f"the body is not valid gzip ({exc})") from exc
    if fed and not inflater.eof:
        raise NotGzip("the body is not valid gzip (the stream ends early)")
    return b"".join(parts)


def ndjson_lines(text: str) -> list[tuple[int, str]]:
    """Return (0-based line index, line) for every line of an NDJSON text that is not blank.

    Lines end with LF (a CR before it is JSON whitespace); blank lines, a trailing newline
    included, are skipped but keep their place in the numbering. Only LF splits: U+2028
    and the like may stand inside a JSON string.
    """
    return [(index, line) for index, line in enumerate(text.split("\n")) if line.strip(JSON_SPACE)]
