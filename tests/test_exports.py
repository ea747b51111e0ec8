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


def test_csv_cell_booleans_are_true_and_false_in_every_file():
    assert (exports.csv_cell(True), exports.csv_cell(False)) == ("true", "false")
    assert (exports.csv_cell(0), exports.csv_cell(1)) == (0, 1)  # counts, not booleans


def test_export_filenames_name_the_partner_what_and_the_days():
    from datetime import date

    name = exports.export_filename("acme", "billing", date(2025, 9, 1), date(2025, 11, 30))
    assert name == "acme-billing-2025-09-01_2025-11-30.csv"


def test_csv_text_escapes_every_cell_with_crlf_lines():
    text = exports.csv_text([["name", "n"], ["=cmd", 3], [None, True]])
    assert text == "name,n\r\n'=cmd,3\r\n,true\r\n"
    assert list(csv.reader(io.StringIO(text))) == [["name", "n"], ["'=cmd", "3"], ["", "true"]]


def test_table_csv_is_a_download(app):
    with app.test_request_context():
        response = exports.table_csv(["a", "b"], [["@x", 1]], "t.csv")
    assert response.mimetype == "text/csv"
    assert response.headers["Content-Disposition"] == 'attachment; filename="t.csv"'
    assert response.get_data(as_text=True) == "a,b\r\n'@x,1\r\n"
