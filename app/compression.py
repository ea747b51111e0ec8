"""Static files sent compressed (brotli or gzip) through Flask-Compress, each compressed once.

Only the static endpoint is compressed. Pages carry a CSRF token next to text the visitor
chose (a search, a period), which is what BREACH needs to read a secret out of compressed
sizes; the static files carry neither, and they are the weight (plotly.js is 1.2 MB).

Brotli at its best quality brings plotly.js to 329 kB but takes seconds of CPU, so a body is
compressed once per file content, encoding and level, and kept in files under the
instance folder, which every gunicorn worker shares and a restart keeps.
`flask compress-static` (run by `make serve` and `make run`) fills them before the first
visitor; a file that changed gets a new key (its content hash, as in its ?v= URL).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click
from flask import Flask, Request, Response, current_app, request
from flask.cli import with_appcontext

from .hooks import static_version

if TYPE_CHECKING:
    # Imported where used: `flask --help` lists compress-static without loading them.
    from cachelib import FileSystemCache
    from flask_compress import Compress

DEFAULTS: dict[str, Any] = {
    # The encodings offered, by preference when a browser accepts several equally
    # (zstd and deflate are left out: every browser that sends them accepts br and gzip).
    "COMPRESS_ALGORITHM": ["br", "gzip"],
    "COMPRESS_BR_LEVEL": 11,
    "COMPRESS_LEVEL": 9,
    # Below this many bytes a response is sent as it is (Flask-Compress's default).
    "COMPRESS_MIN_SIZE": 500,
    # This module's hook picks the responses: Flask-Compress compresses whole bodies only.
    "COMPRESS_REGISTER": False,
    "COMPRESS_STREAMS": False,
}


class CompressedOnce:
    """Flask-Compress's cache: compressed bodies in files, written once.

    Flask-Compress stores the body again on every hit; add() keeps the file that is there.
    """

    def __init__(self, folder: str) -> None:
        self.folder = folder
        self._store: FileSystemCache | None = None

    @property
    def store(self) -> FileSystemCache:
        """The files, made on first use: building the app (a `flask` command before
        init-db, say) creates no folder."""
        if self._store is None:
            from cachelib import FileSystemCache

            self._store = FileSystemCache(self.folder, threshold=500, default_timeout=0)
        return self._store

    def get(self, key: str) -> bytes | None:
        """Return the compressed body stored under key, or None."""
        if self._store is None and not os.path.isdir(self.folder):
            return None
        value = self.store.get(key)
        return value if isinstance(value, bytes) else None

    def set(self, key: str, value: bytes) -> None:
        """Store value under key unless a body is there already."""
        self.store.add(key, value)


def cache_key(req: Request) -> str:
    """Return the key of a static file's compressed body: its name, content hash and levels."""
    filename = str((req.view_args or {}).get("filename", ""))
    version = static_version(str(current_app.static_folder), filename)
    config = current_app.config
    return f"{filename}@{version}:br{config['COMPRESS_BR_LEVEL']}:gz{config['COMPRESS_LEVEL']}"


def compress_static(response: Response) -> Response:
    """Compress a static file's answer when the browser accepts br or gzip."""
    if request.endpoint != "static":
        return response
    compress: Compress = current_app.extensions["partner_analytics.compress"]
    if (
        response.status_code == 200
        and response.is_streamed
        and response.mimetype in compress.compress_mimetypes_set
    ):
        # send_file streams the file; Flask-Compress compresses (and caches) whole bodies.
        # Range answers (206) and 304s stay as they are.
        response.direct_passthrough = False
        response.make_sequence()
    return compress.after_request(response)


def init_app(app: Flask) -> None:
    """Set Flask-Compress up for the static files, with its cache under the instance folder."""
    from flask_compress import Compress

    for key, value in DEFAULTS.items():
        app.config.setdefault(key, value)
    folder = app.config.setdefault(
        "COMPRESS_CACHE_DIR", os.path.join(app.instance_path, "compressed-static")
    )
    app.config["COMPRESS_CACHE_BACKEND"] = lambda: CompressedOnce(folder)
    app.config["COMPRESS_CACHE_KEY"] = cache_key
    # One Compress per app: its cache and settings are read at init_app.
    app.extensions["partner_analytics.compress"] = Compress(app)
    app.after_request(compress_static)
    app.cli.add_command(compress_static_command)


def compressible_files(app: Flask) -> list[str]:
    """Return the static files (relative names) that would be sent compressed."""
    import mimetypes

    folder = Path(str(app.static_folder))
    names = []
    for path in sorted(folder.rglob("*")):
        kind = mimetypes.guess_type(path.name)[0]
        if (
            path.is_file()
            and kind in app.config["COMPRESS_MIMETYPES"]
            and path.stat().st_size >= app.config["COMPRESS_MIN_SIZE"]
        ):
            names.append(path.relative_to(folder).as_posix())
    return names


@click.command("compress-static")
@with_appcontext
def compress_static_command() -> None:
    """Compress every static file once (brotli and gzip), before the first visitor."""
    app = current_app
    client = app.test_client()
    for name in compressible_files(app):
        sizes = []
        for encoding in app.config["COMPRESS_ALGORITHM"]:
            answer = client.get(f"/static/{name}", headers={"Accept-Encoding": encoding})
            sizes.append(f"{encoding} {len(answer.get_data()):,}")
            answer.close()
        size = (Path(str(app.static_folder)) / name).stat().st_size
        click.echo(f"{name}: {size:,} bytes; {', '.join(sizes)}", file=sys.stdout)
