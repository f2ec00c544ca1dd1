"""Dashboard speed: the Compare page with 12 runs × 100 epochs × T=1000 × 2 layers, the Runs
page with 5,000 and 10,000 runs (``--only runs``), and the Explorer with 10,000 runs. Seeds real
SQLite databases through db.store, then times the page scripts (Streamlit AppTest: every query,
the downsampling and the Plotly figures, i.e. the server's work) with cold and warm caches, plus
the main queries alone; ``--browser`` also times a real Chromium load of each page until Streamlit
reports it idle.

    .venv/bin/python bench/dashboard_bench.py [--dir /tmp/rnnlab-bench] [--browser]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

APP = str(REPO / "dashboard" / "app.py")


def _timed(fn, repeat: int = 3) -> tuple[float, float]:
    """(first, median of the rest) wall seconds."""
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return times[0], statistics.median(times[1:]) if len(times) > 1 else times[0]


def seed_compare(url: str) -> list[int]:
    from tests.dashboard.seed import seed_run, spec

    ids = []
    for cell in ("rnn", "lstm", "gru"):
        for seed in range(4):
            ids.append(seed_run(url, spec(cell, seq_len=1000, num_layers=2, seed=seed, epochs=100)))
    return ids


def seed_many(url: str, n: int = 5000) -> None:
    from db import store
    from tests.dashboard.seed import seed_run, spec

    cells, acts = ("rnn", "lstm", "gru"), ("tanh", "relu", "sigmoid")
    specs = []
    for i in range(n - 200):
        cell = cells[i % 3]
        extra = {"activation": acts[i // 3 % 3]} if cell == "rnn" else {}
        specs.append(spec(cell, seq_len=(25, 50, 100, 200)[i % 4], num_layers=1 + i % 3, seed=i, epochs=3,
                          optimizer={"name": "adam", "lr": (1e-3, 3e-3)[i % 2]}, **extra))
    for k in range(0, len(specs), 500):
        store.create_runs(specs[k:k + 500], owner="bench", tags=[f"batch{k // 500}"], url=url)
    for i in range(200):  # finished runs with every epoch recorded
        seed_run(url, spec(cells[i % 3], seq_len=50, seed=100_000 + i, epochs=3), tags=("done",))


def page_time(page: str, query: dict[str, str], cold: bool) -> float:
    """Seconds of one run of the page script (all queries, downsampling and figures)."""
    import streamlit as st
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(APP, default_timeout=120)
    at.run()                        # the default page (Runs) writes its own filters to the URL, so the
    at.switch_page(f"app_pages/{page}.py")
    at.query_params.clear()         # target page's query is set after it, as a link would be
    for k, v in query.items():
        at.query_params[k] = v
    if cold:
        st.cache_data.clear()
    t = time.perf_counter()
    at.run()
    elapsed = time.perf_counter() - t
    errors = [e.value for e in list(at.exception) + list(at.error)]
    if errors:
        raise RuntimeError(f"{page}: {errors}")
    if not (at.get("plotly_chart") or len(at.dataframe)):   # a page that drew nothing measured nothing
        raise RuntimeError(f"{page}: no chart or table drawn (query {query}): "
                           f"{[i.value for i in at.info] + [w.value for w in at.warning]}")
    return elapsed


def use_db(url: str, home: Path) -> None:
    import streamlit as st

    from rnnlab.settings import get_settings

    os.environ["RNNLAB_DATABASE_URL"] = url
    os.environ["RNNLAB_HOME"] = str(home)
    get_settings.cache_clear()
    st.cache_data.clear()


def bench_compare(url: str, home: Path, ids: list[int]) -> dict[str, str]:
    import streamlit as st

    from db import queries as q

    use_db(url, home)
    eng = q.engine_for(url)
    out = {}
    query = {"runs": ",".join(map(str, ids))}
    tabs = ["Loss & norms", "Spectra & health", "Per-timestep profile", "Heatmaps", "Histograms", "Spec diff"]
    cold = {}
    for tab in tabs:  # lazy tabs: a page load runs the open tab only (the first one by default)
        view = {} if tab == tabs[0] else {"view": tab}
        cold[tab] = statistics.median(page_time("compare", {**query, **view}, cold=True) for _ in range(3))
    warm = statistics.median(page_time("compare", query, cold=False) for _ in range(3))
    heaviest = max(cold, key=cold.get)
    out["Compare page script, cold cache, default tab (Loss & norms)"] = f"{cold[tabs[0]]:.2f} s"
    out[f"Compare page script, cold cache, heaviest tab ({heaviest})"] = f"{cold[heaviest]:.2f} s"
    out["Compare page script, cold cache, all six tabs one after another (sum)"] = f"{sum(cold.values()):.2f} s"
    out["Compare page script, warm cache, default tab"] = f"{warm:.2f} s"
    st.cache_data.clear()
    first, med = _timed(lambda: [q.profile_matrix(i, 0, "h", 200, 60, engine=eng) for i in ids])
    out["12 × profile_matrix (101 epochs × T=1000 → 60 × 200)"] = f"{med:.2f} s"
    first, med = _timed(lambda: q.profiles(ids, None, 0, "h", engine=eng))
    out["profiles, 12 runs at one epoch (T=1000 → 400 points)"] = f"{med * 1000:.0f} ms"
    first, med = _timed(lambda: (q.epochs(ids, engine=eng), q.layer_stats(ids, engine=eng),
                                 q.param_stats(ids, ("grad_norm_mean",), engine=eng)))
    out["epochs + layer_stats + param_stats, 12 runs"] = f"{med * 1000:.0f} ms"
    return out


def bench_runs(url: str, home: Path) -> dict[str, str]:
    from db import queries as q

    use_db(url, home)
    eng = q.engine_for(url)
    out = {}
    cold = statistics.median(page_time("runs", {}, cold=True) for _ in range(3))
    warm = statistics.median(page_time("runs", {}, cold=False) for _ in range(3))
    out["Runs page script, cold cache (5,000 runs, 50 per page)"] = f"{cold:.2f} s"
    out["Runs page script, warm cache"] = f"{warm:.2f} s"
    cases = {
        "list_runs page 1 (newest 50 + count)": ({}, 0),
        "list_runs page 100": ({}, 99),
        "list_runs status + cell filter": ({"status": ["succeeded"], "cell": ["lstm"]}, 0),
        "list_runs tag filter": ({"tags": ["batch3"]}, 0),
        "list_runs any spec field (optimizer.lr = 0.003, JSON)": ({"spec": {"optimizer.lr": "0.003"}}, 0),
    }
    for name, (filters, page) in cases.items():
        _, med = _timed(lambda: q.list_runs(filters, page, 50, engine=eng), repeat=4)
        out[name] = f"{med * 1000:.0f} ms"
    return out


def _runs_run(query: dict[str, str], cold: bool) -> tuple[float, float]:
    """(wall, CPU) seconds of one run of the Runs page script with this URL query (the table, the
    counts, the workers panel and the saved views: the server's work of one page load)."""
    import streamlit as st
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(APP, default_timeout=120)
    for k, v in query.items():
        at.query_params[k] = v
    at.run()
    at.switch_page("app_pages/runs.py")
    if cold:
        st.cache_data.clear()
    wall, cpu = time.perf_counter(), time.process_time()
    at.run()
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    errors = [e.value for e in list(at.exception) + list(at.error)]
    if errors or not len(at.dataframe):
        raise RuntimeError(f"runs: {errors or 'no table drawn'}")
    return wall, cpu


def seed_runs_10k(url: str) -> None:
    """seed_many with 10,000 runs, and notes on every 10th run (the search reads them)."""
    from sqlalchemy import update

    from db.engine import session
    from db.models import Run

    seed_many(url, 10_000)
    with session(url, write=True) as s:
        s.execute(update(Run).where(Run.id % 10 == 0).values(notes="lr sweep: clipping at 1.0 helped"))


def bench_runs_10k(url: str, home: Path) -> dict[str, str]:
    from db import queries as q

    use_db(url, home)
    eng = q.engine_for(url)
    out = {}
    cases = {"no filter": {}, "status + cell + search (name/diagnosis/message/notes), from the URL":
             {"status": ["queued", "succeeded"], "cell": ["lstm"], "q": "clipping"}}
    for (name, query), cold in [(c, True) for c in cases.items()] + [(("no filter", {}), False)]:
        runs = [_runs_run(query, cold) for _ in range(3)]
        wall, cpu = statistics.median(r[0] for r in runs), statistics.median(r[1] for r in runs)
        out[f"Runs page script, {'cold' if cold else 'warm'} cache, {name} (10,000 runs, 50 per page)"] = \
            f"{wall:.2f} s (CPU {cpu:.2f} s)"
    out["list_runs search over name/diagnosis/message/notes, 10,000 runs"] = _wall_cpu(
        lambda: q.list_runs({"search": "clipping"}, 0, 50, engine=eng))
    return out


def seed_explorer(url: str, n: int = 10_000) -> None:
    """One sweep of n tanh-RNN runs (spectral radius 0.5–2 × T 10–200 × seeds), created through
    db.store, then finished in bulk: outcome columns and 4 epochs of layer-0 statistics whose values
    follow the classic phase map (rho < 1 vanishes with T, rho > 1 explodes), some diverged, a few failed."""
    import math
    import random

    from sqlalchemy import bindparam, insert, update

    from db import store
    from db.engine import session
    from db.models import LayerStatRow, Run
    from rnnlab.spec import SweepSpec
    from tests.dashboard.seed import spec

    radii, lengths = (0.5, 0.75, 0.9, 1.0, 1.1, 1.25, 1.5, 2.0), (10, 25, 50, 100, 200)
    seeds = range(n // (len(radii) * len(lengths)))
    grid = [(r, t, s) for r in radii for t in lengths for s in seeds]
    specs = [spec("rnn", seq_len=t, seed=s, epochs=3, init={"recurrent": "orthogonal", "spectral_radius": r})
             for r, t, s in grid]
    sweep = SweepSpec(name="explorer-bench", base=specs[0].to_dict(), seeds=list(seeds),
                      vary={"init.spectral_radius": list(radii), "task.seq_len": list(lengths)})
    ids = store.create_runs(specs, owner="bench", tags=("explore",), sweep=sweep, url=url)
    rng = random.Random(0)
    runs, layers = [], []
    for rid, (r, t, _) in zip(ids, grid):
        log_ratio = t * math.log10(r) + rng.gauss(0, 0.3)
        diverged = r > 1.2 and rng.random() < min(1.0, t / 100)
        status = "diverged" if diverged else ("failed" if rng.random() < 0.01 else "succeeded")
        ratio = None if diverged else min(1.0, 0.05 + abs(log_ratio) / 20) * (1 + rng.gauss(0, 0.05))
        runs.append({"rid": rid, "status": status, "epochs_done": 3, "baseline_loss": 1 / 6, "metric_name": "mse",
                     "last_val_loss": None if ratio is None else ratio / 6, "last_val_metric": None if ratio is None
                     else ratio / 6, "last_horizon": min(t, 1 / max(1e-3, -math.log10(min(r, 0.999)))),
                     "last_log_ratio": log_ratio, "diagnosis": "bench"})
        layers += [{"run_id": rid, "epoch": e, "layer": 0, "rho": r * (1 + 0.02 * e), "sigma_max": r * 1.2,
                    "saturated_frac": min(1.0, 0.1 * r * (1 + e)), "log_ratio": log_ratio} for e in range(4)]
    with session(url, write=True) as s:
        cols = [k for k in runs[0] if k != "rid"]
        params = [{"rid": r["rid"], **{f"v_{k}": r[k] for k in cols}} for r in runs]
        s.connection().execute(update(Run.__table__).where(Run.id == bindparam("rid")).values(
            {k: bindparam(f"v_{k}") for k in cols}), params)
        s.connection().execute(insert(LayerStatRow.__table__), layers)


def _explorer_run(query: dict[str, str], cold: bool) -> tuple[float, float]:
    """(wall, CPU) seconds of one run of the Explorer page script. CPU time (all threads of this
    process) is reported too because wall time on a shared, loaded machine mostly measures waiting."""
    import streamlit as st
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(APP, default_timeout=120)
    for k, v in query.items():
        at.query_params[k] = v
    at.run()
    at.switch_page("app_pages/explorer.py")
    if cold:
        st.cache_data.clear()
    wall, cpu = time.perf_counter(), time.process_time()
    at.run()
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    errors = [e.value for e in list(at.exception) + list(at.error)]
    if errors or not at.get("plotly_chart"):
        raise RuntimeError(f"explorer: {errors or 'no chart drawn'}")
    return wall, cpu


def _wall_cpu(fn, repeat: int = 5) -> str:
    walls, cpus = [], []
    for _ in range(repeat):
        w, c = time.perf_counter(), time.process_time()
        fn()
        walls.append(time.perf_counter() - w)
        cpus.append(time.process_time() - c)
    return f"{statistics.median(walls):.2f} s (CPU {statistics.median(cpus):.2f} s)"


def bench_explorer(url: str, home: Path) -> dict[str, str]:
    from dashboard import explore
    from db import queries as q

    use_db(url, home)
    eng = q.engine_for(url)
    out = {}
    phase = {"src": "Sweep", "tab": "Phase diagram", "fx": "init.spectral_radius", "fy": "task.seq_len"}
    cases = {"scatter tab": {"src": "Sweep"}, "phase diagram tab": phase,
             "parallel coordinates tab": {"src": "Sweep", "tab": "Parallel coordinates"}}
    for (name, query), cold in [(c, True) for c in cases.items()] + [(("scatter tab", cases["scatter tab"]), False)]:
        runs = [_explorer_run(query, cold) for _ in range(3)]
        wall, cpu = statistics.median(r[0] for r in runs), statistics.median(r[1] for r in runs)
        out[f"Explorer page script, {'cold' if cold else 'warm'} cache, {name} (10,000 runs)"] = \
            f"{wall:.2f} s (CPU {cpu:.2f} s)"
    out["explore_runs, 10,000 runs (spec + outcomes + last layer-0 epoch)"] = _wall_cpu(
        lambda: q.explore_runs({}, engine=eng))
    runs, _ = q.explore_runs({}, engine=eng)
    out["outcomes_table + phase_grid, 10,000 runs (8 × 5 cells)"] = _wall_cpu(
        lambda: explore.phase_grid(explore.outcomes_table(runs), "init.spectral_radius", "task.seq_len",
                                   "loss ÷ baseline"))
    return out


def bench_browser(url: str, home: Path, pages: dict[str, str]) -> dict[str, str]:
    from tests.dashboard.browser import chromium, running_app, wait_idle

    out = {}
    with running_app({"RNNLAB_DATABASE_URL": url, "RNNLAB_HOME": str(home)}, home / "app.log") as base:
        pw, browser = chromium()
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            for name, path in pages.items():
                page.goto(f"{base}/{path}")
                wait_idle(page, 120_000)  # first load: warms the server's caches
                t = time.perf_counter()
                page.reload()
                wait_idle(page, 120_000)
                out[f"{name}: browser reload until idle (Chromium)"] = f"{time.perf_counter() - t:.2f} s"
        finally:
            browser.close()
            pw.stop()
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dir", default="/tmp/rnnlab-dashboard-bench")
    ap.add_argument("--browser", action="store_true", help="also time page loads in headless Chromium")
    ap.add_argument("--postgres", metavar="URL", help="also time list_runs on this (empty) Postgres database, "
                                                      "seeded with the same 5,000 runs")
    ap.add_argument("--only", choices=["compare", "runs", "explorer"], help="run one group of measurements")
    args = ap.parse_args()
    from db.migrate import upgrade

    base = Path(args.dir)
    base.mkdir(parents=True, exist_ok=True)
    results: dict[str, str] = {}
    cmp_db, many_db = base / "compare.db", base / "many.db"
    cmp_url, many_url = f"sqlite:///{cmp_db}", f"sqlite:///{many_db}"
    if not cmp_db.exists() and args.only in (None, "compare"):
        upgrade(cmp_url)
        t = time.perf_counter()
        ids = seed_compare(cmp_url)
        print(f"seeded 12 runs × 101 epochs × T=1000 × 2 layers in {time.perf_counter() - t:.0f} s "
              f"({cmp_db.stat().st_size / 1e6:.0f} MB)")
    ids = list(range(1, 13))
    if not many_db.exists() and args.only in (None, "runs"):
        upgrade(many_url)
        t = time.perf_counter()
        seed_many(many_url)
        print(f"seeded 5,000 runs in {time.perf_counter() - t:.0f} s")
    if args.only in (None, "explorer"):
        exp_db = base / "explore.db"
        if not exp_db.exists():
            upgrade(f"sqlite:///{exp_db}")
            t = time.perf_counter()
            seed_explorer(f"sqlite:///{exp_db}")
            print(f"seeded 10,000 finished runs in {time.perf_counter() - t:.0f} s")
        results.update(bench_explorer(f"sqlite:///{exp_db}", base))
    if args.only in (None, "compare"):
        results.update(bench_compare(cmp_url, base, ids))
    if args.only in (None, "runs"):
        results.update(bench_runs(many_url, base))
        runs10k_db = base / "runs10k.db"
        if not runs10k_db.exists():
            upgrade(f"sqlite:///{runs10k_db}")
            t = time.perf_counter()
            seed_runs_10k(f"sqlite:///{runs10k_db}")
            print(f"seeded 10,000 runs in {time.perf_counter() - t:.0f} s")
        results.update(bench_runs_10k(f"sqlite:///{runs10k_db}", base))
    if args.postgres:
        from db import queries as q

        upgrade(args.postgres)
        if q.list_runs({}, 0, 1, engine=q.engine_for(args.postgres))[1] == 0:
            seed_many(args.postgres)
        eng = q.engine_for(args.postgres)
        for name, filters in {"page 1": {}, "status + cell": {"status": ["succeeded"], "cell": ["lstm"]},
                              "any spec field (JSON)": {"spec": {"optimizer.lr": "0.003"}}}.items():
            _, med = _timed(lambda: q.list_runs(filters, 0, 50, engine=eng), repeat=4)
            results[f"Postgres list_runs {name} (5,000 runs)"] = f"{med * 1000:.0f} ms"
    if args.browser:
        runs_q = ",".join(map(str, ids))
        results.update(bench_browser(cmp_url, base, {"Compare (12 runs, T=1000), default tab": f"compare?runs={runs_q}",
                                                     "Compare, Heatmaps tab": f"compare?runs={runs_q}&view=Heatmaps"}))
        results.update(bench_browser(many_url, base, {"Runs (5,000 runs)": ""}))
    width = max(map(len, results))
    print(f"\n{'measurement'.ljust(width)} | result\n{'-' * width}-|-------")
    for k, v in results.items():
        print(f"{k.ljust(width)} | {v}")


if __name__ == "__main__":
    main()
