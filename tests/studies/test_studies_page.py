"""The dashboard's Studies page (streamlit AppTest on a real SQLite database with planted runs): the
list shows every study with its verdict, the result page its checks, numbers and figures."""

from __future__ import annotations

from collections import Counter

import studies
from tests.conftest import REPO
from tests.studies.helpers import plant

PAGE = str(REPO / "dashboard" / "app_pages" / "studies.py")
ACT = studies.get("activations")
GOOD = {"sigmoid": (-30.0, 4.0), "tanh": (-1.0, 49.0), "relu": (-0.2, 49.0)}


def open_studies(**query):
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(PAGE, default_timeout=60)
    for k, v in query.items():
        at.query_params[k] = v
    return at.run()


def text_of(at) -> str:
    kinds = ("markdown", "success", "warning", "error", "caption", "title", "subheader")
    return "\n".join(str(m.value) for kind in kinds for m in getattr(at, kind)).replace("\\", "")


def test_list_shows_each_study_with_its_verdict(page_db):
    plant(ACT, page_db, lambda spec: {"log_ratio0": GOOD[spec.activation][0], "horizon0": GOOD[spec.activation][1]})
    at = open_studies()
    assert not at.exception, [e.value for e in at.exception]
    txt = text_of(at)
    for st_ in studies.STUDIES.values():
        assert st_.title in txt or st_.name in txt
    assert "reproduced — every check holds on all 3 seeds" in txt
    assert "pending — no runs of this study at this scale yet" in txt
    # a Run button per study and scale without runs: activations/cpu (9 runs) has its runs already, so
    # only adding's two 9-run scales (and temporal-order's) offer one; activations/paper and recurrent-init/cpu
    # have 15 runs
    labels = [b.label for b in at.button]
    want = Counter(f"Run ({st_.n_runs(sc)} runs)" for st_ in studies.STUDIES.values() for sc in st_.scales
                   if (st_.name, sc) != ("activations", "cpu"))
    assert want["Run (9 runs)"] >= 2 and want["Run (15 runs)"] == 2
    assert Counter(x for x in labels if x.startswith("Run (")) == want


def test_result_page_shows_checks_numbers_and_figures(page_db):
    plant(ACT, page_db, lambda spec: {"log_ratio0": GOOD[spec.activation][0], "horizon0": GOOD[spec.activation][1]})
    at = open_studies(study="activations", scale="cpu")
    assert not at.exception, [e.value for e in at.exception]
    assert any("Verdict: reproduced" in s.value for s in at.success)
    frames = [d.value for d in at.dataframe]
    checks, numbers = frames[0], frames[1]
    assert list(checks["seed 0"]) == ["holds", "holds"]
    row = numbers[(numbers["group"] == "tanh") & numbers["quantity"].str.startswith("log10")].iloc[0]
    assert row["seed 1"] == "−1"


def test_unknown_study_in_the_url_falls_back_to_the_list(page_db):
    at = open_studies(study="nope")
    assert not at.exception
    assert any("there is no study 'nope'" in w.value for w in at.warning)
