"""The API's body check: its quick pass never clears a body the field-by-field walk refuses."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from app.api.guards import MAX_DEPTH, _check_tree, _check_tree_paths
from app.errors import AppError

# Text with the characters that matter: NUL, lone surrogates, non-ASCII, escapes' letters.
text_st = st.text(
    alphabet=st.sampled_from(
        ["a", "u", "\\", "\x00", "\ud800", "\udfff", "\u00e9", "\ud55c", "\U0001f600", " "]
    ),
    max_size=6,
)
leaf_st = st.one_of(st.none(), st.booleans(), st.integers(), text_st)
tree_st = st.recursive(
    leaf_st,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3), st.dictionaries(text_st, inner, max_size=3)
    ),
    max_leaves=40,
)


def deep(levels: int, leaf: object) -> object:
    value = leaf
    for _ in range(levels):
        value = [value]
    return value


def verdict(check, *args) -> str | None:
    try:
        check(*args)
    except AppError as exc:
        return exc.message
    return None


def encodings(body: object) -> list[bytes]:
    """The bytes a client could send for body: escaped ASCII, raw UTF-8, UTF-16 and -32."""
    escaped = json.dumps(body).encode("ascii")
    raw = json.dumps(body, ensure_ascii=False)
    return [
        escaped,
        raw.encode("utf-8", "surrogatepass"),
        raw.encode("utf-16", "surrogatepass"),
        raw.encode("utf-32", "surrogatepass"),
    ]


@settings(max_examples=400, deadline=None)
@given(
    body=st.dictionaries(
        text_st,
        st.one_of(tree_st, st.builds(deep, st.integers(MAX_DEPTH - 3, MAX_DEPTH + 1), leaf_st)),
        max_size=4,
    )
)
def test_the_quick_check_gives_the_same_verdict_as_the_full_walk(body):
    for raw in encodings(body):
        # Compared on what the server parses (a surrogate pair there is one character).
        parsed = json.loads(raw)
        assert verdict(_check_tree, parsed, raw) == verdict(_check_tree_paths, parsed)


@pytest.mark.parametrize(
    "body, message",
    [
        ({"a": "x\x00"}, "a contains a NUL character"),
        ({"a": ["ok", {"b": "\ud800"}]}, "a[1].b is not valid Unicode text"),
        ({"k\x00": 1}, "k\x00 contains a NUL character"),
        ({"a": deep(MAX_DEPTH, 1)}, f"the body is nested deeper than {MAX_DEPTH} levels"),
    ],
)
def test_the_full_walk_names_the_field(body, message):
    for raw in encodings(body):
        assert verdict(_check_tree, json.loads(raw), raw) == message
