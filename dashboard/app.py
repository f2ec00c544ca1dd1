"""rnnlab dashboard entry point (``streamlit run dashboard/app.py``): declares the pages only."""

import streamlit as st

from dashboard.auth import current_user
from dashboard.components import IMAGE_FORMATS, guard, plain

st.set_page_config(page_title="rnnlab", page_icon=":material/ssid_chart:", layout="wide")
st.set_option("client.showErrorDetails", "none")  # errors as messages, never tracebacks

user = current_user()
pages = {
    "Experiments": [
        st.Page("app_pages/new.py", title="New experiment", icon=":material/add_circle:", url_path="new"),
        st.Page("app_pages/runs.py", title="Runs", icon=":material/list:", url_path="runs", default=True),
        st.Page("app_pages/run_detail.py", title="Run detail", icon=":material/monitoring:", url_path="run"),
    ],
    "Analysis": [
        st.Page("app_pages/compare.py", title="Compare", icon=":material/compare:", url_path="compare"),
        st.Page("app_pages/strategies.py", title="Strategies", icon=":material/insights:", url_path="strategies"),
        st.Page("app_pages/studies.py", title="Studies", icon=":material/science:", url_path="studies"),
        st.Page("app_pages/explorer.py", title="Explorer", icon=":material/scatter_plot:", url_path="explorer"),
        st.Page("app_pages/query.py", title="Query (SQL)", icon=":material/database:", url_path="query"),
    ],
}
page = st.navigation(pages)
with st.sidebar:
    st.caption(plain(f"Signed in as {user.name} ({user.role})"))
    st.radio("Chart download format", IMAGE_FORMATS, key="image_format", horizontal=True,
             format_func=str.upper, help="The camera button of every chart saves this format.")
with guard(page.title):
    page.run()
