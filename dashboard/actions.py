"""What users do to runs from the Runs and Run-detail pages: cancel, re-run, clone with edits,
tags, notes and delete (with confirmation). Writes go through db.store / client.submit only, and
every action checks dashboard.auth.can first."""

from __future__ import annotations

import zlib

import pandas as pd
import streamlit as st

from dashboard import reads
from dashboard.auth import User, can
from dashboard.components import plain
from db.store import MAX_TAG_CHARS, MAX_TAGS, MAX_TAGS_TEXT

FLASH = "_flash"


def flash(kind: str, text: str) -> None:
    st.session_state[FLASH] = (kind, text)


def show_flash() -> None:
    kind, text = st.session_state.pop(FLASH, (None, None))
    if kind:
        getattr(st, kind)(text)


def _allowed(user: User, action: str, rows: pd.DataFrame) -> tuple[list[int], list[int]]:
    ok = [int(r.id) for r in rows.itertuples() if can(user, action, r.owner)]
    return ok, [int(i) for i in rows["id"] if int(i) not in ok]


def _each(ids: list[int], fn) -> list[str]:
    problems = []
    for i in ids:
        try:
            fn(i)
        except Exception as e:  # noqa: BLE001 - reported per run
            problems.append(f"run {i}: {e}")
    return problems


def _report(verb: str, done: list[int], denied: list[int], problems: list[str]) -> None:
    parts = [f"{verb} {len(done) - len(problems)} run(s)."]
    if denied:
        parts.append(f"Not allowed for runs {', '.join(map(str, denied))}.")
    parts += problems
    flash("warning" if denied or problems else "success", plain(" ".join(parts)))
    reads.clear()


def cancel(user: User, rows: pd.DataFrame) -> None:
    from db import store

    ok, denied = _allowed(user, "cancel", rows)
    _report("Cancelled (or asked to stop)", ok, denied, _each(ok, store.request_cancel))


def rerun(user: User, rows: pd.DataFrame) -> None:
    """Submit each run's exact spec again as a new run (same seed, so the same records on CPU)."""
    from client.submit import submit
    from rnnlab.settings import get_settings
    from rnnlab.spec import parse_spec

    if not can(user, "submit"):
        flash("warning", "Your role cannot submit runs.")
        return
    full = reads.runs_by_ids(rows["id"].tolist())
    try:
        specs = [parse_spec(s, get_settings().limits) for s in full["spec"]]
        ids = submit(specs, owner=user.name, tags=["rerun"])
    except Exception as e:  # noqa: BLE001
        flash("error", plain(f"Re-run failed: {type(e).__name__}: {e}"))
        return
    flash("success", f"Queued {len(ids)} re-run(s): runs {', '.join(map(str, ids))}.")
    reads.clear()


def set_tags(user: User, rows: pd.DataFrame, text: str, replace: bool) -> None:
    from db import store

    new = [t.strip() for t in text.split(",") if t.strip()]
    ok, denied = _allowed(user, "edit", rows)
    current = dict(zip(rows["id"].astype(int), rows["tags"]))

    def apply(i: int) -> None:
        old = [t.strip() for t in (current.get(i) or "").split(",") if t.strip()]
        store.set_tags(i, new if replace else list(dict.fromkeys(old + new)))

    _report("Tagged", ok, denied, _each(ok, apply))


def set_notes(user: User, run_id: int, owner: str | None, notes: str) -> None:
    from db import store

    if not can(user, "edit", owner):
        flash("warning", "Your role cannot edit this run.")
        return
    try:
        store.set_notes(int(run_id), notes)
    except ValueError as e:   # too long (db.store.MAX_NOTES): the old notes are kept
        flash("warning", plain(f"Notes not saved: {e}"))
        return
    flash("success", f"Saved the notes of run {int(run_id)}.")
    reads.clear()


def delete(user: User, rows: pd.DataFrame) -> None:
    from db import store

    ok, denied = _allowed(user, "delete", rows)
    _report("Deleted", ok, denied, _each(ok, store.delete_run))


def tags_key(key: str, ids: list[int]) -> str:
    """The tags field's widget key for this selection: a new selection gets a new field, filled with its
    own tags. With one key for every selection, the field kept what was typed (or shown) for the runs
    selected before, and 'Replace tags' wrote that onto the newly selected runs."""
    return f"{key}_tags_{zlib.crc32(','.join(map(str, ids)).encode()):08x}"


def panel(user: User, rows: pd.DataFrame, key: str = "act") -> None:
    """Buttons acting on the selected runs (``rows`` from list_runs)."""
    ss = st.session_state
    n = len(rows)
    ids = rows["id"].astype(int).tolist()
    st.caption(f"{n} selected: {', '.join(map(str, ids[:30]))}{'…' if n > 30 else ''}" if n else
               "Select rows (tick boxes on the left) to act on them.")
    c = st.columns(6)
    if c[0].button("Compare", key=f"{key}_cmp", disabled=not 2 <= n <= 12, help="2 to 12 runs"):
        st.switch_page("app_pages/compare.py", query_params={"runs": ",".join(map(str, ids))})
    if c[1].button("Details", key=f"{key}_det", disabled=n != 1):
        st.switch_page("app_pages/run_detail.py", query_params={"run": str(ids[0])})
    active = rows[rows["status"].isin(["queued", "running"])]
    if c[2].button("Cancel", key=f"{key}_cancel", disabled=active.empty):
        cancel(user, active)
        st.rerun()
    if c[3].button("Re-run", key=f"{key}_rerun", disabled=n == 0, help="Queue the exact same spec again"):
        rerun(user, rows)
        st.rerun()
    if c[4].button("Clone with edits", key=f"{key}_clone", disabled=n != 1):
        st.switch_page("app_pages/new.py", query_params={"clone": str(ids[0])})
    if c[5].button("Delete…", key=f"{key}_del", disabled=n == 0):
        ss[f"{key}_confirm"] = ids
    pending = ss.get(f"{key}_confirm")
    if pending:
        st.warning(f"Delete runs {', '.join(map(str, pending))} and everything recorded for them? "
                   "This cannot be undone.")
        a, b = st.columns(2)
        if a.button("Yes, delete", type="primary", key=f"{key}_del_yes"):
            delete(user, rows[rows["id"].isin(pending)])
            ss.pop(f"{key}_confirm", None)
            st.rerun()
        if b.button("Keep them", key=f"{key}_del_no"):
            ss.pop(f"{key}_confirm", None)
            st.rerun()
    if n:
        a, b, c2 = st.columns([3, 1, 1])
        text = a.text_input("Tags (comma-separated)", key=tags_key(key, ids),
                            value=rows["tags"].iloc[0] if n == 1 else "",
                            max_chars=MAX_TAGS_TEXT,
                            help=f"At most {MAX_TAGS} tags per run, each 1 to {MAX_TAG_CHARS} characters.")
        if b.button("Add tags", key=f"{key}_tag_add"):
            set_tags(user, rows, text, replace=False)
            st.rerun()
        if c2.button("Replace tags", key=f"{key}_tag_set"):
            set_tags(user, rows, text, replace=True)
            st.rerun()
