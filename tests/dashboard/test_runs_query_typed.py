"""The Runs page's typed filter boxes pass the check the URL's filters pass (runs_query.text_problem): a
spec field that is not a dotted path (``cell"x``) reached SQLite's json_extract and showed a raw
OperationalError with its SQL. AppTest against a real seeded SQLite database."""

from __future__ import annotations

import pytest

from dashboard import runs_query
from tests.dashboard.conftest import no_errors


@pytest.mark.parametrize(("name", "value", "expect"), [
    ("field", 'cell"x', "'cell\"x' is not a dotted spec path such as optimizer.lr"),
    ("field", "task[0]", "is not a dotted spec path"),
    ("field", "a" * 201, "at most 200 characters (it has 201)"),
    ("equals", "x\x00y", "control characters are not allowed"),
    ("q", "q" * 1000, "at most 200 characters (it has 1,000)"),
])
def test_text_problem_names_what_is_allowed(name, value, expect):
    assert expect in runs_query.text_problem(name, value)


def test_text_problem_lets_plain_filters_through():
    assert runs_query.text_problem("field", "optimizer.lr") is None
    assert runs_query.text_problem("field", "") is None
    assert runs_query.text_problem("equals", 'any "text" [0]') is None
    assert runs_query.text_problem("q", "x" * runs_query.MAX_TEXT) is None


def test_a_typed_spec_field_that_is_no_path_is_a_warning_not_an_sql_error(lab, open_page):
    at = open_page("runs")
    n = len(at.dataframe[0].value)
    at.text_input(key="flt_path").set_value('cell"x')
    at.text_input(key="flt_value").set_value("rnn")
    at.run()
    no_errors(at)
    warnings = [w.value for w in at.warning]
    assert any("Any spec field" in w and "not a dotted spec path" in w and "not applied" in w for w in warnings), \
        warnings
    assert len(at.dataframe[0].value) == n   # the field filters nothing
    at.text_input(key="flt_path").set_value("cell").run()   # a real path filters again
    no_errors(at)
    assert set(at.dataframe[0].value["cell"].str.split("/").str[0]) == {"rnn"}
