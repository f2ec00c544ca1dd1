"""Query: a read-only SQL console on the results database (the connection itself refuses writes),
bounded by db.console (statement timeout, row limit, per-value and total byte caps), with one-click
examples and CSV download."""

import streamlit as st

from dashboard.auth import can, current_user
from dashboard.components import plain, table
from db import console as q
from rnnlab.settings import get_settings

user = current_user()
st.title("Query (read-only SQL)")
s = get_settings()
if not can(user, "sql"):
    st.warning("Your role cannot use the SQL console.")
    st.stop()
lim = q.limits()
st.caption(f"Database: {plain(q.db_label(s.readonly_database_url or s.db_url))} · timeout {lim.timeout_s:g} s · "
           f"at most {lim.row_limit:,} rows, {lim.max_bytes // 2**20} MB in all and {lim.max_value_bytes // 2**20} MB "
           "per value · the tables are documented in docs/schema.md")


@st.cache_data(ttl=300, show_spinner=False)
def examples() -> list[tuple[str, str]]:
    return q.example_queries()


def _use(sql: str) -> None:
    st.session_state["sql_text"] = sql


ex = examples()
if ex:
    with st.expander(f"Example queries ({len(ex)})", expanded=True, icon=":material/lightbulb:"):
        cols = st.columns(3)
        for k, (title, sql) in enumerate(ex):
            cols[k % 3].button(title[:60], key=f"ex_{k}", on_click=_use, args=(sql,), help=sql[:500],
                               width="stretch")
FIRST = "SELECT id, status, cell, task, last_val_loss FROM runs ORDER BY id DESC LIMIT 20"
st.session_state.setdefault("sql_text", ex[0][1] if ex else FIRST)
sql = st.text_area("SQL", key="sql_text", height=180)
if st.button("Run", type="primary", key="sql_run", icon=":material/play_arrow:"):
    try:
        df, truncated = q.run_sql(sql, s.sql_timeout_seconds, s.sql_row_limit)
    except q.QueryError as e:
        st.session_state["sql_result"] = None
        st.error(f"The database refused the query: {plain(e)}", icon=":material/error:")
    else:
        st.session_state["sql_result"] = (df, truncated)
res = st.session_state.get("sql_result")
if res is not None:
    df, truncated = res
    st.caption(f"{len(df):,} row(s)" + (f" (the rest were left out at {plain(truncated)})" if truncated else ""))
    if df.columns.empty:
        st.info("The statement returned no rows.")
    else:
        table(df.astype({c: str for c in df.columns if df[c].dtype == object}), "query_result", key="sql_table")
