"""One recorder (worker.recorder) for both ways a run is trained: the same spec ends with the same final
status and message whether a worker ran it (worker.runner.execute, what the Celery task calls) or
`rnnlab train` did (worker.foreground.train_foreground), for an engine error, a divergence and an
unexpected exception. Old code: the two kept their own callbacks, and `rnnlab train` recorded an
unexpected exception without where it was raised."""

import io
import os
import re
import signal
import threading
import time

import pytest
from rich.console import Console

from db import store
from rnnlab.settings import get_settings
from rnnlab.spec import parse_spec
from worker import runner
from worker.foreground import EXIT, train_foreground

BASE = {"hidden_size": 8, "task": {"name": "adding", "seq_len": 12}, "batch_size": 8,
        "probe": {"batch_size": 4}, "device": "cpu", "epochs": 1, "steps_per_epoch": 2}


@pytest.fixture
def settings_db(sqlite_url, monkeypatch):
    """`rnnlab train` reads its database from the settings: point them at the test's database."""
    monkeypatch.setenv("RNNLAB_DATABASE_URL", sqlite_url)
    get_settings.cache_clear()
    yield sqlite_url
    monkeypatch.undo()
    get_settings.cache_clear()


def both_paths(url: str, spec) -> tuple[dict, dict, int]:
    """The run as a worker ends it and as `rnnlab train` ends it (plus train's exit code)."""
    (run_id,) = store.create_runs([spec], url=url)
    status = runner.execute(run_id, "w@host", heartbeat_s=5, lost_after_s=60, url=url)
    worker_run = store.get_run(run_id, url=url)
    assert status == worker_run["status"]
    out = io.StringIO()
    code = train_foreground(spec, json_out=None, record=True, owner="tester", tags=[],
                            console=Console(file=out, width=200))
    cli_id = int(re.match(r"run (\d+): ", out.getvalue()).group(1))   # "run 2: rnn/tanh adding ..."
    assert cli_id != run_id
    cli_run = store.get_run(cli_id, url=url)
    assert cli_run["message"] in out.getvalue()   # what the user sees is what was recorded
    return worker_run, cli_run, code


def cases(tmp_path) -> list[tuple[str, dict, str, str]]:
    """(name, spec, expected status, a phrase of the expected message)."""
    undecodable = tmp_path / "series.csv"
    undecodable.write_bytes(b"\xff\xfe\x00 1,2,3\n" * 50)      # not UTF-8: the engine's csv reader raises
    return [
        ("engine error", {**BASE, "task": {"name": "charlm", "path": str(tmp_path / "missing.txt")}},
         "failed", "task.path: file not found"),
        ("divergence", {**BASE, "activation": "relu", "init": {"recurrent": "identity", "scale": 3.0},
                        "optimizer": {"name": "sgd", "lr": 1.0}, "epochs": 3, "steps_per_epoch": 3},
         "diverged", "non-finite"),
        ("unexpected exception", {**BASE, "task": {"name": "forecast", "series": "csv", "path": str(undecodable),
                                                   "seq_len": 5}},
         "failed", "UnicodeDecodeError: 'utf-8' codec can't decode byte 0xff"),
    ]


def test_worker_and_rnnlab_train_end_a_run_alike(settings_db, tmp_path):
    for name, doc, status, phrase in cases(tmp_path):
        worker_run, cli_run, code = both_paths(settings_db, parse_spec(doc))
        assert worker_run["status"] == status and phrase in worker_run["message"], (name, worker_run["message"])
        assert (cli_run["status"], cli_run["message"]) == (worker_run["status"], worker_run["message"]), name
        assert code == EXIT[status], name
        if name == "unexpected exception":   # says where it was raised, on both paths
            assert " (at " in cli_run["message"], cli_run["message"]
        for run in (worker_run, cli_run):
            store.delete_run(run["id"], url=settings_db)


def test_rnnlab_train_leaves_a_run_taken_over_by_a_worker(settings_db):
    """`rnnlab train` stalled past the lost-after time (here: reaped at once) and a worker claimed its run:
    it stops and leaves the run to that worker, as a worker does, instead of failing it or crashing.
    Old code: LostOwnership escaped train_foreground."""
    import threading
    import time

    url = settings_db
    spec = parse_spec({**BASE, "epochs": 400, "steps_per_epoch": 20})
    taken = {}

    def take_over():
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            run = store.get_run(1, url=url)   # train's run: the first in the database
            if run is not None and run["epochs_done"] >= 1:
                time.sleep(0.05)
                assert store.reap_lost(0.0, url=url).requeued == [{"id": 1, "queue": "cpu"}]
                taken.update(store.claim_run(1, "w2@host", url=url))
                return
            time.sleep(0.02)
        store.request_cancel(1, url=url)   # never got going: stop it rather than train 400 epochs

    thread = threading.Thread(target=take_over)
    thread.start()
    out = io.StringIO()
    code = train_foreground(spec, json_out=None, record=True, owner="tester", tags=[],
                            console=Console(file=out, width=200))
    thread.join()
    assert taken["attempt"] == 2, taken
    assert code == EXIT["failed"] and "left to the worker that took it over" in out.getvalue(), out.getvalue()
    run = store.get_run(1, url=url)
    assert (run["status"], run["worker"], run["attempts"]) == ("running", "w2@host", 2)   # the new owner's


def test_training_here_ends_runs_as_a_worker_does(sqlite_url, tmp_path):
    """`rnnlab study run --local` (worker.local.train_here) records through the same Recorder: the same
    statuses and messages as runner.execute for the same specs, epochs and a diagnosis stored."""
    from worker.local import train_here

    specs = [parse_spec(BASE),
             parse_spec({**BASE, "task": {"name": "charlm", "path": str(tmp_path / "missing.txt")}})]
    worker_ids = store.create_runs(specs, url=sqlite_url)
    for rid in worker_ids:
        runner.execute(rid, "w@host", heartbeat_s=5, lost_after_s=60, url=sqlite_url)
    here_ids = store.create_runs(specs, url=sqlite_url, tags=["here"])
    seen = []
    statuses = train_here(here_ids, specs, url=sqlite_url, on_run=lambda i, s, sec: seen.append((i, s)))
    assert statuses == {here_ids[0]: "succeeded", here_ids[1]: "failed"} and seen == list(statuses.items())
    for w, h in zip(worker_ids, here_ids):
        wr, hr = store.get_run(w, url=sqlite_url), store.get_run(h, url=sqlite_url)
        assert (hr["status"], hr["message"]) == (wr["status"], wr["message"])
    good = store.get_run(here_ids[0], url=sqlite_url)
    assert good["epochs_done"] == 1 and good["diagnosis"]
    assert [r.epoch for r in store.epoch_records(here_ids[0], url=sqlite_url)] == [0, 1]
    assert train_here(here_ids, specs, url=sqlite_url) == {}   # finished runs are not claimed again


LONG = {**BASE, "epochs": 400, "steps_per_epoch": 20}


def _when(cond, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


@pytest.fixture
def fast_beats(sqlite_url, monkeypatch):
    monkeypatch.setenv("RNNLAB_HEARTBEAT_SECONDS", "0.2")
    get_settings.cache_clear()
    yield sqlite_url
    monkeypatch.undo()
    get_settings.cache_clear()


def test_training_here_heartbeats_and_stops_on_cancel(fast_beats):
    """A run trained here keeps its heartbeat (a worker's reaper on the same database leaves it alone)
    and stops at its next step when cancelled, as on a worker."""
    from db.liveness import reap_lost
    from worker.local import train_here

    url = fast_beats
    (run_id,) = store.create_runs([parse_spec(LONG)], url=url)
    seen = {}

    def meanwhile():
        _when(lambda: store.get_run(run_id, url=url)["epochs_done"] >= 1)
        time.sleep(1.5)                                  # past the 1 s lost-after below
        seen["reaped"] = reap_lost(1.0, url=url)
        seen["cancel"] = store.request_cancel(run_id, url=url)

    t = threading.Thread(target=meanwhile)
    t.start()
    out = train_here([run_id], [parse_spec(LONG)], url=url)
    t.join()
    assert not seen["reaped"].requeued and seen["cancel"] is True
    run = store.get_run(run_id, url=url)
    assert out == {run_id: "cancelled"} and run["status"] == "cancelled" and run["attempts"] == 1, run
    assert "cancel" in run["message"] and run["epochs_done"] < 400


def test_ctrl_c_while_training_here_leaves_nothing_queued(fast_beats):
    """The first Ctrl-C stops the current run at its next step and cancels the runs not started yet."""
    from worker.local import train_here

    url = fast_beats
    specs = [parse_spec(LONG), parse_spec({**LONG, "seed": 1})]
    ids = store.create_runs(specs, url=url)

    def press_ctrl_c():
        _when(lambda: store.get_run(ids[0], url=url)["epochs_done"] >= 1)
        os.kill(os.getpid(), signal.SIGINT)

    t = threading.Thread(target=press_ctrl_c)
    t.start()
    out = train_here(ids, specs, url=url)
    t.join()
    assert out == {ids[0]: "cancelled", ids[1]: "cancelled"}
    assert [store.get_run(i, url=url)["status"] for i in ids] == ["cancelled", "cancelled"]


def test_an_explosion_in_an_unprobed_epoch_replaces_an_older_healthy_diagnosis(sqlite_url):
    """The diagnosis is the newest evidence. Old code diagnosed probed epochs only, so a gradient norm
    of 1.5e7 in an unprobed epoch left epoch 0's "healthy" on the Runs page."""
    import dataclasses

    from tests.synthetic import epoch_record, run_info
    from worker.recorder import Recorder

    (run_id,) = store.create_runs([parse_spec(BASE)], url=sqlite_url)
    attempt = store.claim_run(run_id, "w", url=sqlite_url)["attempt"]
    rec = Recorder(run_id, attempt, url=sqlite_url)
    rec.on_info(run_info("rnn", 12))

    def epoch(e, **kw):
        r = epoch_record(e, seq_len=12)
        r.grad_norm_mean, r.grad_norm_max = 1.0, 1.5   # bounded norms: whatever is found comes from kw
        return dataclasses.replace(r, **kw)

    def diagnosis():
        return store.get_run(run_id, url=sqlite_url)["diagnosis"]

    rec.on_epoch(epoch(0))
    first = diagnosis()
    assert first and not first.startswith("gradients explode")
    rec.on_epoch(epoch(1, probed=False, layers=[]))                 # quiet and unprobed: nothing to say
    assert diagnosis() == first
    rec.on_epoch(epoch(2, probed=False, layers=[], grad_norm_max=1.5e7, grad_norm_mean=1e6))
    assert diagnosis().startswith("gradients explode: gradient norm reached ") and "in epoch 2" in diagnosis()
    rec.on_epoch(epoch(3, probed=False, layers=[]))                 # quiet again: the explosion stays on show
    assert diagnosis().startswith("gradients explode")
    rec.on_epoch(epoch(4))                                          # a probed epoch is newer evidence
    assert not diagnosis().startswith("gradients explode")
