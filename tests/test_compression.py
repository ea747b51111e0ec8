"""Static files sent compressed (issue 15 item 8): brotli or gzip as the browser accepts, the
original bytes once decompressed, Vary: Accept-Encoding, a year's immutable caching for
versioned URLs, each body compressed once; pages stay uncompressed (BREACH)."""

from __future__ import annotations

import gzip
from pathlib import Path

import brotli
import flask_compress.flask_compress as fc
import pytest
from views_support import build_acme, login

from app import create_app
from app.views.context import plotly_js_filename

STATIC = Path(__file__).resolve().parent.parent / "static"
DECODE = {"br": brotli.decompress, "gzip": gzip.decompress}
ASSETS = (plotly_js_filename(), "css/app.css", "js/charts.js")


def versioned(app, name: str) -> str:
    from flask import url_for

    with app.test_request_context():
        return url_for("static", filename=name)


@pytest.mark.parametrize("encoding", ["br", "gzip"])
def test_assets_are_sent_compressed_and_decompress_to_the_file(app, client, encoding):
    for name in ASSETS:
        original = (STATIC / name).read_bytes()
        response = client.get(versioned(app, name), headers={"Accept-Encoding": encoding})
        body = response.get_data()
        response.close()
        assert response.status_code == 200, name
        assert response.headers["Content-Encoding"] == encoding, name
        assert "Accept-Encoding" in response.headers["Vary"], name
        assert int(response.headers["Content-Length"]) == len(body), name
        assert len(body) < len(original) / 2, name  # text compresses well past half
        assert DECODE[encoding](body) == original, name
        assert response.cache_control.max_age == 31_536_000, name
        assert response.cache_control.immutable, name


def test_the_preferred_encoding_wins_and_brotli_breaks_ties(app, client):
    url = versioned(app, "css/app.css")
    chromium = client.get(url, headers={"Accept-Encoding": "gzip, deflate, br, zstd"})
    assert chromium.headers["Content-Encoding"] == "br"
    prefers_gzip = client.get(url, headers={"Accept-Encoding": "br;q=0.5, gzip"})
    assert prefers_gzip.headers["Content-Encoding"] == "gzip"
    # zstd and deflate alone are not offered: the file goes as it is.
    other = client.get(url, headers={"Accept-Encoding": "zstd, deflate"})
    assert "Content-Encoding" not in other.headers
    assert other.get_data() == (STATIC / "css/app.css").read_bytes()
    for response in (chromium, prefers_gzip, other):
        response.close()


def test_without_accept_encoding_the_file_goes_as_it_is_and_still_varies(app, client):
    response = client.get(versioned(app, "js/charts.js"))
    assert "Content-Encoding" not in response.headers
    assert response.get_data() == (STATIC / "js/charts.js").read_bytes()
    assert "Accept-Encoding" in response.headers["Vary"]
    response.close()


def test_a_tiny_file_and_a_range_are_not_compressed(app, client):
    tiny = client.get(versioned(app, "favicon.svg"), headers={"Accept-Encoding": "br"})
    assert (STATIC / "favicon.svg").stat().st_size < 500  # under COMPRESS_MIN_SIZE
    assert "Content-Encoding" not in tiny.headers
    assert tiny.get_data() == (STATIC / "favicon.svg").read_bytes()
    part = client.get(
        "/static/css/app.css", headers={"Accept-Encoding": "br", "Range": "bytes=0-99"}
    )
    assert part.status_code == 206
    assert "Content-Encoding" not in part.headers
    assert part.get_data() == (STATIC / "css/app.css").read_bytes()[:100]
    for response in (tiny, part):
        response.close()


def test_pages_are_not_compressed(
    client, freeze, make_partner, make_org, add_events, make_user, api_key
):
    # A page holds the CSRF token beside text the visitor chose: compressing it would
    # let BREACH read the token from the sizes.
    build_acme(freeze, make_partner, make_org, add_events, make_user)
    login(client)
    page = client.get("/organizations?search=blue", headers={"Accept-Encoding": "br, gzip"})
    assert page.status_code == 200
    assert "Content-Encoding" not in page.headers
    assert "csrf_token" in page.get_data(as_text=True)


def test_each_body_is_compressed_once_and_shared_through_the_cache_folder(app, client, monkeypatch):
    url = versioned(app, "js/charts.js")
    first = client.get(url, headers={"Accept-Encoding": "br"})
    body = first.get_data()
    first.close()
    # Another process on the same folder (a second gunicorn worker, a restart) reads the
    # stored body: compressing again would fail here.
    other = create_app(
        {
            "TESTING": True,
            "DATABASE_URL": app.config["DATABASE_URL"],
            "SECRET_KEY": "test-secret",
            "RATELIMIT_STORAGE_URI": "memory://",
            "COMPRESS_CACHE_DIR": app.config["COMPRESS_CACHE_DIR"],
            "COMPRESS_BR_LEVEL": 5,
        }
    )

    def refuse(*args, **kwargs):
        raise AssertionError("compressed again")

    monkeypatch.setattr(fc, "_compress_data", refuse)
    again = other.test_client().get(url, headers={"Accept-Encoding": "br"})
    assert again.headers["Content-Encoding"] == "br"
    assert again.get_data() == body
    again.close()


def test_the_cache_key_holds_the_content_hash_and_the_levels(app):
    import hashlib

    from app.compression import cache_key

    digest = hashlib.sha256((STATIC / "js/charts.js").read_bytes()).hexdigest()[:12]
    with app.test_request_context("/static/js/charts.js"):
        from flask import request

        # A changed file has a new hash, hence a new key: no stale body is ever sent.
        assert cache_key(request) == f"js/charts.js@{digest}:br5:gz9"


def test_compress_static_fills_the_cache_for_every_compressible_file(app, runner, monkeypatch):
    result = runner.invoke(args=["compress-static"])
    assert result.exit_code == 0, result.output
    lines = {line.split(":")[0]: line for line in result.output.splitlines()}
    # favicon.svg (238 bytes) is under the threshold; print.css, app.css, the scripts are not.
    assert set(lines) == {
        plotly_js_filename(),
        "css/app.css",
        "css/print.css",
        "js/charts.js",
        "js/copy.js",
        "js/tables.js",
    }
    assert "br " in lines["css/app.css"] and "gzip " in lines["css/app.css"]

    def refuse(*args, **kwargs):
        raise AssertionError("compressed again")

    monkeypatch.setattr(fc, "_compress_data", refuse)
    client = app.test_client()
    for name in ASSETS:
        for encoding in ("br", "gzip"):
            response = client.get(versioned(app, name), headers={"Accept-Encoding": encoding})
            assert DECODE[encoding](response.get_data()) == (STATIC / name).read_bytes()
            response.close()
