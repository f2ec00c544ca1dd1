"""Tags and notes hold the same text whichever way they arrive: set_tags refuses what submit refuses
(control, NUL and bidi characters, one rule: db.store.tag_problem), set_notes refuses the same characters
but keeps newlines and tabs, and a bare string of tags is refused instead of being read one tag per
character. Real SQLite database, filesystem broker."""

from __future__ import annotations

import pytest

from client.submit import check_submission, submit
from db import store
from rnnlab.spec import Limits, SpecError, parse_spec

SPEC = {"hidden_size": 4, "task": {"name": "adding", "seq_len": 5}, "epochs": 1, "device": "cpu"}
BAD = ["a\x00b", "exe.\u202egnp", "line1\nline2", "\x1b[31mred"]


def _run(url: str) -> int:
    (rid,) = store.create_runs([parse_spec(SPEC)], owner="me", url=url)
    return rid


def test_a_bare_string_of_tags_is_refused_not_split_into_characters(sqlite_url, fs_broker):
    # submit(tags="baseline") stored the tags a, b, e, i, l, n, s
    msg = "tags: got the string 'baseline'; give a list of tags, e.g. ['baseline']"
    with pytest.raises(SpecError) as e:
        submit([parse_spec(SPEC)], tags="baseline", url=sqlite_url, app=fs_broker.app())
    assert e.value.errors == [msg]
    assert check_submission([parse_spec(SPEC)], "baseline", Limits()) == [msg]
    assert store.list_runs(url=sqlite_url)[1] == 0
    rid = _run(sqlite_url)
    with pytest.raises(ValueError, match="tags: got the string 'baseline'"):
        store.set_tags(rid, "baseline", url=sqlite_url)
    with pytest.raises(ValueError, match="tags: got the string"):
        store.create_runs([parse_spec(SPEC)], tags="x", url=sqlite_url)
    assert store.set_tags(rid, ["baseline"], url=sqlite_url) == ["baseline"]
    assert store.get_run(rid, url=sqlite_url)["tags"] == ["baseline"]


@pytest.mark.parametrize("tag", BAD)
def test_set_tags_refuses_what_submit_refuses(sqlite_url, tag):
    rid = _run(sqlite_url)
    store.set_tags(rid, ["kept"], url=sqlite_url)
    (refused,) = check_submission([parse_spec(SPEC)], [tag], Limits())
    with pytest.raises(ValueError) as e:
        store.set_tags(rid, ["ok", tag], url=sqlite_url)
    assert str(e.value) == refused and refused.startswith("tag: got ") and "are not allowed" in refused
    assert store.get_run(rid, url=sqlite_url)["tags"] == ["kept"]   # nothing written
    with pytest.raises(ValueError, match="a tag is 1 to 100 characters"):
        store.set_tags(rid, [7], url=sqlite_url)   # not text (was stored as '7')


def test_set_notes_refuses_control_and_bidi_characters_but_keeps_lines(sqlite_url):
    rid = _run(sqlite_url)
    store.set_notes(rid, "first line\n\tsecond\r\nthird", url=sqlite_url)
    assert store.get_run(rid, url=sqlite_url)["notes"] == "first line\n\tsecond\nthird"
    for bad, code in (("x\x00y", "U+0000"), ("see \u202egnp.exe", "U+202E"), ("\x1b[2Jgone", "U+001B"),
                      ("over\rwrite", "U+000D")):
        with pytest.raises(ValueError) as e:
            store.set_notes(rid, bad, url=sqlite_url)
        assert str(e.value).startswith("notes: got ") and code in str(e.value) and "not allowed" in str(e.value)
    assert store.get_run(rid, url=sqlite_url)["notes"] == "first line\n\tsecond\nthird"   # kept
    store.set_notes(rid, "", url=sqlite_url)
    assert store.get_run(rid, url=sqlite_url)["notes"] is None


def test_notes_in_right_to_left_prose_keep_their_direction_marks(sqlite_url):
    """RTL keyboards type U+200F/U+200E/U+061C between Hebrew or Arabic and Latin words; those notes were
    stored before the text check and must still be (the overrides and isolates stay refused)."""
    rid = _run(sqlite_url)
    for text in ("\u05d4\u05e8\u05e6\u05d4 LSTM\u200f \u05e2\u05dd clip 1.0", "ReLU\u200e \u0645\u0639\u061c tanh"):
        store.set_notes(rid, text, url=sqlite_url)
        assert store.get_run(rid, url=sqlite_url)["notes"] == text
    for bad in ("\u2066hidden\u2069", "x\u202ey"):
        with pytest.raises(ValueError):
            store.set_notes(rid, bad, url=sqlite_url)
