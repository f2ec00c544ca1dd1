"""A page's context across page changes: Streamlit forgets a page's widgets and URL query when you open
another page. ``restore`` puts the page's last query back when it is opened without one, and
``remember`` keeps it (in the session, outside any widget state). The page then reads its state from
``st.query_params`` as usual and checks it (``run_ids``, ``run_id``)."""

from __future__ import annotations

import re

import streamlit as st

MAX_ID = 2 ** 53 - 1          # a database key the browser's number input can hold exactly
MAX_IDS_TEXT = 400            # characters of a typed or linked id list


def restore(page: str, keys: tuple[str, ...]) -> bool:
    """If the URL names none of ``keys``, put back the page's last remembered query; True if it did."""
    qp = st.query_params
    saved = st.session_state.get(f"_ctx_{page}")
    if not saved or any(k in qp for k in keys):
        return False
    for k, v in saved.items():
        qp[k] = v
    return True


def remember(page: str, keys: tuple[str, ...]) -> None:
    qp = st.query_params
    st.session_state[f"_ctx_{page}"] = {k: qp[k] for k in keys if k in qp}


def run_ids(text: str | None, field: str, limit: int) -> tuple[list[int], list[str]]:
    """'12, 13 14' → ([12, 13, 14], problems): ids in order, duplicates dropped, at most ``limit``;
    each problem (a token that is no run id, too many ids, too long a text) is a message naming
    ``field`` and what is allowed."""
    text = text or ""
    problems = []
    if len(text) > MAX_IDS_TEXT:
        problems.append(f"{field}: the list is longer than {MAX_IDS_TEXT} characters; only its start is read.")
        text = text[:MAX_IDS_TEXT].rsplit(",", 1)[0] if "," in text[:MAX_IDS_TEXT] else text[:MAX_IDS_TEXT]
    ids, bad = [], []
    for tok in (t for t in re.split(r"[\s,;]+", text) if t):
        if _is_id(tok):
            ids.append(int(tok))
        else:
            bad.append(tok[:20])
    if bad:
        problems.append(f"{field}: {', '.join(repr(b) for b in bad[:5])}{' …' if len(bad) > 5 else ''} "
                        f"{'is' if len(bad) == 1 else 'are'} not run ids (whole numbers from 1 to {MAX_ID}, "
                        "separated by commas); ignored.")
    ids = list(dict.fromkeys(ids))
    if len(ids) > limit:
        problems.append(f"{field}: {len(ids)} runs given; at most {limit} are shown, the first {limit}.")
        ids = ids[:limit]
    return ids, problems


def run_id(text: str | None, field: str = "run") -> tuple[int | None, str | None]:
    """One run id from the URL, or (None, a message naming ``field``) when it is not one."""
    if text is None or text == "":
        return None, None
    t = text.strip()
    if _is_id(t):
        return int(t), None
    return None, f"{field}: {text[:40]!r} is not a run id (a whole number from 1 to {MAX_ID})."


def _is_id(tok: str) -> bool:
    return tok.isascii() and tok.isdigit() and len(tok) <= 16 and 1 <= int(tok) <= MAX_ID
