"""What Compare and Run detail leave out of a chart, and say so: a run NaN from its first epoch is on the
loss chart (✕ at the ceiling), a run with no data at the chosen layer or no probes is named in a note,
the heatmap's colour bar names the quantity shown, and a shared URL reopens the same view. AppTest
on a planted SQLite database."""

from __future__ import annotations

import math

import pytest

from db import store
from tests.dashboard.conftest import APP, figures
from tests.dashboard.seed import info_for, records, seed_run, spec


@pytest.fixture
def db(page_db, tmp_path, monkeypatch):
    from rnnlab.queue import get_app

    monkeypatch.setenv("RNNLAB_QUEUE_PREFIX", f"dash-gaps-{tmp_path.name}-")
    get_app.cache_clear()
    yield page_db
    get_app.cache_clear()


def _open(page: str, at=None, **query: str):
    from streamlit.testing.v1 import AppTest

    if at is None:
        at = AppTest.from_file(APP, default_timeout=90)
        at.run()
    at.switch_page(f"app_pages/{page}.py")
    at.query_params.clear()
    for k, v in query.items():
        at.query_params[k] = v
    return at.run()


def _errors(at) -> list:
    return [e.value for e in at.exception] + [e.value for e in at.error]


def _qp(at, key: str):
    v = at.query_params.get(key)
    return v[0] if isinstance(v, list) else v


def _title(f: dict) -> str:
    return f["layout"]["title"]["text"]


def _corner(f: dict) -> list[str]:
    return [a["text"] for a in f["layout"].get("annotations", []) if a.get("name") == "corner"]


# --- 1. a run NaN from its first epoch ------------------------------------------------------------

def test_a_run_nan_from_its_first_epoch_is_marked_on_the_loss_chart(db):
    """A run that diverged at initialisation (one epoch, val_loss NaN, kept in nan_fields) was missing
    from the loss chart without a marker or note: ValueAxis.series(recorded_only) took its leading NaN
    for a NULL never recorded. val_loss and val_metric are recorded at every epoch: NaN is ✕ on top."""
    good = seed_run(db, spec("rnn", seed=0))
    s = spec("rnn", seed=1, activation="relu")
    (bad,) = store.create_runs([s], owner="local", url=db)
    store.claim_run(bad, "w", url=db)
    store.record_info(bad, info_for(s), attempt=1, url=db)
    (rec,) = records(s, diverge_at=0)[:1]
    assert math.isnan(rec.val_loss)
    rec.val_metric = math.nan
    store.record_epoch(bad, rec, attempt=1, url=db)
    store.finish_run(bad, "diverged", "non-finite loss at epoch 0", attempt=1, url=db)
    at = _open("compare", runs=f"{good},{bad}", view="Loss & norms")
    assert not _errors(at)
    figs = {_title(f).split(" (")[0]: f for f in figures(at)}
    for title in ("Validation loss", "Validation mse"):
        f = figs[title]
        marks = [t for t in f["data"]
                 if t.get("name", "").startswith(f"#{bad} ") and t["name"].endswith("not drawable")]
        assert marks, (title, [t.get("name") for t in f["data"]])
        assert list(marks[0]["x"]) == [0] and marks[0]["marker"]["symbol"] == ["x"]
        assert any("✕ NaN" in n for n in _corner(f)), _corner(f)


# --- 2. runs with no data at the chosen layer, or no probes ----------------------------------------

def _infos(at) -> list[str]:
    return [i.value for i in at.info]


def _diff_message(figs: list[dict]) -> str:
    (f,) = [f for f in figs if _title(f).startswith("Difference")]
    return " ".join(a["text"] for a in f["layout"].get("annotations", []))


def test_a_run_without_the_chosen_layer_is_named_under_each_chart(db):
    """A 1-layer run next to a 2-layer one at layer 1 was dropped from the spectra, health, flow,
    profile and heatmap charts without a word, and the difference map said 'both runs need
    per-timestep profiles' though the other run has them."""
    one = seed_run(db, spec("rnn", seed=0, num_layers=1))
    two = seed_run(db, spec("rnn", seed=1, num_layers=2))
    at = _open("compare", runs=f"{one},{two}", layer="1", view="Spectra & health")
    assert not _errors(at)
    notes = [n for n in _infos(at) if n.startswith("Not in the")]
    assert len(notes) == 3, _infos(at)   # spectra, activation health, gradient flow: one note each
    for n in notes:
        assert f"#{one} (no layer 1: it has 1 layer)" in n and f"#{two}" not in n, n
    for view in ("Per-timestep profile", "Heatmaps"):
        at = _open("compare", at=at, runs=f"{one},{two}", layer="1", view=view)
        assert not _errors(at)
        notes = [n for n in _infos(at) if n.startswith("Not in the")]
        assert len(notes) == 1 and f"#{one} (no layer 1: it has 1 layer)" in notes[0], _infos(at)
    msg = _diff_message(figures(at))
    assert "both runs" not in msg and f"#{one} has no per-timestep profile here (no layer 1: it has 1 layer)" in msg
    assert f"#{two}" not in msg


def test_a_run_without_probes_is_named_under_each_chart(db):
    """A run that stored no per-timestep probes (probed=False, no layer statistics or profiles)."""
    good = seed_run(db, spec("rnn", seed=0))
    s = spec("gru", seed=1)
    (bare,) = store.create_runs([s], owner="local", url=db)
    store.claim_run(bare, "w", url=db)
    store.record_info(bare, info_for(s), attempt=1, url=db)
    for r in records(s):
        r.probed = False
        r.layers = []
        store.record_epoch(bare, r, attempt=1, url=db)
    store.finish_run(bare, "succeeded", "done", attempt=1, url=db)
    at = None
    for view, count in (("Spectra & health", 3), ("Per-timestep profile", 1), ("Heatmaps", 1)):
        at = _open("compare", at=at, runs=f"{good},{bare}", view=view)
        assert not _errors(at)
        notes = [n for n in _infos(at) if n.startswith("Not in the")]
        assert len(notes) == count and all(f"#{bare} (no probe recorded)" in n for n in notes), (view, _infos(at))
        assert not any(f"#{good}" in n for n in notes)
    assert f"#{bare} has no per-timestep profile here (no probe recorded)" in _diff_message(figures(at))


# --- 3. the heatmap colour bar names the quantity shown ------------------------------------------

def test_the_heatmap_colour_bar_names_the_quantity_shown(db):
    a = seed_run(db, spec("lstm", seed=0))
    b = seed_run(db, spec("lstm", seed=1))
    at = _open("compare", runs=f"{a},{b}", view="Heatmaps")
    heat = figures(at)[0]
    assert heat["layout"]["coloraxis"]["colorbar"]["title"]["text"].startswith("log10‖∂L/∂h_t‖<br>")
    at.selectbox(key="cmp_kind").set_value("c").run()
    assert not _errors(at)
    heat = figures(at)[0]
    assert "c_t" in _title(heat)
    assert heat["layout"]["coloraxis"]["colorbar"]["title"]["text"].startswith("log10‖∂L/∂c_t‖<br>")
    assert "log10‖∂L/∂c_t‖=" in heat["data"][0]["hovertemplate"]
    at.selectbox(key="cmp_kind").set_value("h").run()
    at.radio(key="cmp_profile_of").set_value("last").run()
    heat = figures(at)[0]
    assert heat["layout"]["coloraxis"]["colorbar"]["title"]["text"].startswith("log10‖∂ℓ_T/∂h_t‖<br>")


# --- 4. a shared URL reopens the same view ---------------------------------------------------------

def _url(at) -> dict[str, str]:
    return {k: _qp(at, k) for k in at.query_params}


def _warnings(at) -> str:
    return " ".join(w.value for w in at.warning)


def test_compare_url_keeps_the_gradient_and_the_difference_maps_runs(db):
    """Compare with c_t and '#b minus #a' wrote neither to the URL: the link reopened as h_t and
    '#a minus #b', the difference map's colours swapped."""
    a = seed_run(db, spec("lstm", seed=0, num_layers=2))
    b = seed_run(db, spec("lstm", seed=1, num_layers=2))
    at = _open("compare", runs=f"{a},{b}", view="Heatmaps")
    at.selectbox(key="cmp_kind").set_value("c").run()
    at.selectbox(key="cmp_da").set_value(b).run()
    at.selectbox(key="cmp_db").set_value(a).run()
    assert not _errors(at)
    url = _url(at)
    assert url["kind"] == "c" and url["da"] == str(b) and url["db"] == str(a), url
    want = [_title(f) for f in figures(at)]
    assert f"#{b} minus #{a}" in want[1] and "c_t" in want[0]
    again = _open("compare", **url)            # a colleague opens the link in a new session
    assert not _errors(again) and not again.warning
    assert [_title(f) for f in figures(again)] == want
    assert again.selectbox(key="cmp_kind").value == "c"


def test_bad_compare_url_fields_fall_back_with_a_message(db):
    a = seed_run(db, spec("rnn", seed=0))
    b = seed_run(db, spec("rnn", seed=1))
    at = _open("compare", runs=f"{a},{b}", view="Heatmaps", kind="c", loss="most", da="abc", db="99")
    assert not _errors(at)
    said = _warnings(at)
    for field in ("'kind'", "'loss'", "'da'", "'db'"):
        assert f"URL field {field}" in said, said
    assert "needs an LSTM run" in said
    assert at.selectbox(key="cmp_kind").value == "h" and at.radio(key="cmp_profile_of").value == "every"
    assert (at.selectbox(key="cmp_da").value, at.selectbox(key="cmp_db").value) == (a, b)
    url = _url(at)
    assert (url["kind"], url["loss"], url["da"], url["db"]) == ("h", "every", str(a), str(b))


def test_run_detail_url_keeps_the_epoch_layer_and_loss(db):
    """Run detail at epoch 2, layer 1 reopened at the last epoch and layer 0: the link held neither."""
    s = spec("lstm", seed=0, num_layers=2)
    rid = seed_run(db, s)
    at = _open("run_detail", run=str(rid), view="Profile")
    at.select_slider(key="det_epoch").set_value(2).run()
    at.selectbox(key="det_layer").set_value(1).run()
    at.radio(key="det_profile_of").set_value("last").run()
    assert not _errors(at)
    url = _url(at)
    assert (url["epoch"], url["layer"], url["kind"], url["loss"]) == ("2", "1", "h", "last"), url
    want = figures(at)[0]
    assert "layer 1" in _title(want) and want["data"][0]["name"].endswith("(epoch 2)")
    again = _open("run_detail", **url)
    assert not _errors(again) and not again.warning
    got = figures(again)[0]
    assert _title(got) == _title(want) and got["data"][0]["name"] == want["data"][0]["name"]
    assert again.radio(key="det_profile_of").value == "last"
    at.selectbox(key="det_kind").set_value("c").run()
    again = _open("run_detail", **_url(at))
    assert again.selectbox(key="det_kind").value == "c" and "c_t" in _title(figures(again)[0])


def test_bad_run_detail_url_fields_fall_back_with_a_message(db):
    rid = seed_run(db, spec("rnn", seed=0))
    last = records(spec("rnn", seed=0))[-1].epoch
    at = _open("run_detail", run=str(rid), view="Profile", epoch="x2", layer="-1", kind="q", loss="most")
    assert not _errors(at)
    said = _warnings(at)
    for field in ("'epoch'", "'layer'", "'kind'", "'loss'"):
        assert f"URL field {field}" in said, said
    assert at.select_slider(key="det_epoch").value == last and at.selectbox(key="det_layer").value == 0
    at = _open("run_detail", run=str(rid), view="Profile", epoch="3", layer="7")   # past its one layer
    assert not _errors(at) and at.select_slider(key="det_epoch").value == 3
    assert at.selectbox(key="det_layer").value == 0 and _qp(at, "layer") == "0"
