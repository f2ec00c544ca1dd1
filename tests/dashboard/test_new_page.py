"""New experiment, as a user drives it (AppTest against a seeded SQLite database): what is typed is
what is checked and submitted, duplicates that will be skipped are not estimated, and a bad varied
value's error is shown under its sweep editor, naming the value."""

from __future__ import annotations

from streamlit.testing.v1.element_tree import Block

from dashboard import estimate
from db import store
from rnnlab.spec import parse_spec
from tests.dashboard.conftest import no_errors


def _leaves(at) -> list:
    """Every element of the page (not the containers), in the order they are drawn."""
    return [n for n in at.main if not isinstance(n, Block)]


def _after(at, key: str):
    """The element drawn right after the widget with this key."""
    leaves = _leaves(at)
    i = next(i for i, n in enumerate(leaves) if getattr(n, "key", None) == key)
    return leaves[i + 1]


def _text(el) -> str:
    return str(getattr(el, "value", "")).replace("\\", "")   # Markdown escapes of user-visible text


def test_an_out_of_range_number_is_kept_as_typed_and_refused_under_its_field_with_the_range(lab, open_page):
    url, _ = lab
    at = open_page("new")
    # no bounds on any number input: the browser would turn a value outside them red and keep sending the old one
    assert all(n.min is None and n.max is None for n in at.number_input), [(n.key, n.min, n.max)
                                                                          for n in at.number_input]
    at.number_input(key="f.hidden_size").set_value(0).run()
    assert at.number_input(key="f.hidden_size").value == 0   # what is shown is what is checked
    below = _after(at, "f.hidden_size")
    assert below.type == "error" and "hidden_size: got 0" in _text(below) and "greater than or equal to 1" in _text(
        below), _text(below)
    assert at.button(key="submit").disabled

    at.number_input(key="f.hidden_size").set_value(8).run()
    at.number_input(key="f.optimizer.lr").set_value(50.0).run()
    assert at.number_input(key="f.optimizer.lr").value == 50.0
    below = _after(at, "f.optimizer.lr")
    assert "optimizer.lr: got 50.0" in _text(below) and "less than or equal to 10" in _text(below), _text(below)
    assert at.button(key="submit").disabled

    at.number_input(key="f.optimizer.lr").set_value(0.02).run()
    no_errors(at)
    at.button(key="submit").click().run()
    run = store.get_run(at.session_state["last_submitted"][0], url=url)
    assert run["hidden_size"] == 8 and run["spec"]["optimizer"]["lr"] == 0.02


def test_the_help_of_a_number_names_the_field_and_its_allowed_range(lab, open_page):
    at = open_page("new")
    assert "Allowed hidden_size: ≥ 1 and ≤ 4,096 (the operator's limit)" in at.number_input(key="f.hidden_size").help
    assert "Allowed optimizer.lr: > 0 and ≤ 10" in at.number_input(key="f.optimizer.lr").help


def _metrics(at) -> dict[str, str]:
    return {m.label: m.value for m in at.metric}


def test_the_estimate_leaves_out_the_duplicates_that_are_skipped(lab, open_page):
    single = open_page("new")
    single.number_input(key="f.hidden_size").set_value(64).run()
    one_run = _metrics(single)["Time estimate"]

    at = open_page("new")
    at.session_state["mode"] = "Sweep"
    at.run()
    at.multiselect(key="sw.fields").set_value(["hidden_size"]).run()
    at.text_input(key="sw.vals.hidden_size").set_value("64, 64").run()
    at.text_input(key="sw.seeds").set_value("0").run()
    no_errors(at)
    m = _metrics(at)
    assert m["Duplicates"].startswith("1 in sweep") and m["Runs"] == "1"
    assert m["Time estimate"] == one_run            # the skipped duplicate is not work
    assert at.button(key="submit").label == "Submit 1 run(s)"
    at.checkbox(key="skip_dups").uncheck().run()
    m = _metrics(at)
    assert m["Runs"] == "2" and m["Time estimate"] != one_run
    assert at.button(key="submit").label == "Submit 2 run(s)"


def test_the_estimate_is_the_model_of_the_runs_submitted(lab, open_page):
    at = open_page("new")
    spec = parse_spec({})
    from dashboard import reads  # the page's calibration, read the same way

    scale, _ = estimate.calibration(reads.timing_samples())
    assert _metrics(at)["Time estimate"] == f"≈ {estimate.fmt(estimate.seconds(spec, scale))}"


def test_a_bad_varied_value_is_named_and_shown_under_its_sweep_editor(lab, open_page):
    at = open_page("new")
    at.session_state["mode"] = "Sweep"
    at.run()
    at.multiselect(key="sw.fields").set_value(["hidden_size", "cell"]).run()
    at.text_input(key="sw.vals.hidden_size").set_value("32, 64, 0").run()
    at.text_input(key="sw.vals.cell").set_value("rnn").run()
    below = _after(at, "sw.vals.hidden_size")
    assert below.type == "error", below
    assert _text(below) == "vary.hidden_size[2] = 0: hidden_size: got 0; input should be greater than or equal to 1"
    # nothing under the base spec's own field, whose value (128) is fine
    assert getattr(_after(at, "f.hidden_size"), "type", None) != "error"
    assert at.button(key="submit").disabled
    # an unreadable list is shown there too
    at.text_input(key="sw.vals.cell").set_value("[rnn").run()
    assert "vary.cell: could not read" in _text(_after(at, "sw.vals.cell"))


def test_the_tags_field_is_bounded(lab, open_page):
    at = open_page("new")
    no_errors(at)
    assert at.text_input(key="submit_tags").proto.max_chars == store.MAX_TAGS_TEXT


def test_the_estimate_says_when_no_live_worker_serves_the_runs_queue(lab, open_page):
    """"No worker is alive" only looked at whether any worker was alive: a CPU worker alive and a run on
    the gpu queue gave no warning, though the run would wait. Now it names the queue no one serves."""
    from db import liveness

    url, _ = lab
    at = open_page("new")
    at.selectbox(key="f.device").set_value("cuda").run()
    no_errors(at)
    said = " ".join(c.value for c in at.caption)
    assert "No live worker serves the gpu queue" in said and "rnnlab worker --queues gpu --gpu 0" in said, said
    liveness.heartbeat("g@box", host="box", pid=2, queues="gpu", device="gpu", start=True, url=url)
    import streamlit as st
    st.cache_data.clear()
    at = open_page("new")
    at.selectbox(key="f.device").set_value("cuda").run()
    assert "No live worker serves" not in " ".join(c.value for c in at.caption)
