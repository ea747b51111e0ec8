"""Downloads: formula-safe CSV cells and files (the report's layout is in test_reports.py)."""

from __future__ import annotations

import csv
import io

from app import exports

RISKY = ("=1+1", "+1", "-1", "@SUM(A1)", "\tx", "\rx")


def test_csv_cell_neutralises_formulas_and_keeps_numbers():
    for risky in RISKY:
        assert exports.csv_cell(risky) == "'" + risky
    assert (exports.csv_cell("plain"), exports.csv_cell(-5), exports.csv_cell(None)) == (
        "plain",
        -5,
        "",
    )


def test_csv_cell_booleans_as_yes_no_only_when_asked():
    # The report is read by people (yes/no); the billing table by scripts (True/False).
    assert (exports.csv_cell(True, yes_no=True), exports.csv_cell(False, yes_no=True)) == (
        "yes",
        "no",
    )
    assert (exports.csv_cell(True), exports.csv_cell(False)) == (True, False)
    assert exports.csv_cell(0, yes_no=True) == 0  # a count, not a boolean


def test_csv_text_escapes_every_cell_with_crlf_lines():
    text = exports.csv_text([["name", "n"], ["=cmd", 3], [None, True]])
    assert text == "name,n\r\n'=cmd,3\r\n,True\r\n"
    assert list(csv.reader(io.StringIO(text))) == [["name", "n"], ["'=cmd", "3"], ["", "True"]]


def test_table_csv_is_a_download(app):
    with app.test_request_context():
        response = exports.table_csv(["a", "b"], [["@x", 1]], "t.csv")
    assert response.mimetype == "text/csv"
    assert response.headers["Content-Disposition"] == 'attachment; filename="t.csv"'
    assert response.get_data(as_text=True) == "a,b\r\n'@x,1\r\n"
