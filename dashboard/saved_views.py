"""Saved views in the sidebar: 'Save this view' stores the page's URL query string under a name
(db.saved_views), and the team's views of the page are listed as links to the page with that query.

A page adds it with one line, after it has written its state to ``st.query_params``:

    saved_views.panel(page="compare")
"""

from __future__ import annotations

from urllib.parse import parse_qs, urlencode

import streamlit as st
from sqlalchemy.exc import SQLAlchemyError

from dashboard import auth
from dashboard.auth import User, can
from dashboard.components import plain
from db import saved_views as sv

PAGE_FILES = {"runs": "app_pages/runs.py", "compare": "app_pages/compare.py",
              "strategies": "app_pages/strategies.py", "explorer": "app_pages/explorer.py"}
MAX_LISTED = 50     # links shown at once in the sidebar
FIND_FROM = 10      # with more views than this, a box filters them by name
PAGE_TITLES = {"runs": "Runs", "compare": "Compare", "strategies": "Strategies", "explorer": "Explorer"}


def current_query() -> str:
    """This page's URL query string (repeated keys kept)."""
    qp = st.query_params
    return urlencode([(k, v) for k in qp.keys() for v in qp.get_all(k)])


def may_save(user: User) -> bool:
    """Members and admins save views; viewers only open them."""
    return can(user, "submit")


def may_delete(user: User, view: dict) -> bool:
    """The view's owner or an admin."""
    return user.role == "admin" or (view.get("owner") is not None and view["owner"] == user.name)


def _save(user: User, page: str, name: str) -> None:
    try:
        sv.save_view(page, name, current_query(), owner=user.name)
    except sv.ViewError as e:   # a field out of bounds, a taken name, or the owner's MAX_VIEWS_PER_OWNER reached
        st.session_state[f"sv_{page}_msg"] = ("error", str(e))
        return
    except SQLAlchemyError as e:   # the database refused the write (down, read-only, disk full)
        st.session_state[f"sv_{page}_msg"] = ("error", f"The view was not saved: the database refused the write "
                                                       f"({type(e).__name__}); try again later")
        return
    st.session_state[f"sv_{page}_msg"] = ("success", f"Saved the view {name.strip()!r}.")


def _delete(user: User, page: str, view: dict) -> None:
    ok = sv.delete_view(view["id"], owner=None if user.role == "admin" else user.name)
    st.session_state[f"sv_{page}_msg"] = (("success", f"Deleted the view {view['name']!r}.") if ok else
                                          ("warning", f"The view {view['name']!r} was not deleted: it is gone, "
                                                      "or it is not yours."))


def panel(page: str, user: User | None = None, container=None) -> None:
    """The saved-views box of ``page`` (one of db.saved_views.PAGES), in the sidebar by default."""
    user = user or auth.current_user()
    box = container if container is not None else st.sidebar
    with box:
        st.subheader("Saved views", divider="gray")
        kind, text = st.session_state.pop(f"sv_{page}_msg", (None, None))
        if kind:
            getattr(st, kind)(plain(text))
        if may_save(user):
            with st.form(f"sv_{page}_form", clear_on_submit=True, border=False):
                name = st.text_input("Name this view", max_chars=sv.MAX_NAME, key=f"sv_{page}_name",
                                     placeholder="e.g. diverged LSTMs")
                if st.form_submit_button("Save this view", icon=":material/bookmark_add:", key=f"sv_{page}_save"):
                    _save(user, page, name)
                    st.rerun()
        try:   # at most MAX_LISTED + 1 rows are read (a SQL LIMIT), the name filter runs in the query
            views = sv.list_views(page, limit=MAX_LISTED + 1)
            find = ""
            if len(views) > FIND_FROM or st.session_state.get(f"sv_{page}_find"):
                find = st.text_input("Find a view", max_chars=sv.MAX_NAME, key=f"sv_{page}_find").strip()
                if find:
                    views = sv.list_views(page, find=find, limit=MAX_LISTED + 1)
            total = sv.count_views(page, find=find or None) if len(views) > MAX_LISTED else len(views)
        except Exception as e:  # noqa: BLE001 - e.g. a database without the saved_views table yet
            st.warning(plain(f"Saved views are unavailable: {type(e).__name__}: {e}"))
            return
        if not views:
            st.markdown(plain(f"No saved {PAGE_TITLES[page]} views match {find!r}.") if find else
                        f"No saved {PAGE_TITLES[page]} views yet.")
        if len(views) > MAX_LISTED:
            st.markdown(f"The first {MAX_LISTED} of {total} views; type part of a name to find others.")
            views = views[:MAX_LISTED]
        for v in views:
            a, b = st.columns([5, 1], vertical_alignment="center")
            a.page_link(PAGE_FILES[page], label=plain(v["name"]), icon=":material/bookmark:",
                        query_params=parse_qs(v["query"], keep_blank_values=True),
                        help=plain(f"by {v['owner'] or 'unknown'}, {v['created_at']:%Y-%m-%d %H:%M}"))
            if may_delete(user, v) and b.button("", icon=":material/delete:", key=f"sv_del_{v['id']}",
                                                help=plain(f"Delete the view {v['name']}")):
                _delete(user, page, v)
                st.rerun()
