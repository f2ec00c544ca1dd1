"""The Explorer's "Any spec field" filter (typed, or from a shared link's ?path=…&value=…) passes the check
the Runs page's filters pass (dashboard.runs_query.text_problem): a path with a quote (``cell"x``) reached
SQLite's json_extract and the page showed a raw OperationalError with its SQL; a 100,000-character path or
value was kept with no word. AppTest against a real seeded SQLite database."""

from __future__ import annotations

import pytest

from dashboard.runs_query import MAX_TEXT
from tests.dashboard.conftest import figures, no_errors


def _shown(at) -> list[int]:
    (fig,) = figures(at)
    return sorted(int(i) for t in fig["data"] for i in t["customdata"])


def _warnings(at) -> list[str]:
    return [w.value.replace("\\", "") for w in at.warning]   # as read: without plain()'s markdown escapes


@pytest.mark.parametrize(("query", "expect"), [
    ({"path": 'cell"x', "value": "rnn"}, "Any spec field: 'cell\"x' is not a dotted spec path"),
    ({"path": "task[0]", "value": "rnn"}, "is not a dotted spec path"),
    ({"path": "c" * 100_000, "value": "rnn"}, f"Any spec field: at most {MAX_TEXT} characters (it has 100,000)"),
    ({"path": "cell", "value": "r" * 100_000}, f"equals: at most {MAX_TEXT} characters (it has 100,000)"),
    ({"path": "cell", "value": "rnn\x1b[2J"}, "equals: control characters are not allowed"),
])
def test_a_linked_filter_that_fails_the_check_is_a_warning_and_filters_nothing(lab, open_page, query, expect):
    _, ids = lab
    at = open_page("explorer", src="Filter", **query)
    no_errors(at)
    warnings = _warnings(at)
    assert any(expect in w and "this filter is not applied" in w for w in warnings), warnings
    assert all(len(w) < 1000 for w in warnings)                 # never echoed whole
    assert _shown(at) == sorted(ids["cells"] + ids["diverged"])  # every finished run: no filter


def test_a_typed_path_that_is_no_path_is_a_warning_not_an_sql_error(lab, open_page):
    _, ids = lab
    at = open_page("explorer", src="Filter")
    at.text_input(key="path").set_value('cell"x')
    at.text_input(key="value").set_value("lstm")
    at.run()
    no_errors(at)
    assert any("not a dotted spec path" in w for w in _warnings(at)), _warnings(at)
    assert _shown(at) == sorted(ids["cells"] + ids["diverged"])
    at.text_input(key="path").set_value("cell").run()        # a real path filters again, with no warning
    no_errors(at)
    assert not _warnings(at)
    assert _shown(at) == sorted(ids["cells"][2:4])


def test_an_overlong_linked_path_is_never_cut_and_applied(lab, open_page):
    # a box bound to the URL with max_chars would cut the link's value to 200 characters and, from the next
    # rerun on, filter by what is left without a word: the whole value stays refused on every rerun
    _, ids = lab
    at = open_page("explorer", src="Filter", path="cell" + "x" * 300, value="rnn")
    for _ in range(2):
        no_errors(at)
        assert any("(it has 304)" in w for w in _warnings(at)), _warnings(at)
        assert _shown(at) == sorted(ids["cells"] + ids["diverged"])
        at.toggle(key="done").set_value(True).run()
