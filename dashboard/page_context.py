"""A page's context across page changes: Streamlit forgets a page's widgets and URL query when you open
another page. ``restore`` puts the page's last query back when it is opened without one, and
``remember`` keeps it (in the session, outside any widget state). The page then reads its state from
``st.query_params`` as usual and checks it (``run_ids``, ``run_id``)."""

from __future__ import annotations

import math
import re

import streamlit as st

from db.reads import MAX_RUN_ID

MAX_ID = MAX_RUN_ID           # the largest run id, 2**31 - 1: runs.id is a 32-bit integer on PostgreSQL
MAX_IDS_TEXT = 400            # characters of a typed or linked id list


def restore(page: str, keys: tuple[str, ...]) -> bool:
    """If the URL names none of ``keys``, put back the page's last remembered query, except the keys the
    URL has (a link's ?smooth=0.5 wins over the remembered smoothing); True if it did."""
    qp = st.query_params
    saved = st.session_state.get(f"_ctx_{page}")
    if not saved or any(k in qp for k in keys):
        return False
    for k, v in saved.items():
        if k not in qp:
            qp[k] = v
    return True


def remember(page: str, keys: tuple[str, ...]) -> None:
    qp = st.query_params
    st.session_state[f"_ctx_{page}"] = {k: qp[k] for k in keys if k in qp}


def run_ids(text: str | None, field: str, limit: int) -> tuple[list[int], list[str]]:
    """'12, 13 14' or '3-6' → ([12, 13, 14] or [3, 4, 5, 6], problems): ids in order, duplicates dropped,
    at most ``limit``; a range a-b means every run from a to b. Each problem (a token that is no run id,
    a range that ends before it starts or that spans more than ``limit`` runs, too many ids, too long a
    text) is a message naming ``field`` and what is allowed."""
    text = text or ""
    problems = []
    if len(text) > MAX_IDS_TEXT:
        problems.append(f"{field}: the list is longer than {MAX_IDS_TEXT} characters; only its start is read.")
        text = text[:MAX_IDS_TEXT].rsplit(",", 1)[0] if "," in text[:MAX_IDS_TEXT] else text[:MAX_IDS_TEXT]
    text = _RANGE_GAP.sub(r"\1-", text)   # '3 - 6' and '3–6' are the range 3-6
    ids: dict[int, None] = {}
    wrong: dict[str, list[str]] = {"bad": [], "backwards": [], "too_long": []}
    for tok in (t for t in re.split(r"[\s,;]+", text) if t):
        got, problem = _id_token(tok, limit)
        if problem:
            wrong[problem].append(tok[:20] if problem == "bad" else tok[:40])
        ids.update(dict.fromkeys(got))
        if len(ids) > limit:
            problems += _token_problems(field, limit, wrong)
            problems.append(f"{field}: more than {limit} runs given; at most {limit} are shown, the first {limit}.")
            return list(ids)[:limit], problems
    return list(ids), problems + _token_problems(field, limit, wrong)


def _id_token(tok: str, limit: int) -> tuple[range, str | None]:
    """The ids of one token (an id, or a range a-b of at most ``limit`` runs), or what is wrong with it:
    'bad' (no id), 'backwards' (b < a) or 'too_long'."""
    if _is_id(tok):
        return range(int(tok), int(tok) + 1), None
    lo, sep, hi = tok.partition("-")
    if not (sep and _is_id(lo) and _is_id(hi)):
        return range(0), "bad"
    a, b = int(lo), int(hi)
    if b < a:
        return range(0), "backwards"
    if b - a + 1 > limit:
        return range(0), "too_long"
    return range(a, b + 1), None


def _token_problems(field: str, limit: int, wrong: dict[str, list[str]]) -> list[str]:
    out = []
    bad, backwards, too_long = wrong["bad"], wrong["backwards"], wrong["too_long"]
    if bad:
        out.append(f"{field}: {', '.join(repr(b) for b in bad[:5])}{' …' if len(bad) > 5 else ''} "
                   f"{'is' if len(bad) == 1 else 'are'} not run ids (whole numbers from 1 to {MAX_ID}, "
                   "separated by commas, or ranges such as 3-6); ignored.")
    if backwards:
        out.append(f"{field}: the range {', '.join(backwards[:3])} ends before it starts (write the smaller id "
                   "first, e.g. 3-6); ignored.")
    if too_long:
        out.append(f"{field}: the range {', '.join(too_long[:3])} spans more than {limit} runs, the most allowed "
                   "here; ignored.")
    return out


_RANGE_GAP = re.compile(r"(\d)\s*[-\u2013]\s*(?=\d)")


def run_id(text: str | None, field: str = "run") -> tuple[int | None, str | None]:
    """One run id from the URL, or (None, a message naming ``field``) when it is not one."""
    if text is None or text == "":
        return None, None
    t = text.strip()
    if _is_id(t):
        return int(t), None
    return None, f"{field}: {text[:40]!r} is not a run id (a whole number from 1 to {MAX_ID})."


def whole_number(text: str | None, field: str, lo: int, hi: int) -> tuple[int | None, str | None]:
    """A whole number from ``lo`` to ``hi`` read from the URL, or (None, a message naming ``field`` and
    what is allowed) when ``text`` is anything else: only the ASCII digits 0-9 count ('²' and '٣' are
    digits to str.isdigit but not numbers), and no more of them than ``hi`` has."""
    if text is None or text == "":
        return None, None
    t = text.strip()
    if t.isascii() and t.isdigit() and len(t) <= len(str(hi)) and lo <= int(t) <= hi:
        return int(t), None
    return None, f"{field}: {text[:40]!r} is not a whole number from {lo} to {hi}; ignored."


def number_in_range(text: str | None, field: str, lo: float, hi: float, default: float) -> tuple[float, str | None]:
    """A finite number from ``lo`` to ``hi`` read from the URL; ``default`` when absent, and (``default``, a
    message naming ``field`` and what is allowed) when it is anything else (NaN, inf and junk included)."""
    if text is None:
        return default, None
    try:
        v = float(text)
    except ValueError:
        v = math.nan
    if not (math.isfinite(v) and lo <= v <= hi):
        return default, f"{field}: {text[:40]!r} is not a number from {lo:g} to {hi:g}; using {default:g}."
    return v, None


def _is_id(tok: str) -> bool:
    return tok.isascii() and tok.isdigit() and len(tok) <= 10 and 1 <= int(tok) <= MAX_ID
