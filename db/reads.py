"""The one read API of the runs (the ``runs`` table with its tags, attempts and sweeps), for every
caller: the dashboard (through ``db.queries``), the CLI, the submitter and the worker (through
``db.store``). One run as a dict, pages of runs as DataFrames, server-side filtered and sorted with one
filter language (``run_filters``), duplicate lookup by spec hash, and a run's epoch records.

Every function takes ``url`` or an SQLAlchemy ``engine`` (epoch_records and epoch_scalars: ``url``),
default the settings' database. One run's datetimes come back timezone-aware (UTC). Nothing here writes.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import Boolean, and_, case, false, func, or_, select
from sqlalchemy.engine import Engine
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.functions import FunctionElement

from db.attempts import aware
from db.codec import join_nan, record_from_rows
from db.engine import get_engine, session
from db.models import Epoch, GradProfile, Histogram, LayerStatRow, ParamStatRow, Run, RunAttempt, RunTag, Sweep
from rnnlab.health import EXPLODE_LOG_RATIO
from rnnlab.records import EpochRecord

if TYPE_CHECKING:  # pandas is imported where a DataFrame is built: the worker's writes never need it
    import pandas as pd


def engine_of(url: str | None = None, engine: Engine | None = None) -> Engine:
    """``engine`` if given, else the shared engine of ``url`` (``db.engine.get_engine``)."""
    return engine if engine is not None else get_engine(url)


def _aware_or_none(v: Any) -> Any:
    return aware(v) if isinstance(v, dt.datetime) else v


# ------------------------------------------------------------------------------------------------
# The filter language and the sort orders of run listings
# ------------------------------------------------------------------------------------------------

# Columns of ``runs`` that can be filtered by equality without touching the JSON spec.
RUN_COLUMNS = (
    "task", "cell", "activation", "init", "clip", "seq_len", "hidden_size", "num_layers", "seed",
    "queue", "owner", "sweep_id", "worker", "metric_name",
)
# A diverged, exploded, saturated or dead run never sorts first by horizon (its horizon is meaningless):
# the diagnosis words are models.diagnose's (docs/metrics.md), plus ‖g_1‖/‖g_T‖ above 1e3.
_BROKEN = or_(Run.status == "diverged", Run.last_log_ratio > EXPLODE_LOG_RATIO,
              *(Run.diagnosis.like(w + "%") for w in ("gradients explode", "large gradients", "weights explode",
                                                      "saturated", "dead units", "gradients are zero")))
SORTS = {"newest": Run.id.desc(), "oldest": Run.id.asc(), "val_loss": Run.last_val_loss.asc().nulls_last(),
         "horizon": case((_BROKEN, None), else_=Run.last_horizon).desc().nulls_last()}


# The largest run id any page or caller can ask for: ``runs.id`` is a 32-bit integer on PostgreSQL (and
# a 64-bit one on SQLite), so a larger id is refused here rather than sent to the database.
MAX_RUN_ID = 2 ** 31 - 1


def valid_ids(ids: Iterable[Any]) -> list[int]:
    """The ids among ``ids`` that can be run ids (whole numbers from 1 to MAX_RUN_ID), in order."""
    out = []
    for i in ids:
        try:
            v = int(i)
        except (TypeError, ValueError, OverflowError):
            continue
        if 1 <= v <= MAX_RUN_ID:
            out.append(v)
    return out


def _coerce(value: Any) -> Any:
    if isinstance(value, str):
        v = value.strip()
        if v.lower() in ("true", "false"):
            return v.lower() == "true"
        if v.lower() in ("none", "null"):
            return None
        try:
            return int(v)
        except ValueError:
            try:
                return float(v)
            except ValueError:
                return v
    return value


def _spec_condition(path: str, value: Any):
    """Equality on any spec field by its dotted path (``optimizer.lr``, ``task.variant``)."""
    node = Run.spec[tuple(path.split("."))]
    value = _coerce(value)
    if value is None:
        return or_(node.as_string().is_(None), node.as_string() == "null")
    # A number or a boolean is compared only where the field holds one (CASE, so the cast never sees
    # text): a text field compared with 1 matches no run on both backends, instead of an error on
    # PostgreSQL (the cast of 'a16') and a match of the text '1' on SQLite.
    if isinstance(value, bool):
        return case((_JsonIsBool(node), node.as_boolean() == value), else_=false())
    if isinstance(value, (int, float)):
        return case((_JsonIsNumber(node), func.abs(node.as_float() - float(value))
                     <= 1e-12 * max(1.0, abs(float(value)))), else_=false())
    return node.as_string() == value


class _JsonIsNumber(FunctionElement):
    """True where a JSON path expression (``Run.spec[path]``) holds a number."""
    name = "json_is_number"
    type = Boolean()
    inherit_cache = True


class _JsonIsBool(FunctionElement):
    """True where a JSON path expression (``Run.spec[path]``) holds true or false."""
    name = "json_is_bool"
    type = Boolean()
    inherit_cache = True


def _json_kind(element, compiler, pg_kind: str, sqlite_kinds: tuple[str, ...], **kw) -> str:
    node = next(iter(element.clauses))
    if compiler.dialect.name == "postgresql":
        return compiler.process(func.jsonb_typeof(node) == pg_kind, **kw)
    # SQLite: json_type(column, path); node is JSON_EXTRACT(column, path)
    return compiler.process(func.json_type(node.left, node.right).in_(sqlite_kinds), **kw)


@compiles(_JsonIsNumber)
def _compile_is_number(element, compiler, **kw):
    return _json_kind(element, compiler, "number", ("integer", "real"), **kw)


@compiles(_JsonIsBool)
def _compile_is_bool(element, compiler, **kw):
    return _json_kind(element, compiler, "boolean", ("true", "false"), **kw)


def run_filters(filters: dict[str, Any] | None) -> list:
    """The WHERE conditions of a run listing. Filters: ``status`` (list), ``tags`` (list: a run with any
    of them), ``all_tags`` (list: a run with every one of them), ``search`` (name, diagnosis, message or
    notes substring), ``ids`` (list), any of RUN_COLUMNS (a value or a list), ``spec`` ({dotted path: value})."""
    f = filters or {}
    conds = []
    if f.get("status"):
        conds.append(Run.status.in_(list(f["status"])))
    if f.get("ids"):
        conds.append(Run.id.in_(valid_ids(f["ids"])))   # ids out of range match no run
    if f.get("tags"):
        conds.append(Run.id.in_(select(RunTag.run_id).where(RunTag.tag.in_(list(f["tags"])))))
    for t in dict.fromkeys(f.get("all_tags") or ()):
        conds.append(Run.id.in_(select(RunTag.run_id).where(RunTag.tag == t)))
    if f.get("search"):
        # the text is searched for as typed: '%' and '_' match themselves, not any characters
        text = str(f["search"]).replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        like = f"%{text}%"
        conds.append(or_(*(c.ilike(like, escape="\\") for c in (Run.name, Run.diagnosis, Run.message, Run.notes))))
    for col in RUN_COLUMNS:
        v = f.get(col)
        if v is None or v == [] or v == "":
            continue
        c = getattr(Run, col)
        conds.append(c.in_(list(v)) if isinstance(v, (list, tuple, set)) else c == v)
    for path, v in (f.get("spec") or {}).items():
        if path:
            conds.append(_spec_condition(path, v))
    return conds


# ------------------------------------------------------------------------------------------------
# Runs
# ------------------------------------------------------------------------------------------------

RUN_LIST_COLS = [
    Run.id, Run.name, Run.status, Run.epochs_done, Run.epochs_total, Run.task, Run.cell, Run.activation,
    Run.init, Run.clip, Run.seq_len, Run.hidden_size, Run.num_layers, Run.seed, Run.metric_name,
    Run.last_val_loss, Run.baseline_loss, Run.baseline_heldout_loss, Run.last_val_metric, Run.baseline_metric,
    Run.last_horizon, Run.diagnosis, Run.message, Run.worker, Run.owner, Run.sweep_id, Run.created_at, Run.started_at,
    Run.finished_at, Run.cancel_requested, Run.attempts,
]
MAX_PAGE_SIZE = 1000


def _grouped_in(conn, key, value, values: list, order) -> dict[Any, list]:
    """{key: [value, …]} over the rows whose ``key`` is in ``values``, queried 500 values at a time (a
    bounded IN list on every backend), values in ``order``."""
    out: dict[Any, list] = {}
    for k in range(0, len(values), 500):
        for kv, v in conn.execute(select(key, value).where(key.in_(values[k:k + 500])).order_by(order)):
            out.setdefault(kv, []).append(v)
    return out


def _tags_of(conn, ids: list[int]) -> dict[int, list[str]]:
    return _grouped_in(conn, RunTag.run_id, RunTag.tag, ids, RunTag.tag)


def _utc(t: datetime | None) -> datetime | None:
    return None if t is None or t != t else aware(t)   # t != t: pandas' NaT


def _attempt_spans(conn, ids: list[int]) -> dict[int, list[tuple]]:
    """{run id: [(started_at, ended_at or None), …]} of each run's attempts, 500 ids at a time."""
    out: dict[int, list[tuple]] = {}
    for k in range(0, len(ids), 500):
        q = (select(RunAttempt.run_id, RunAttempt.started_at, RunAttempt.ended_at)
             .where(RunAttempt.run_id.in_(ids[k:k + 500])).order_by(RunAttempt.run_id, RunAttempt.attempt))
        for rid, a, b in conn.execute(q):
            out.setdefault(int(rid), []).append((a, b))
    return out


def _decorate_runs(df: pd.DataFrame, tags: dict[int, list[str]],
                   spans: dict[int, list[tuple]] | None = None) -> pd.DataFrame:
    """Adds tags, progress and duration_s: the time the run's attempts spent on a worker, summed (an open
    attempt up to now), so a run cancelled and re-queued an hour later is not an hour long; the span from
    started_at to finished_at (or now) for a run whose attempts are not stored."""
    now = datetime.now(UTC)
    df["tags"] = [", ".join(tags.get(i, [])) for i in df["id"]]
    df["progress"] = [
        (min(d, t) / t if t else 0.0) for d, t in zip(df["epochs_done"], df["epochs_total"])
    ]
    durations = []
    for rid, s, e in zip(df["id"], df["started_at"], df["finished_at"]):
        attempts = (spans or {}).get(rid)
        if attempts:
            durations.append(sum(((_utc(b) or now) - _utc(a)).total_seconds() for a, b in attempts))
            continue
        s, e = _utc(s), _utc(e)
        durations.append((((e or now) - s).total_seconds()) if s else None)
    df["duration_s"] = durations
    df["activation"] = [a if isinstance(a, str) and a else ("tanh" if c == "rnn" else "—")
                        for a, c in zip(df["activation"], df["cell"])]
    return df


def list_runs(filters: dict[str, Any] | None = None, page: int = 0, page_size: int = 50, sort: str = "newest", *,
              url: str | None = None, engine: Engine | None = None) -> tuple[pd.DataFrame, int]:
    """One page of runs (``sort``: one of SORTS, newest first by default) and the number of runs that
    match ``filters`` (see run_filters). Columns: RUN_LIST_COLS plus ``tags`` (comma-separated),
    ``progress``, ``duration_s``; ``page_size`` is at most MAX_PAGE_SIZE."""
    import pandas as pd
    conds = run_filters(filters)
    where = and_(*conds) if conds else None
    page_size = max(1, min(int(page_size), MAX_PAGE_SIZE))
    with engine_of(url, engine).connect() as conn:
        count_q = select(func.count(Run.id))
        total = conn.execute(count_q.where(where) if where is not None else count_q).scalar_one()
        q = select(*RUN_LIST_COLS).order_by(SORTS.get(sort, Run.id.desc()), Run.id.desc())
        if where is not None:
            q = q.where(where)
        q = q.offset(max(0, int(page)) * page_size).limit(page_size)
        df = pd.DataFrame(conn.execute(q).mappings().all(), columns=[c.key for c in RUN_LIST_COLS])
        tags, spans = _tags_of(conn, df["id"].tolist()), _attempt_spans(conn, df["id"].tolist())
    return _decorate_runs(df, tags, spans), int(total)


def runs_by_ids(ids: Iterable[int], *, url: str | None = None, engine: Engine | None = None) -> pd.DataFrame:
    """Rows as in list_runs plus the full ``spec``, ``info`` and ``spec_hash`` of the given runs, in
    the order given (missing ids, and ids outside 1..MAX_RUN_ID, are left out)."""
    import pandas as pd
    ids = valid_ids(ids)
    cols = [c.key for c in RUN_LIST_COLS] + ["spec", "info", "spec_hash"]
    if not ids:
        return pd.DataFrame(columns=cols + ["tags"])
    with engine_of(url, engine).connect() as conn:
        rows = []
        for k in range(0, len(ids), 500):
            rows += conn.execute(select(*RUN_LIST_COLS, Run.spec, Run.info, Run.spec_hash)
                                 .where(Run.id.in_(ids[k:k + 500]))).mappings().all()
        df = pd.DataFrame(rows, columns=cols)
        tags, spans = _tags_of(conn, ids), _attempt_spans(conn, ids)
    df = _decorate_runs(df, tags, spans)
    order = {i: k for k, i in enumerate(ids)}
    return df.sort_values("id", key=lambda s: s.map(order)).reset_index(drop=True)


def get_run(run_id: int, *, url: str | None = None, engine: Engine | None = None) -> dict | None:
    """One run as a dict, or None (also for an id outside 1..MAX_RUN_ID): every ``runs`` column
    (datetimes aware), ``tags`` (sorted) and
    ``attempt_history`` (one dict per attempt, oldest first: attempt, worker, started_at, ended_at,
    outcome, message, resumed_from_epoch)."""
    run_id = int(run_id)
    if not 1 <= run_id <= MAX_RUN_ID:
        return None
    with engine_of(url, engine).connect() as conn:
        row = conn.execute(select(*Run.__table__.c).where(Run.id == run_id)).mappings().first()
        if row is None:
            return None
        d = {k: _aware_or_none(v) for k, v in row.items()}
        d["tags"] = _tags_of(conn, [run_id]).get(run_id, [])
        att = conn.execute(select(*(c for c in RunAttempt.__table__.c if c.key not in ("id", "run_id")))
                           .where(RunAttempt.run_id == run_id).order_by(RunAttempt.attempt)).mappings().all()
    d["attempt_history"] = [{k: _aware_or_none(v) for k, v in a.items()} for a in att]
    return d


def find_existing(spec_hashes: Iterable[str], *, url: str | None = None,
                  engine: Engine | None = None) -> dict[str, list[int]]:
    """Runs already in the database with these spec hashes: {hash: [run ids, ascending]} (only hashes found)."""
    hashes = list(dict.fromkeys(spec_hashes))
    with engine_of(url, engine).connect() as conn:
        return _grouped_in(conn, Run.spec_hash, Run.id, hashes, Run.id)


def status_counts(*, url: str | None = None, engine: Engine | None = None) -> dict[str, int]:
    """The number of runs in each status (statuses with none are left out)."""
    with engine_of(url, engine).connect() as conn:
        return dict(conn.execute(select(Run.status, func.count()).group_by(Run.status)).all())


def filter_options(*, url: str | None = None, engine: Engine | None = None) -> dict[str, list[Any]]:
    """Distinct values for the filter widgets (tags and the denormalized spec columns), and the 500
    newest sweeps."""
    out: dict[str, list[Any]] = {}
    with engine_of(url, engine).connect() as conn:
        out["tags"] = [t for (t,) in conn.execute(select(RunTag.tag).distinct().order_by(RunTag.tag))]
        for col in ("task", "cell", "activation", "init", "clip", "seq_len", "hidden_size", "num_layers", "owner"):
            c = getattr(Run, col)
            out[col] = [v for (v,) in conn.execute(select(c).distinct().where(c.is_not(None)).order_by(c))]
        out["sweeps"] = [dict(r) for r in conn.execute(
            select(Sweep.id, Sweep.name, Sweep.n_runs).order_by(Sweep.id.desc()).limit(500)).mappings()]
    return out


def sweep_summary(sweep_id: int, *, url: str | None = None, engine: Engine | None = None) -> dict | None:
    """One sweep by its id, as filter_options lists sweeps ({id, name, n_runs}), or None: a primary-key
    lookup, for a sweep older than the 500 that filter_options lists (and None for an id out of range)."""
    sweep_id = int(sweep_id)
    if not 1 <= sweep_id <= MAX_RUN_ID:
        return None
    with engine_of(url, engine).connect() as conn:
        row = conn.execute(select(Sweep.id, Sweep.name, Sweep.n_runs).where(Sweep.id == sweep_id)).mappings().first()
    return dict(row) if row is not None else None


def timing_samples(limit: int = 500, *, url: str | None = None, engine: Engine | None = None) -> pd.DataFrame:
    """Where the time of recent succeeded runs went, for time estimates (dashboard/estimate.py): per run,
    ``train_seconds`` and ``steps`` summed over the trained epochs (≥ 1), ``diag_seconds`` over every
    recorded epoch (epoch 0 included), ``diag_epochs`` and ``probed_epochs`` counted, ``run_seconds``
    from started_at to finished_at (None unless the run took one attempt), its size (cell, hidden_size,
    seq_len, num_layers, batch_size) and its ``spec`` (a dict). Newest first."""
    import pandas as pd
    columns = ["id", "cell", "hidden_size", "seq_len", "num_layers", "spec", "attempts", "started_at",
               "finished_at", "train_seconds", "steps", "diag_seconds", "diag_epochs", "probed_epochs"]
    with engine_of(url, engine).connect() as conn:
        q = (select(Run.id, Run.cell, Run.hidden_size, Run.seq_len, Run.num_layers, Run.spec, Run.attempts,
                    Run.started_at, Run.finished_at,
                    func.sum(case((Epoch.epoch >= 1, Epoch.train_seconds), else_=0.0)).label("train_seconds"),
                    func.sum(case((Epoch.epoch >= 1, Epoch.steps), else_=0)).label("steps"),
                    func.sum(Epoch.diag_seconds).label("diag_seconds"),
                    func.count(Epoch.epoch).label("diag_epochs"),
                    func.sum(case((Epoch.probed, 1), else_=0)).label("probed_epochs"))
             .join(Epoch, Epoch.run_id == Run.id)
             .where(Run.status == "succeeded").group_by(Run.id).order_by(Run.id.desc()).limit(limit))
        df = pd.DataFrame(conn.execute(q).mappings().all(), columns=columns)
    if df.empty:
        return df.drop(columns=["attempts", "started_at", "finished_at"]).assign(batch_size=[], run_seconds=[])
    df["batch_size"] = [(s or {}).get("batch_size", 64) for s in df["spec"]]
    df["run_seconds"] = [((aware(f) - aware(s)).total_seconds() if s is not None and f is not None and a == 1
                          else None) for s, f, a in zip(df["started_at"], df["finished_at"], df["attempts"])]
    return df.drop(columns=["attempts", "started_at", "finished_at"])


# ------------------------------------------------------------------------------------------------
# One run's epochs, as the engine reported them (re-derivation, export)
# ------------------------------------------------------------------------------------------------

def epoch_records(run_id: int, *, url: str | None = None) -> list[EpochRecord]:
    """Every recorded epoch of a run as EpochRecords (NaN/inf restored; profiles at stored precision)."""
    def rows(s, table, *order):
        out: dict[int, list[dict]] = {}
        for r in s.execute(select(table).where(table.run_id == run_id).order_by(table.epoch, *order)).scalars():
            d = {c.key: getattr(r, c.key) for c in table.__table__.columns}
            out.setdefault(d["epoch"], []).append(d)
        return out

    with session(url) as s:
        epochs = rows(s, Epoch)
        params = rows(s, ParamStatRow)
        hists = rows(s, Histogram)
        layers = rows(s, LayerStatRow, LayerStatRow.layer)
        profiles = rows(s, GradProfile, GradProfile.layer, GradProfile.kind)
        info = s.execute(select(Run.info).where(Run.id == run_id)).scalar_one_or_none() or {}
    order = {name: i for i, name in enumerate(info.get("param_names") or [])}
    for plist in params.values():  # the engine's parameter order, not the primary key's
        plist.sort(key=lambda p: (order.get(p["param"], len(order)), p["param"]))
    return [record_from_rows(ep[0], params.get(e, []), hists.get(e, []), layers.get(e, []), profiles.get(e, []))
            for e, ep in sorted(epochs.items())]


def epoch_scalars(run_id: int, *, url: str | None = None) -> list[dict]:
    """The run's per-epoch scalar rows (NaN restored), for listings and CSV export."""
    with session(url) as s:
        rows = s.execute(select(Epoch).where(Epoch.run_id == run_id).order_by(Epoch.epoch)).scalars().all()
        return [join_nan({c.key: getattr(r, c.key) for c in Epoch.__table__.columns}) for r in rows]


def run_notes(run_ids: list[int], *, url: str | None = None, engine: Engine | None = None) -> dict[int, str]:
    """The notes of those runs that have any, by run id."""
    ids = [int(i) for i in run_ids]
    if not ids:
        return {}
    with engine_of(url, engine).connect() as conn:
        rows = conn.execute(select(Run.id, Run.notes).where(Run.id.in_(ids), Run.notes.is_not(None)))
        return {int(i): n for i, n in rows if n and n.strip()}
