"""The Runs page's filters as URL query parameters, and back.

``to_params`` turns the filter widgets' values into query parameters (defaults left out, lists as
repeated keys); ``from_params`` reads them back into widget values, bounded and checked against the
choices the page offers, and says what it dropped and why (naming the URL field). Pure functions:
the page applies them to ``st.query_params`` and ``st.session_state``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any
from urllib.parse import urlencode

from dashboard.page_context import MAX_ID, whole_number
from db.models import RUN_STATUSES

SORTS = ("newest", "oldest", "val_loss", "horizon")
PAGE_SIZES = (25, 50, 100, 200)
DEFAULT_PAGE_SIZE = 50
MAX_TEXT = 200        # characters of the search box, the spec field and its value
MAX_VALUES = 50       # values of one multi-choice filter
# the spec columns the page filters by: URL name -> (widget key, filter_options key)
SPEC_COLUMNS = {"task": "task", "cell": "cell", "activation": "activation", "init": "init", "clip": "clip",
                "layers": "num_layers", "T": "seq_len"}
# multi-choice filters: URL name -> widget key
MULTI = {"status": "flt_status", "tag": "flt_tags", **{u: f"flt_{c}" for u, c in SPEC_COLUMNS.items()}}
TEXT = {"q": "flt_search", "field": "flt_path", "equals": "flt_value"}
WIDGETS = {**MULTI, **TEXT, "sweep": "flt_sweep", "sort": "flt_sort", "per": "page_size"}
URL_KEYS = tuple(WIDGETS)
_PATH = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def text_problem(url_name: str, value: str) -> str | None:
    """Why a text filter's value (URL name 'q', 'field' or 'equals') cannot be used, or None: at most
    MAX_TEXT characters, no control characters, and for 'field' a dotted spec path (letters, digits and _,
    joined by dots; it is put into a JSON path, so a quote or a bracket would break the query). The URL
    and the typed boxes share it."""
    if not isinstance(value, str):
        return f"got {type(value).__name__}; expected text"
    if len(value) > MAX_TEXT:
        return f"at most {MAX_TEXT} characters (it has {len(value):,})"
    if _CONTROL.search(value):
        return "control characters are not allowed"
    if url_name == "field" and value and not _PATH.fullmatch(value):
        return (f"{value[:40]!r} is not a dotted spec path such as optimizer.lr (letters, digits and _, "
                f"joined by dots)")
    return None


def defaults() -> dict[str, Any]:
    """Widget key -> value of a page with no filters."""
    out: dict[str, Any] = {w: [] for w in MULTI.values()}
    out.update({w: "" for w in TEXT.values()})
    out.update({"flt_sweep": None, "flt_sort": "newest", "page_size": DEFAULT_PAGE_SIZE})
    return out


def choices(opts: Mapping[str, Any]) -> dict[str, list]:
    """URL name -> allowed values of each multi-choice filter, from db.queries.filter_options."""
    out: dict[str, list] = {"status": list(RUN_STATUSES), "tag": list(opts.get("tags", []))}
    for url_name, col in SPEC_COLUMNS.items():
        out[url_name] = list(opts.get(col, []))
    return out


def to_params(values: Mapping[str, Any]) -> dict[str, list[str]]:
    """Widget key -> value into URL name -> values, leaving out defaults (so a plain page has no query)."""
    d = defaults()
    out: dict[str, list[str]] = {}
    for url_name, widget in WIDGETS.items():
        v = values.get(widget, d[widget])
        if v is None or v == d[widget] or v == "" or v == []:
            continue
        out[url_name] = [str(x) for x in v] if isinstance(v, (list, tuple)) else [str(v)]
    return out


def query_string(params: Mapping[str, Sequence[str]]) -> str:
    return urlencode([(k, v) for k, vs in params.items() for v in vs])


def from_params(params: Mapping[str, Sequence[str]], opts: Mapping[str, Any],
                sweep_exists: Callable[[int], bool] | None = None) -> tuple[dict[str, Any], list[str]]:
    """URL name -> values (as ``st.query_params.get_all`` gives them) into widget key -> value for every
    filter (defaults where the URL has none), and the problems found. A value that is not allowed is
    dropped with a message naming its URL field; the rest of the URL still applies. A sweep id is
    looked up in ``opts["sweeps"]`` (the newest ones), then with ``sweep_exists`` (any sweep)."""
    out = defaults()
    problems: list[str] = []
    allowed = choices(opts)
    for url_name, widget in MULTI.items():
        vals = list(params.get(url_name) or [])
        if not vals:
            continue
        if len(vals) > MAX_VALUES:
            problems.append(f"URL field '{url_name}': {len(vals)} values; at most {MAX_VALUES}, so it was ignored.")
            continue
        by_text = {str(c): c for c in allowed[url_name]}
        kept, unknown = [], []
        for v in vals:
            (kept if v in by_text else unknown).append(v)
        if unknown:
            shown = ", ".join(repr(u[:40]) for u in unknown[:5])
            what = "run statuses: " + ", ".join(RUN_STATUSES) if url_name == "status" else "values in the database"
            problems.append(f"URL field '{url_name}': {shown} not among the {what}; ignored.")
        out[widget] = list(dict.fromkeys(by_text[v] for v in kept))
    for url_name, widget in TEXT.items():
        v = _last(params, url_name)
        if v is None:
            continue
        problem = text_problem(url_name, v)
        if problem:
            problems.append(f"URL field '{url_name}': {problem}; ignored.")
        else:
            out[widget] = v
    sweep = _last(params, "sweep")
    if sweep is not None:
        ids = {int(s["id"]) for s in opts.get("sweeps", [])}
        sid, bad = whole_number(sweep, "URL field 'sweep'", 1, MAX_ID)
        if bad:
            problems.append(bad)
        elif sid in ids or (sweep_exists is not None and sweep_exists(sid)):
            out["flt_sweep"] = sid
        else:
            problems.append(f"URL field 'sweep': {sweep[:40]!r} is not the id of a sweep in the database; ignored.")
    sort = _last(params, "sort")
    if sort is not None:
        if sort in SORTS:
            out["flt_sort"] = sort
        else:
            problems.append(f"URL field 'sort': {sort[:40]!r}; allowed: {', '.join(SORTS)}.")
    per = _last(params, "per")
    if per is not None:
        if per in {str(p) for p in PAGE_SIZES}:
            out["page_size"] = int(per)
        else:
            problems.append(f"URL field 'per': {per[:40]!r} runs per page; allowed: "
                            f"{', '.join(map(str, PAGE_SIZES))}.")
    if out["flt_value"] and not out["flt_path"]:
        out["flt_value"] = ""
    return out, problems


def _last(params: Mapping[str, Sequence[str]], key: str) -> str | None:
    vals = params.get(key) or []
    return str(vals[-1]) if vals else None
