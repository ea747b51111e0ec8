"""The ingestion fast path never accepts what validate_event refuses, nor stores it differently."""

from __future__ import annotations

from datetime import datetime

from hypothesis import given, settings
from hypothesis import strategies as st

from app import ingest
from app.ingest.validation import FastPath

NOW = datetime(2026, 2, 1, 12)
ORG_IDS = ["org-a", "org-b"]
EXTERNAL = {"ext-a": "org-a", "ext-b": "org-b"}


def resolver() -> ingest.OrgResolver:
    found = object.__new__(ingest.OrgResolver)
    found.ids = set(ORG_IDS)
    found.by_external = dict(EXTERNAL)
    return found


stamps = st.one_of(
    st.datetimes(min_value=datetime(1999, 12, 31), max_value=datetime(2026, 2, 1, 14)).map(
        lambda d: d.isoformat()
    ),
    st.builds(
        lambda d, suffix: d.isoformat(timespec="seconds") + suffix,
        st.datetimes(min_value=datetime(1999, 12, 31), max_value=datetime(2026, 2, 1, 14)),
        st.sampled_from(
            ["Z", "ZZ", "+00:00", "-05:30", "+14:00", "+01:00Z", " ", "z", "+0545", ""]
        ),
    ),
    st.sampled_from(
        [
            "2025-01-01Z",
            "2025-01-01T10:00Z",
            "2025-13-01T00:00:00Z",
            "",
            "2025-01-01T24:00:00Z",
            " 2025-01-01T10:00:00Z",
            "2025-01-01t10:00:00Z",
        ]
    ),
    st.none(),
    st.integers(),
)


def mostly(valid: st.SearchStrategy, odd: st.SearchStrategy) -> st.SearchStrategy:
    """Usually a valid value, sometimes an odd one: most events pass, every edge is tried."""
    return st.integers(0, 4).flatmap(lambda pick: odd if pick == 0 else valid)


ASCII_IDS = st.text(alphabet="abcxyz0189-_:. ", min_size=1, max_size=10)
ORG_KEYS = st.one_of(
    st.fixed_dictionaries({"organizationId": st.sampled_from(ORG_IDS)}),
    st.fixed_dictionaries({"externalId": st.sampled_from(list(EXTERNAL))}),
    st.fixed_dictionaries(
        {"organizationId": st.sampled_from(ORG_IDS), "externalId": st.sampled_from(list(EXTERNAL))}
    ),
    st.fixed_dictionaries(
        {},
        optional={
            "organizationId": st.sampled_from(["org-x", "", None, 5, *ORG_IDS]),
            "externalId": st.sampled_from(["ext-x", "", None, 7, *EXTERNAL]),
        },
    ),
)
FIELDS = st.fixed_dictionaries(
    {
        "eventId": mostly(
            ASCII_IDS,
            st.one_of(
                st.text(max_size=4),
                st.integers(),
                st.none(),
                st.just("x" * 256),
                st.just("a\x00b"),
                st.just("\ud800"),
                st.just("  "),
            ),
        ),
        "type": mostly(
            st.sampled_from(["identification", "page_view", "x_1"]),
            st.sampled_from(
                [
                    "Bad",
                    "",
                    None,
                    "a" * 65,
                    3,
                    "1abc",
                    "identification\n",
                    "a" * 64 + "\n",
                    "page_view\r\n",
                ]
            ),
        ),
        "occurredAt": mostly(
            st.builds(
                lambda d, suffix: d.isoformat() + suffix,
                st.datetimes(min_value=datetime(2000, 1, 2), max_value=datetime(2026, 1, 31)),
                st.sampled_from(["Z", "", "+00:00", "-05:30", "+05:45"]),
            ),
            stamps,
        ),
    },
    optional={
        "quantity": mostly(
            st.one_of(st.integers(0, 1_000_000_000), st.integers(0, 10**12).map(str)),
            st.one_of(
                st.integers(-2, 2_000_000_000),
                st.sampled_from(
                    [
                        " 3",
                        "+4",
                        "-1",
                        "1.0",
                        "",
                        "++5",
                        "0012",
                        True,
                        None,
                        1.5,
                        "9" * 13,
                        "\u0663",
                        "-0",
                        " 3 ",
                        "3\n",
                        "\uff17",
                        "\u0661\u0662",
                        "0000000001",
                        "1000000001",
                        "12345678901",
                        False,
                    ]
                ),
            ),
        ),
    },
)
events = st.builds(lambda fields, keys: {**fields, **keys}, FIELDS, ORG_KEYS)


@settings(max_examples=1500, deadline=None)
@given(
    raw=events, tz=st.sampled_from(["UTC", "Europe/Berlin", "Asia/Kathmandu", "America/St_Johns"])
)
def test_the_fast_path_agrees_with_validate_event(raw, tz):
    found = resolver()
    fast = FastPath(found, tz, NOW).row(dict(raw))
    row, rejection = ingest.validate_event(dict(raw), found, tz, NOW)
    if fast is not None:
        assert rejection is None, (raw, rejection)
        assert fast == row


def test_the_fast_path_takes_the_common_utc_form():
    found = resolver()
    raw = {
        "eventId": "e1",
        "externalId": "ext-b",
        "type": "identification",
        "quantity": "2",
        "occurredAt": "2025-10-01T23:30:00Z",
    }
    # 23:30 UTC on 1 October is 01:30 on 2 October in Berlin (UTC+2 in summer time).
    assert FastPath(found, "Europe/Berlin", NOW).row(raw) == {
        "organization_id": "org-b",
        "event_id": "e1",
        "type": "identification",
        "quantity": 2,
        "occurred_at": datetime(2025, 10, 1, 23, 30),
        "local_date": datetime(2025, 10, 2).date(),
    }
