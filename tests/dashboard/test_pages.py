"""Every dashboard page, run by Streamlit's AppTest against a real seeded SQLite database."""

from __future__ import annotations

from dashboard.actions import tags_key
from db import store
from tests.dashboard.conftest import figures, no_errors


def _keys(widgets) -> set[str]:
    return {w.key for w in widgets}


# --- Runs -----------------------------------------------------------------------------------

def test_runs_page_lists_every_run_with_progress_and_status_counts(lab, open_page):
    _, ids = lab
    at = open_page("runs")
    no_errors(at)
    df = at.dataframe[0].value
    assert len(df) == 9 and {"progress", "epoch", "val loss", "baseline", "diagnosis", "worker", "duration", "owner",
                             "tags"} <= set(df.columns)
    running = df[df["id"] == ids["running"][0]].iloc[0]
    assert running["epoch"] == "3/8" and abs(running["progress"] - 3 / 8) < 1e-9
    assert "succeeded: 6" in at.caption[0].value and "total 9" in at.caption[0].value
    workers = at.dataframe[1].value
    assert workers["name"].tolist() == ["seed-worker@lab"] and bool(workers["alive"].iloc[0])


def test_runs_filters_run_on_the_server(lab, open_page):
    _, ids = lab
    at = open_page("runs")
    at.multiselect(key="flt_status").set_value(["succeeded"]).run()
    assert sorted(at.dataframe[0].value["id"]) == sorted(ids["cells"])
    at.multiselect(key="flt_cell").set_value(["lstm"]).run()
    assert len(at.dataframe[0].value) == 2
    at.multiselect(key="flt_status").set_value([]).run()
    at.multiselect(key="flt_cell").set_value([]).run()
    at.text_input(key="flt_path").set_value("activation").run()
    at.text_input(key="flt_value").set_value("relu").run()
    assert at.dataframe[0].value["id"].tolist() == ids["diverged"]
    at.text_input(key="flt_path").set_value("").run()
    at.multiselect(key="flt_tags").set_value(["seed1"]).run()
    assert len(at.dataframe[0].value) == 3
    no_errors(at)


def test_runs_pagination(lab, open_page):
    url, _ = lab
    from tests.dashboard.seed import seed_run, spec

    for seed in range(20, 50):
        seed_run(url, spec("rnn", seed=seed, epochs=1), status="queued")
    at = open_page("runs")
    at.selectbox(key="page_size").set_value(25).run()
    assert len(at.dataframe[0].value) == 25 and "page 1 of 2" in at.caption[1].value
    at.number_input(key="page").set_value(2).run()
    assert len(at.dataframe[0].value) == 39 - 25
    no_errors(at)


# --- Run detail and actions -----------------------------------------------------------------

def test_run_detail_shows_charts_spec_and_attempts(lab, open_page):
    _, ids = lab
    rid = str(ids["cells"][0])
    at = open_page("run_detail", run=rid)
    no_errors(at)
    assert "rnn/tanh adding T=50" in at.title[0].value
    charts = len(at.get("plotly_chart"))
    for view in ("Spectra & health", "Profile", "Heatmap", "Histograms"):  # lazy tabs: one per URL
        page = open_page("run_detail", run=rid, view=view)
        no_errors(page)
        charts += len(page.get("plotly_chart"))
    assert charts >= 10
    assert any("cell: rnn" in c.value for c in open_page("run_detail", run=rid, view="Spec").code)
    attempts = [d.value for d in open_page("run_detail", run=rid, view="Attempts").dataframe
                if "attempt" in d.value.columns]
    assert attempts and attempts[0]["outcome"].tolist() == ["succeeded"]


def test_run_detail_of_a_missing_run_says_so(lab, open_page):
    at = open_page("run_detail", run="999")
    no_errors(at)
    assert "does not exist" in at.warning[0].value


def test_cancel_tags_notes_and_delete_from_the_detail_page(lab, open_page):
    url, ids = lab
    rid = ids["running"][0]
    at = open_page("run_detail", run=str(rid))
    at.button(key="detail_act_cancel").click().run()
    assert store.get_run(rid, url=url)["cancel_requested"] is True
    at.text_input(key=tags_key("detail_act", [rid])).set_value("keep, <script>x</script>").run()
    at.button(key="detail_act_tag_set").click().run()
    assert store.get_run(rid, url=url)["tags"] == ["<script>x</script>", "keep"]
    at.text_area(key=f"detail_notes_{rid}").set_value("**not bold** <img src=x onerror=alert(1)>").run()
    at.button(key="detail_save_notes").click().run()
    assert store.get_run(rid, url=url)["notes"].startswith("**not bold**")
    # user text is shown as plain text, never as Markdown/HTML
    assert any(t.value == "**not bold** <img src=x onerror=alert(1)>" for t in at.text)
    no_errors(at)

    queued = ids["queued"][0]
    at = open_page("run_detail", run=str(queued))
    at.button(key="detail_act_del").click().run()
    assert store.get_run(queued, url=url) is not None  # nothing happens before the confirmation
    at.button(key="detail_act_del_yes").click().run()
    assert store.get_run(queued, url=url) is None


# --- New experiment -------------------------------------------------------------------------

def test_form_hides_fields_that_do_not_apply(lab, open_page):
    at = open_page("new")
    no_errors(at)
    assert "f.activation" in _keys(at.selectbox) and "f.init.forget_bias_on" not in _keys(at.checkbox)
    at.selectbox(key="f.cell").set_value("lstm").run()
    assert "f.activation" not in _keys(at.selectbox) and "f.init.forget_bias_on" in _keys(at.checkbox)
    assert "f.clip.max_norm" not in _keys(at.number_input)
    at.selectbox(key="f.clip.mode").set_value("norm").run()
    assert "f.clip.max_norm" in _keys(at.number_input) and "f.clip.clip_value" not in _keys(at.number_input)
    at.selectbox(key="f.task.name").set_value("copy").run()
    assert {"f.task.copy.n_symbols", "f.task.copy.n_copy"} <= _keys(at.number_input)
    assert "f.task.adding.variant" not in _keys(at.selectbox)
    at.selectbox(key="f.optimizer.name").set_value("sgd").run()
    assert "f.optimizer.momentum" in _keys(at.number_input)
    no_errors(at)


def test_form_errors_are_inline_and_block_submission(lab, open_page, monkeypatch):
    from rnnlab.settings import get_settings

    monkeypatch.setenv("RNNLAB_MAX_HIDDEN_SIZE", "64")
    get_settings.cache_clear()
    at = open_page("new")
    errors = [e.value.replace("\\", "") for e in at.error]  # Markdown escapes of user-visible text
    assert any("hidden_size" in e and "64" in e for e in errors), errors
    assert at.button(key="submit").disabled
    at.number_input(key="f.hidden_size").set_value(32).run()
    assert not at.error and not at.button(key="submit").disabled


def test_preset_loads_a_sweep_and_counts_runs_and_duplicates(lab, open_page):
    at = open_page("new")
    at.selectbox(key="preset").set_value("Cells on the adding problem").run()
    at.button(key="load_preset").click().run()
    no_errors(at)
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Runs"] == "9" and metrics["Duplicates"].startswith("0 in sweep")
    assert "f.cell" in _keys(at.selectbox) and at.text_input(key="sw.vals.cell").value == "rnn, lstm, gru"


def test_a_preset_with_explicit_points_plans_every_point(lab, open_page):
    """The temporal-order study's LSTM arm sets its forget-gate bias alone (sweep points): loaded
    from the preset, the form plans all 9 runs, and a point edited into an invalid one is named."""
    at = open_page("new")
    at.selectbox(key="preset").set_value("Temporal order: the gated cells against the tanh RNN").run()
    at.button(key="load_preset").click().run()
    no_errors(at)
    assert {m.label: m.value for m in at.metric}["Runs"] == "9"
    assert "init.forget_bias: 3.0" in at.text_area(key="sw.points").value
    at.text_area(key="sw.points").set_value("- {cell: gru, init.forget_bias: 3}").run()
    errors = [e.value.replace("\\", "") for e in at.error]
    assert any(e.startswith("points[0] = ") and "forget_bias applies only to cell 'lstm'" in e for e in errors), errors
    assert at.button(key="submit").disabled


def test_clone_shows_the_duplicate_in_the_db_and_the_spec_diff(lab, open_page):
    _, ids = lab
    rid = ids["cells"][0]
    at = open_page("new", clone=str(rid))
    no_errors(at)
    assert {m.label: m.value for m in at.metric}["Duplicates"] == "0 in sweep · 1 in DB"
    at.number_input(key="f.hidden_size").set_value(48).run()
    diffs = [d.value for d in at.dataframe if "field" in d.value.columns]
    assert diffs and diffs[-1]["field"].tolist() == ["hidden_size"]


def test_submit_creates_queued_runs(lab, open_page):
    url, _ = lab
    at = open_page("new")
    at.number_input(key="f.hidden_size").set_value(8).run()
    at.text_input(key="submit_tags").set_value("from-form").run()
    at.button(key="submit").click().run()
    no_errors(at)
    assert at.success and "Submitted 1 run" in at.success[0].value
    new_id = at.session_state["last_submitted"][0]
    run = store.get_run(new_id, url=url)
    assert run["status"] == "queued" and run["hidden_size"] == 8 and run["tags"] == ["from-form"]


# --- Compare, Strategies, Query ----------------------------------------------------------------

def test_compare_draws_every_chart_and_keeps_the_selection_in_the_url(lab, open_page):
    _, ids = lab
    sel = ",".join(map(str, ids["cells"][::2]))
    at = open_page("compare", runs=sel)
    no_errors(at)
    assert at.query_params["runs"] in ([sel], sel)
    assert "epoch" in at.query_params and "layer" in at.query_params
    counts = {"default": len(at.get("plotly_chart"))}
    for view in ("Spectra & health", "Per-timestep profile", "Heatmaps", "Histograms", "Spec diff"):
        page = open_page("compare", runs=sel, view=view)  # lazy tabs: the open one is in the URL
        no_errors(page)
        counts[view] = len(page.get("plotly_chart"))
        if view == "Per-timestep profile":  # one tanh RNN in the selection, adding, 1 layer: bound drawn
            assert any("(γ·σ_max)^k" in c.value for c in page.caption), [c.value for c in page.caption]
    # curves (loss, metric, global norm, per-parameter), spectra + health + flow, profile,
    # heatmaps + difference, histograms
    assert counts == {"default": 4, "Spectra & health": 3, "Per-timestep profile": 1, "Heatmaps": 2,
                      "Histograms": 1, "Spec diff": 0}


def test_compare_reports_missing_runs_and_caps_at_twelve(lab, open_page):
    at = open_page("compare", runs=",".join(str(i) for i in range(1, 15)))
    no_errors(at)
    warnings = " ".join(w.value for w in at.warning)
    assert "first 12" in warnings and "No such run(s): 10, 11, 12" in warnings


def test_strategies_groups_by_factor_with_a_verdict(lab, open_page):
    _, ids = lab
    at = open_page("strategies", runs=",".join(map(str, ids["cells"])), factor="cell")
    no_errors(at)
    summary = at.dataframe[0].value
    assert sorted(summary["group"]) == ["gru", "lstm", "rnn"] and set(summary["seeds"]) == {2}
    rnn = summary.set_index("group").loc["rnn"]
    assert rnn["solve rate"] == 0 and "no better than the trivial baseline" in rnn["verdict"]
    assert summary.set_index("group").loc["lstm", "solve rate"] == 1.0
    assert any("Best cell here" in m.value and "lstm" in m.value for m in at.markdown)
    assert len(at.get("plotly_chart")) == 3


def test_query_console_runs_examples_and_refuses_writes(lab, open_page):
    url, _ = lab
    at = open_page("query")
    no_errors(at)
    at.button(key="ex_0").click().run()
    at.button(key="sql_run").click().run()
    no_errors(at)
    assert "status" in at.dataframe[0].value.columns
    at.text_area(key="sql_text").set_value("DELETE FROM runs").run()
    at.button(key="sql_run").click().run()
    assert "refused" in at.error[0].value
    assert store.list_runs(url=url)[1] == 9


def test_a_viewer_can_look_but_not_act(lab, open_page, monkeypatch):
    from dashboard import auth

    url, ids = lab
    monkeypatch.setattr(auth, "current_user", lambda: auth.User(name="vera", role="viewer"))
    at = open_page("new")
    assert at.button(key="submit").disabled and any("cannot submit" in i.value for i in at.info)
    rid = ids["running"][0]
    at = open_page("run_detail", run=str(rid))
    at.button(key="detail_act_cancel").click().run()
    assert store.get_run(rid, url=url)["cancel_requested"] is False
    assert any("Not allowed" in w.value for w in at.warning)
    assert at.button(key="detail_save_notes").disabled
    no_errors(open_page("query"))


def test_a_broken_database_gives_messages_not_tracebacks(tmp_path, monkeypatch, open_page):
    import streamlit as st

    from rnnlab.settings import get_settings

    junk = tmp_path / "not-a-db.db"
    junk.write_text("this is not a database" * 100)
    monkeypatch.setenv("RNNLAB_DATABASE_URL", f"sqlite:///{junk}")
    monkeypatch.setenv("RNNLAB_HOME", str(tmp_path))
    get_settings.cache_clear()
    st.cache_data.clear()
    st.cache_resource.clear()
    for page, query in [("runs", {}), ("compare", {"runs": "1,2"}), ("run_detail", {"run": "1"}), ("strategies", {})]:
        at = open_page(page, **query)
        assert not at.exception, (page, [e.value for e in at.exception])
        assert any("hit an error" in e.value for e in at.error), page
    get_settings.cache_clear()


def test_user_text_in_run_names_is_escaped_everywhere(lab, open_page):
    url, ids = lab
    from tests.dashboard.seed import seed_run, spec

    evil = '<img src=x onerror=alert(1)> **bold** [x](javascript:alert(1))'
    rid = seed_run(url, spec("lstm", seed=30, name=evil))
    at = open_page("compare", runs=f"{ids['cells'][0]},{rid}")
    no_errors(at)
    specs = " ".join(c.proto.spec for c in at.get("plotly_chart"))
    assert "&lt;img src=x onerror=alert(1)&gt;" in specs and "<img" not in specs
    at = open_page("run_detail", run=str(rid))
    no_errors(at)
    assert r"\<img src=x onerror=alert\(1\)\> \*\*bold\*\*" in at.title[0].value


# --- Charts on Compare and Run detail: toggles, the profile switch, labels ----------------------------

def _copy_spec(seed: int):
    from rnnlab.spec import parse_spec

    return parse_spec({"cell": "rnn", "task": {"name": "copy", "seq_len": 50}, "seed": seed, "epochs": 5,
                       "hidden_size": 32, "steps_per_epoch": 20})


def _seed_copy(url: str, seed: int, last=None) -> int:
    """A finished copy-task run (an every-step task) recorded through the store like seed.seed_run; with
    ``last``, every epoch also stores it as the last-step-loss profile (LayerStat.grad_h_last, kind 'h_last')."""
    from dataclasses import replace

    from tests.dashboard.seed import info_for, records, spec

    s = _copy_spec(seed)
    (rid,) = store.create_runs([s], owner="local", url=url)
    store.claim_run(rid, "seed-worker@lab", url=url)
    store.record_info(rid, replace(info_for(spec("rnn", seed=seed)), task="copy", variant="a16"), attempt=1, url=url)
    for rec in records(s):
        if last is not None:
            rec.layers[0].grad_h_last = [float(v) for v in last]
        store.record_epoch(rid, rec, attempt=1, url=url)
    store.finish_run(rid, "succeeded", "finished 5 epochs", attempt=1, url=url)
    return rid


def _run_traces(fig: dict, rid: int) -> list[dict]:
    return [t for t in fig["data"] if t.get("legendgroup") == str(rid) and t.get("mode") != "markers"
            and not str(t.get("name", "")).startswith("bound")]


def test_profile_switch_shows_the_loss_at_the_last_step_and_says_which_runs_lack_it(lab, open_page):
    import numpy as np

    from tests.dashboard.seed import records, spec

    url, ids = lab
    last = np.logspace(-6, -1, 50)  # ‖∂ℓ_T/∂h_t‖, t = 1..T: unlike any stored 'h' profile
    new, old = _seed_copy(url, 40, last), _seed_copy(url, 41)
    adding = ids["cells"][0]
    adding_h = np.asarray(records(spec("rnn", seed=0))[-1].layers[0].grad_h)
    copy_h = np.asarray(records(_copy_spec(40))[-1].layers[0].grad_h)
    sel = f"{new},{old},{adding}"

    at = open_page("compare", runs=sel, view="Per-timestep profile", loss="last")
    no_errors(at)
    (fig,) = figures(at)
    (tr,) = _run_traces(fig, new)
    np.testing.assert_allclose(tr["y"], last, rtol=1e-4)
    (tr,) = _run_traces(fig, adding)  # a last-step task: its 'h' profile already is the last-step one
    np.testing.assert_allclose(tr["y"], adding_h, rtol=1e-4)
    assert not _run_traces(fig, old)
    notes = " ".join(i.value for i in at.info)
    assert f"#{old}" in notes and f"#{new}" not in notes and "loss at every step" in notes
    assert any(str(t.get("name", "")).startswith("bound") and t["legendgroup"] == str(new) for t in fig["data"])
    assert "‖∂ℓ_T/∂h_t‖" in json_title(fig)

    at.radio(key="cmp_profile_of").set_value("every").run()
    no_errors(at)
    (fig,) = figures(at)
    (tr,) = _run_traces(fig, new)
    np.testing.assert_allclose(tr["y"], copy_h, rtol=1e-4)
    assert _run_traces(fig, old) and not at.info
    assert at.query_params["loss"] in (["every"], "every")

    at = open_page("run_detail", run=str(new), view="Profile")
    at.radio(key="det_profile_of").set_value("last").run()
    no_errors(at)
    (tr,) = _run_traces(figures(at)[0], new)
    np.testing.assert_allclose(tr["y"], last, rtol=1e-4)


def json_title(fig: dict) -> str:
    t = fig["layout"]["title"]
    return t if isinstance(t, str) else t["text"]


def test_spectra_switch_between_log_and_linear_axes(lab, open_page):
    _, ids = lab
    at = open_page("compare", runs=",".join(map(str, ids["cells"][:2])), view="Spectra & health")
    no_errors(at)
    spectra = figures(at)[0]
    assert [spectra["layout"][f"yaxis{i}"].get("type") for i in ("", "2")] == ["log", "log"]
    at.toggle(key="cmp_spec_log").set_value(False).run()
    spectra = figures(at)[0]
    assert [spectra["layout"][f"yaxis{i}"].get("type") for i in ("", "2")] == ["linear", "linear"]
    at = open_page("run_detail", run=str(ids["cells"][0]))
    at.toggle(key="det_log").set_value(False).run()
    assert figures(at)[0]["layout"]["yaxis"]["type"] == "linear"


def test_sweep_labels_reach_the_charts_escaped_once(lab, open_page):
    url, ids = lab
    from tests.dashboard.seed import seed_run, spec

    name = 'clip-sweep · clip={"mode":"norm","max_norm":1.0}'
    rid = seed_run(url, spec("rnn", seed=31, name=name))
    at = open_page("compare", runs=f"{ids['cells'][0]},{rid}")
    no_errors(at)
    names = [t.get("name", "") for f in figures(at) for t in f["data"]]
    assert any(name in n for n in names), names
    assert not any("&quot;" in n or "&#" in n for n in names)
