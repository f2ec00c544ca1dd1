"""A study's report: one self-contained HTML file (figures as inline SVG, no scripts, no external
links, so it opens offline) and the same content as Markdown.

Each holds: the claim and its source, the verdict and why, the runs a re-run superseded (Outcome.notes),
the per-seed checks, every number with its
seed interval and the SQL that re-derives it, the figures, the specs of both scales, what differs from
the paper, the code version and the database URL with its secrets removed.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from html import escape

from studies import svg
from studies.core import Outcome, Study, fmt

_SECRET_KEYS = ("password", "passwd", "secret", "token", "key", "sslpassword")


def safe_url(url: str) -> str:
    """The database URL without its password and without secret query parameters."""
    from sqlalchemy.engine import make_url

    try:
        u = make_url(url)
    except Exception:  # noqa: BLE001 - never echo an unparsable URL, it may hold a secret
        return "(unparsable URL)"
    if u.password is not None:
        u = u.set(password="***")
    q = {k: ("***" if any(s in k.lower() for s in _SECRET_KEYS) else v) for k, v in u.query.items()}
    return u.set(query=q).render_as_string(hide_password=True)


def _verdict_color(v: str) -> str:
    return {"reproduced": "#1a7f37", "not reproduced": "#cf222e"}.get(v, "#9a6700")


def _spec_text(study: Study, scale: str) -> str:
    """The scale's sweep as a sweep file (`rnnlab submit` takes it): base, the explicit points when it
    has any, vary and the seeds."""
    sc = study.scale(scale)
    doc = {"base": sc.base, **({"points": list(sc.points)} if sc.points else {}), "vary": sc.vary,
           "seeds": list(sc.seeds)}
    return json.dumps(doc, indent=2, ensure_ascii=False)


# a check's value on a seed: it holds, it fails, or the seed gives no evidence either way (Check.mark)
MARK = {"holds": "holds", "fails": "FAILS", "no evidence": "no evidence"}
_HTML_MARK = {"holds": "✔ holds", "fails": "✘ fails", "no evidence": "– no evidence"}


def _seed_cells(per_seed: dict[int, float], seeds: list[int], spec: str) -> list[str]:
    return [fmt(per_seed[s], spec) if s in per_seed else "—" for s in seeds]


def html(study: Study, out: Outcome, *, url: str, code_version: str, generated: datetime | None = None) -> str:
    generated = generated or datetime.now(UTC)
    seeds = out.seeds_complete
    e = escape
    parts = [
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>",
        f"<title>Study {e(study.name)} v{study.version} ({e(out.scale)}): {e(out.verdict)}</title>",
        "<style>body{font-family:sans-serif;max-width:960px;margin:2em auto;padding:0 1em;color:#222}"
        "table{border-collapse:collapse;margin:0.5em 0}td,th{border:1px solid #ccc;padding:3px 7px;"
        "text-align:left;font-size:13px}pre{background:#f6f8fa;padding:8px;overflow-x:auto;font-size:12px}"
        ".v{font-weight:bold;padding:2px 8px;border-radius:4px;color:#fff}</style></head><body>",
        f"<h1>{e(study.title)} <small>({e(study.name)} v{study.version}, {e(out.scale)} scale)</small></h1>",
        f"<p><b>Claim.</b> {e(study.claim)}</p>",
        f"<p><b>Source.</b> {e(study.source)}</p>",
        f"<p><b>Verdict:</b> <span class='v' style='background:{_verdict_color(out.verdict)}'>{e(out.verdict)}"
        f"</span> — {e(out.reason)}.</p>",
        f"<p>Runs: {out.expected_runs} expected, tag <code>{e(out.tag)}</code>; by status: "
        f"{e(', '.join(f'{k} {v}' for k, v in sorted(out.counts.items())) or 'none')}; complete seeds: "
        f"{e(', '.join(map(str, seeds)) or 'none')}.</p>",
        *([f"<p><b>Re-runs.</b> One run per seed and grid point is analysed, the latest finished one: "
           f"{e('; '.join(out.notes))}.</p>"] if out.notes else []),
        "<h2>Checks (each decided on each seed)</h2><table><tr><th>check</th>"
        + "".join(f"<th>seed {s}</th>" for s in seeds) + "</tr>",
    ]
    for c in out.checks:
        parts.append(f"<tr><td>{e(c.text)}</td>" + "".join(
            f"<td title='{e(c.reason(s))}'>{_HTML_MARK[c.mark(s)]}</td>" for s in seeds) + "</tr>")
    parts.append("</table>")
    parts.append("<h2>Figures</h2>")
    colours = svg.group_colours(out.figures)
    for f in out.figures:
        parts.append(f"<figure>{svg.render(f, colours=colours)}</figure>")
    parts.append("<h2>Numbers</h2><p>Mean over the complete seeds with the 95% Student-t interval of the mean; "
                 "the SQL under each row re-derives its per-seed values from the database.</p>"
                 "<table><tr><th>quantity</th><th>group</th><th>mean [95% CI; range]</th>"
                 + "".join(f"<th>seed {s}</th>" for s in seeds) + "</tr>")
    for n in out.numbers:
        parts.append(f"<tr><td>{e(n.label)}</td><td>{e(n.group)}</td><td>{e(n.text())}</td>"
                     + "".join(f"<td>{e(v)}</td>" for v in _seed_cells(n.per_seed, seeds, n.fmt)) + "</tr>")
    parts.append("</table><h2>SQL</h2>")
    for q in dict.fromkeys(n.sql for n in out.numbers):
        labels = sorted({n.label for n in out.numbers if n.sql == q})
        parts.append(f"<p>{e('; '.join(labels))}:</p><pre>{e(q)}</pre>")
    parts.append("<h2>Setup</h2>")
    if study.notes:
        parts.append(f"<p>{e(study.notes)}</p>")
    for scale in study.scales:
        sc = study.scale(scale)
        parts.append(f"<h3>{e(scale)} scale ({study.n_runs(scale)} runs{', ' + e(sc.budget) if sc.budget else ''})"
                     f"</h3><p><b>Differs from the paper:</b> {e(sc.differs)}</p><pre>{e(_spec_text(study, scale))}"
                     f"</pre>")
    parts.append(f"<h2>Provenance</h2><p>Runs created by code version(s) "
                 f"{e(', '.join(out.code_versions) or 'none yet')}; report by {e(code_version)}; "
                 f"database {e(safe_url(url))}; generated "
                 f"{generated:%Y-%m-%d %H:%M UTC}. Re-run: <code>rnnlab study run {e(study.name)} --scale "
                 f"{e(out.scale)}</code>, then <code>rnnlab study report {e(study.name)}</code>.</p></body></html>")
    return "\n".join(parts)


def markdown(study: Study, out: Outcome, *, url: str, code_version: str, generated: datetime | None = None) -> str:
    generated = generated or datetime.now(UTC)
    seeds = out.seeds_complete

    def cell(x: str) -> str:
        return x.replace("|", "\\|").replace("\n", " ")

    lines = [f"# {study.title} ({study.name} v{study.version}, {out.scale} scale)", "",
             f"**Claim.** {study.claim}", "", f"**Source.** {study.source}", "",
             f"**Verdict: {out.verdict}** — {out.reason}.", "",
             f"Runs: {out.expected_runs} expected, tag `{out.tag}`; by status: "
             f"{', '.join(f'{k} {v}' for k, v in sorted(out.counts.items())) or 'none'}; complete seeds: "
             f"{', '.join(map(str, seeds)) or 'none'}.", "",
             *([f"**Re-runs.** One run per seed and grid point is analysed, the latest finished one: "
                f"{'; '.join(out.notes)}.", ""] if out.notes else []),
             "## Checks", "",
             "| check | " + " | ".join(f"seed {s}" for s in seeds) + " |",
             "|---|" + "---|" * len(seeds)]
    for c in out.checks:
        lines.append(f"| {cell(c.text)} | " + " | ".join(MARK[c.mark(s)] for s in seeds)
                     + " |")
    lines += ["", "## Numbers", "", "Mean over the complete seeds [95% Student-t interval of the mean; range].", "",
              "| quantity | group | mean | " + " | ".join(f"seed {s}" for s in seeds) + " |",
              "|---|---|---|" + "---|" * len(seeds)]
    for n in out.numbers:
        lines.append(f"| {cell(n.label)} | {cell(n.group)} | {cell(n.text())} | "
                     + " | ".join(_seed_cells(n.per_seed, seeds, n.fmt)) + " |")
    lines += ["", "## SQL", ""]
    for q in dict.fromkeys(n.sql for n in out.numbers):
        labels = sorted({n.label for n in out.numbers if n.sql == q})
        lines += [f"{'; '.join(labels)}:", "", "```sql", q, "```", ""]
    lines += ["## Setup", ""]
    if study.notes:
        lines += [study.notes, ""]
    for scale in study.scales:
        sc = study.scale(scale)
        lines += [f"### {scale} scale ({study.n_runs(scale)} runs{', ' + sc.budget if sc.budget else ''})", "",
                  f"Differs from the paper: {sc.differs}", "", "```json", _spec_text(study, scale), "```", ""]
    lines += ["## Provenance", "", f"Runs created by code version(s) {', '.join(out.code_versions) or 'none yet'}; "
              f"report by {code_version}; database {safe_url(url)}; generated "
              f"{generated:%Y-%m-%d %H:%M UTC}.", ""]
    return "\n".join(lines)

