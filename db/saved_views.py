"""Saved views: a named page state (the page and its URL query string), stored in the ``saved_views``
table and visible to the whole team.

A view is the URL of a Compare, Strategies, Explorer or Runs page: every choice on those pages lives
in the query string, so saving one stores that string and opening one is a link to the page with it.
Names are unique per page. Deleting is the owner's or an admin's: callers that are not admins pass
``owner`` and only a view of that owner is deleted (checked in the same DELETE statement).
"""

from __future__ import annotations

import re
import unicodedata
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError

from db.engine import session

PAGES = ("runs", "compare", "strategies", "explorer")
MAX_NAME = 100      # saved_views.name is String(100)
MAX_QUERY = 4096    # characters of the query string
MAX_OWNER = 100     # saved_views.owner is String(100)
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


def save_view(page: str, name: str, query: str, owner: str | None = None, *, url: str | None = None) -> int:
    """Store a view and return its id. ViewError when a field is out of bounds or the page already
    has a view of that name."""
    page, name, query, owner = check_view(page, name, query, owner)
    SavedView = _model()
    try:
        with session(url, write=True) as s:
            row = SavedView(page=page, name=name, query=query, owner=owner, created_at=datetime.now(UTC))
            s.add(row)
            s.flush()
            return int(row.id)
    except IntegrityError:
        raise ViewError(f"name: the {page} page already has a view named {name!r}; pick another name "
                        "or delete that one first") from None


def list_views(page: str | None = None, *, url: str | None = None) -> list[dict[str, Any]]:
    """Every saved view (of one page, or all), by page then name; plain dicts."""
    if page is not None and page not in PAGES:
        raise ViewError(f"page: {page!r} has no saved views; allowed: {', '.join(PAGES)}")
    SavedView = _model()
    q = select(SavedView.id, SavedView.page, SavedView.name, SavedView.query, SavedView.owner,
               SavedView.created_at).order_by(SavedView.page, SavedView.name, SavedView.id)
    if page is not None:
        q = q.where(SavedView.page == page)
    with session(url) as s:
        return [dict(r) for r in s.execute(q).mappings()]


def delete_view(view_id: int, *, owner: str | None = None, url: str | None = None) -> bool:
    """Delete a view; with ``owner``, only if that user owns it. True when a row was deleted."""
    SavedView = _model()
    stmt = delete(SavedView).where(SavedView.id == int(view_id))
    if owner is not None:
        stmt = stmt.where(SavedView.owner == owner)
    with session(url, write=True) as s:
        return s.execute(stmt).rowcount > 0
