"""Whole numbers read from the URL (sweep, epoch, layer, clone): characters that str.isdigit accepts
but int() does not ('²'), and numbers too large for a run id, are named and ignored, never a crash."""

from __future__ import annotations

import pytest

from dashboard.page_context import MAX_ID, whole_number


@pytest.mark.parametrize("text", ["²", "٣", "1²", "-1", "1.5", "1e3", " ", "abc", "0", "1000", "0" * 30, "9" * 26])
def test_whole_number_refuses_anything_but_ascii_digits_in_bounds(text):
    value, problem = whole_number(text, "URL field 'x'", 1, 999)
    assert value is None and problem.startswith("URL field 'x': ") and "from 1 to 999" in problem


@pytest.mark.parametrize("text,value", [("1", 1), ("999", 999), (" 42 ", 42), ("007", 7)])
def test_whole_number_reads_a_number_in_bounds(text, value):
    assert whole_number(text, "x", 1, 999) == (value, None)


def test_whole_number_of_nothing_is_nothing():
    assert whole_number(None, "x", 1, 9) == (None, None) and whole_number("", "x", 1, 9) == (None, None)
    assert whole_number(str(MAX_ID), "x", 1, MAX_ID) == (MAX_ID, None)


@pytest.mark.parametrize("page,query,field", [
    ("runs", {"sweep": "²"}, "'sweep'"),
    ("compare", {"runs": "RUNS", "epoch": "²"}, "'epoch'"),
    ("compare", {"runs": "RUNS", "layer": "³"}, "'layer'"),
    ("new", {"clone": "²"}, "'clone'"),
    ("new", {"clone": "9" * 26}, "'clone'"),
])
def test_junk_digits_in_the_url_are_named_not_a_crash(lab, open_page, page, query, field):
    _, ids = lab
    runs = ",".join(map(str, ids["cells"][:2]))
    at = open_page(page, **{k: runs if v == "RUNS" else v for k, v in query.items()})
    assert not at.exception, [e.value for e in at.exception]
    assert not at.error, [e.value for e in at.error]
    assert any(field in w.value and "ignored" in w.value for w in at.warning), [w.value for w in at.warning]
