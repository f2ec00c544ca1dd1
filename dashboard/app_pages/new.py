"""New experiment: one job or a sweep from a form (or a preset, or a clone of a run), checked for
errors and duplicates, with a time estimate, then submitted to the queue."""

import pandas as pd
import streamlit as st
import yaml

from dashboard import estimate, forms, page_context, reads, sweeps
from dashboard.auth import can, current_user
from dashboard.components import plain, spec_diff, table
from dashboard.presets import PRESETS
from db.store import MAX_TAG_CHARS, MAX_TAGS, MAX_TAGS_TEXT
from rnnlab.settings import get_settings

user = current_user()
ss = st.session_state
limits = get_settings().limits
forms.ensure_defaults(ss)
st.title("New experiment")

clone = st.query_params.get("clone")
clone_id, bad = page_context.whole_number(clone, "URL field 'clone' (a run id)", 1, page_context.MAX_ID)
if bad:
    st.warning(bad, icon=":material/link_off:")
if clone_id is not None and ss.get("_cloned") != clone:
    source = reads.run(clone_id)
    if source is None:
        st.warning(f"Run {clone_id} was not found; starting from the defaults.")
    else:
        forms.load_spec(ss, source["spec"])
        ss["_clone_spec"], ss["mode"] = source["spec"], "Single run"
    ss["_cloned"] = clone


def _load_preset() -> None:
    _, sweep = PRESETS[ss["preset"]]
    forms.load_spec(ss, sweep.base)
    sweeps.load_sweep(ss, sweep)
    ss["mode"] = "Sweep"


with st.expander("Presets", icon=":material/science:"):
    st.selectbox("Preset", list(PRESETS), key="preset")
    st.caption(plain(PRESETS[ss["preset"]][0]))
    st.button("Load this preset into the form", on_click=_load_preset, key="load_preset")

ss.setdefault("mode", "Single run")
mode = st.segmented_control("What to run", ["Single run", "Sweep"], key="mode") or "Single run"
if mode == "Sweep":
    st.subheader("Sweep: fields to vary")
    slots: dict = {}
    vary, seeds, name, builder_errors, points = sweeps.render_builder(limits, slots)   # shows its own errors
    plan = sweeps.build(forms.collect(ss), vary, seeds, name, limits, url=reads.db_url(), points=points)
    sweeps.show_errors(plan, slots)   # a bad varied value: under its editor, named vary.<path>[i]
    st.subheader("Base spec")
    forms.render(plan.form_errors, limits)
    errors = builder_errors + plan.errors
else:
    spec, errors = forms.validate(forms.collect(ss), limits)
    forms.render(errors, limits)
    plan = sweeps.plan_one(spec, url=reads.db_url()) if spec else None

st.divider()
st.subheader("Check and submit")
specs = []
if errors:
    st.error(f"{len(errors)} problem(s) above; nothing can be submitted until they are fixed.", icon=":material/block:")
elif plan and plan.specs:
    dups, in_db = plan.duplicates, plan.existing
    skip = ss.get("skip_dups", True) if (dups or in_db) else False
    specs = sweeps.to_submit(plan, skip)   # the estimate counts only what is submitted
    cal = estimate.calibrate(reads.timing_samples())
    from client.submit import queues_for
    from db.store import queue_for
    from rnnlab.queue import auto_queue

    auto = auto_queue()
    run_queues = [queue_for(s, auto) for s in specs]   # the queue each run is sent to
    waiting = reads.unserved_queues(queues_for(specs))   # no live worker takes runs from these queues
    times = [estimate.seconds(s, cal) for s in specs]
    # each queue's runs on the slots of the live workers that consume that queue
    total = sum(times)
    wall, n_slots = estimate.wall_by_queue(times, run_queues, reads.workers())
    a, b, c = st.columns(3)
    a.metric("Runs", len(specs), help=f"{len(plan.specs)} planned; {len(plan.specs) - len(specs)} skipped as "
             "duplicates" if skip else "every planned run is submitted")
    b.metric("Duplicates", f"{len(dups)} in sweep · {len(in_db)} in DB")
    c.metric("Time estimate", f"≈ {estimate.fmt(total)}",
             help=f"compute time summed over the runs submitted; measured times fell within "
                  f"{estimate.fmt_span(total)} (docs/dashboard.md, \"Time estimate\")")
    st.caption(f"{estimate.describe(total, max(n_slots, 1), wall, ranged=True)}; "
               + (f"calibrated on {cal.n} finished run(s) of at least {estimate.MIN_STEPS} steps." if cal.n
                  else "default model (no finished runs of at least "
                       f"{estimate.MIN_STEPS} steps yet).")
               + ("" if not waiting else f" No live worker serves the {', '.join(waiting)} queue right now: "
                  f"these runs will wait until one starts (`{reads.serve_hint(waiting[0])}`)."))
    if dups or in_db:
        rows = [{"#": j + 1, "same as": f"#{i + 1} in this sweep", "label": plan.specs[j].label()} for i, j in dups]
        rows += [{"#": i + 1, "same as": "runs " + ", ".join(map(str, ids)), "label": plan.specs[i].label()}
                 for i, ids in in_db.items()]
        with st.expander(f"{len(rows)} duplicate(s)", expanded=True):
            table(pd.DataFrame(rows), "duplicates", key="dups_table")
        st.checkbox("Skip the duplicates (submit each distinct spec once, and nothing already in the DB)",
                    value=True, key="skip_dups")
    if ss.get("_clone_spec") and mode == "Single run" and specs:
        st.markdown(f"**Changes from run {plain(ss['_cloned'])}**")
        diff = spec_diff({"original": ss["_clone_spec"], "this run": specs[0].to_dict()})
        if len(diff):
            table(diff, "clone_diff", key="clone_diff")
        else:
            st.caption("No change: this re-runs the same spec.")
    with st.expander("Preview the spec(s)"):
        if len(specs) == 1:
            st.code(yaml.safe_dump(specs[0].to_dict(), sort_keys=False), language="yaml")
        else:
            table(pd.DataFrame([{"#": k + 1, "label": s.label(), "hash": s.spec_hash()[:12],
                                 "spec": s.model_dump_json()}
                                for k, s in enumerate(specs)]), "sweep_specs", key="sweep_specs")

tags = st.text_input("Tags (comma-separated)", key="submit_tags", max_chars=MAX_TAGS_TEXT,
                     help=f"Added to every run submitted now: at most {MAX_TAGS} tags, each 1 to "
                          f"{MAX_TAG_CHARS} characters.")
allowed = can(user, "submit")
if not allowed:
    st.info("Your role cannot submit runs.")
if st.button(f"Submit {len(specs)} run(s)", type="primary", disabled=bool(errors) or not specs or not allowed,
             key="submit"):
    from client.submit import submit

    try:
        ids = submit(specs, owner=user.name, tags=[t.strip() for t in tags.split(",") if t.strip()],
                     sweep=plan.sweep)
    except Exception as e:  # noqa: BLE001 - a broker/database failure is shown, not raised
        st.error(f"Submitting failed: {plain(type(e).__name__)}: {plain(e)}")
    else:
        reads.clear()
        ss["last_submitted"] = ids
if ss.get("last_submitted"):
    ids = ss["last_submitted"]
    st.success(f"Submitted {len(ids)} run(s): {', '.join(map(str, ids[:20]))}{'…' if len(ids) > 20 else ''}")
    a, b = st.columns(2)
    a.page_link("app_pages/runs.py", label="Watch them on the Runs page", icon=":material/list:")
    b.page_link("app_pages/compare.py", label="Compare them", icon=":material/compare:",
                query_params={"runs": ",".join(map(str, ids[:12]))})
