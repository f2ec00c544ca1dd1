"""Saved views: a named page state (the page and its URL query string), stored in the ``saved_views``
table and visible to the whole team.

A view is the URL of a Compare, Strategies, Explorer or Runs page: every choice on those pages lives
in the query string, so saving one stores that string and opening one is a link to the page with it.
Names are unique per page. Deleting is the owner's or an admin's: callers that are not admins pass
``owner`` and only a view of that owner is deleted (checked in the same DELETE statement).

Bounds: one owner keeps at most MAX_VIEWS_PER_OWNER views (all pages together; the views saved without
an owner count as one owner), checked in the saving transaction, and list_views reads at most
MAX_LISTED rows (a SQL LIMIT), so the page that lists them on every render reads a bounded amount.
"""

from __future__ import annotations

import re
import unicodedata
import zlib
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import delete, func, select
from sqlalchemy.exc import IntegrityError

from db.engine import SQL_LOWER, session

PAGES = ("runs", "compare", "strategies", "explorer")
MAX_NAME = 100      # saved_views.name is String(100)
MAX_QUERY = 4096    # characters of the query string
MAX_OWNER = 100     # saved_views.owner is String(100)
MAX_VIEWS_PER_OWNER = 200   # views one owner keeps, all pages together
MAX_LISTED = 1000   # rows list_views reads at most (its SQL LIMIT)
# A percent-encoded query string: printable ASCII without spaces, quotes, '#' or angle brackets.
_QUERY_CHARS = re.compile(r"[A-Za-z0-9%&=+.,:;_~!*()'/?@$\-\[\]]*")


class ViewError(ValueError):
    """A saved view that cannot be stored or found; the message names the field and what is allowed."""


def _model():
    from db.models import SavedView  # the lead's ORM class (migration adds the table)

    return SavedView


def check_view(page: str, name: str, query: str, owner: str | None = None) -> tuple[str, str, str, str | None]:
    """The view's fields, cleaned (name stripped, a leading '?' dropped), or ViewError naming the field."""
    if page not in PAGES:
        raise ViewError(f"page: {page!r} cannot be saved as a view; allowed: {', '.join(PAGES)}")
    if not isinstance(name, str) or not name.strip():
        raise ViewError("name: give the view a name (1 to 100 characters)")
    name = name.strip()
    if len(name) > MAX_NAME:
        raise ViewError(f"name: at most {MAX_NAME} characters (this one has {len(name)})")
    bad = next((c for c in name if unicodedata.category(c) in ("Cc", "Cf")), None)
    if bad is not None:   # Cc: tabs, newlines; Cf: invisible format characters, e.g. U+202E (right-to-left)
        raise ViewError(f"name: control characters (tabs, newlines) and invisible format characters (bidi "
                        f"overrides, zero-width) are not allowed; this one has U+{ord(bad):04X}")
    if not isinstance(query, str):
        raise ViewError("query: must be the page's URL query string")
    query = query[1:] if query.startswith("?") else query
    if len(query) > MAX_QUERY:
        raise ViewError(f"query: the page's URL query string is at most {MAX_QUERY} characters "
                        f"(this one has {len(query)}); narrow the selection")
    if not _QUERY_CHARS.fullmatch(query):
        raise ViewError("query: must be a percent-encoded URL query string (no spaces, quotes, '#' or '<>')")
    if owner is not None:
        owner = str(owner)
        if not owner or len(owner) > MAX_OWNER:
            raise ViewError(f"owner: 1 to {MAX_OWNER} characters")
    return page, name, query, owner


def _too_many(owner: str | None, n: int) -> str:
    who = f"{owner!r} has" if owner is not None else "the views saved without an owner have"
    return (f"owner: {who} {n} saved views, and {MAX_VIEWS_PER_OWNER} is the limit per owner; delete one of "
            "them (the bin next to it in the Saved views list) to save another")


def save_view(page: str, name: str, query: str, owner: str | None = None, *, url: str | None = None) -> int:
    """Store a view and return its id. ViewError when a field is out of bounds, the page already has a
    view of that name, or the owner already keeps MAX_VIEWS_PER_OWNER views (counted in the same
    transaction: SQLite's write lock, on PostgreSQL a transaction lock per owner, so two saves at once
    cannot both take the last place)."""
    page, name, query, owner = check_view(page, name, query, owner)
    SavedView = _model()
    mine = SavedView.owner.is_(None) if owner is None else SavedView.owner == owner
    try:
        with session(url, write=True) as s:
            if s.get_bind().dialect.name == "postgresql":
                key = zlib.crc32(f"rnnlab.saved_views:{owner}".encode())
                s.execute(select(func.pg_advisory_xact_lock(key)))
            n = s.execute(select(func.count()).select_from(SavedView).where(mine)).scalar_one()
            if n >= MAX_VIEWS_PER_OWNER:
                raise ViewError(_too_many(owner, n))
            row = SavedView(page=page, name=name, query=query, owner=owner, created_at=datetime.now(UTC))
            s.add(row)
            s.flush()
            return int(row.id)
    except IntegrityError:
        raise ViewError(f"name: the {page} page already has a view named {name!r}; pick another name "
                        "or delete that one first") from None


def _selection(SavedView, page: str | None, find: str | None, dialect: str):
    if page is not None and page not in PAGES:
        raise ViewError(f"page: {page!r} has no saved views; allowed: {', '.join(PAGES)}")
    where = []
    if page is not None:
        where.append(SavedView.page == page)
    if find:
        lower = getattr(func, SQL_LOWER.get(dialect, "lower"))   # any letter, not only ASCII, on SQLite too
        where.append(lower(SavedView.name).contains(str(find)[:MAX_NAME].lower(), autoescape=True))
    return where


def list_views(page: str | None = None, *, find: str | None = None, limit: int | None = None,
               url: str | None = None) -> list[dict[str, Any]]:
    """The saved views (of one page, or all; with ``find``, those whose name contains it, any case), by
    page then name; plain dicts. At most ``limit`` rows (1 to MAX_LISTED, the default), read with a SQL LIMIT:
    count_views says how many there are."""
    SavedView = _model()
    limit = MAX_LISTED if limit is None else max(1, min(int(limit), MAX_LISTED))
    with session(url) as s:
        where = _selection(SavedView, page, find, s.bind.dialect.name)
        q = select(SavedView.id, SavedView.page, SavedView.name, SavedView.query, SavedView.owner,
                   SavedView.created_at).where(*where).order_by(SavedView.page, SavedView.name, SavedView.id)
        return [dict(r) for r in s.execute(q.limit(limit)).mappings()]


def count_views(page: str | None = None, *, find: str | None = None, owner: str | None = None,
                url: str | None = None) -> int:
    """How many saved views there are (of one page, or all; with ``find`` as in list_views; with
    ``owner``, that owner's)."""
    SavedView = _model()
    with session(url) as s:
        where = _selection(SavedView, page, find, s.bind.dialect.name)
        if owner is not None:
            where.append(SavedView.owner == owner)
        return int(s.execute(select(func.count()).select_from(SavedView).where(*where)).scalar_one())


def delete_view(view_id: int, *, owner: str | None = None, url: str | None = None) -> bool:
    """Delete a view; with ``owner``, only if that user owns it. True when a row was deleted."""
    SavedView = _model()
    stmt = delete(SavedView).where(SavedView.id == int(view_id))
    if owner is not None:
        stmt = stmt.where(SavedView.owner == owner)
    with session(url, write=True) as s:
        return s.execute(stmt).rowcount > 0
