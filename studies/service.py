"""What the CLI (`rnnlab study ...`) and the dashboard's Studies page both do with a study: submit its
runs to the workers, read its state and verdict, write its report. Torch-free."""

from __future__ import annotations

from pathlib import Path

from studies.core import Outcome, Study
from studies.data import load


class StudyError(ValueError):
    """A study action that cannot go ahead; the message says why and what to do."""


def outcome(study: Study, scale: str, url: str | None = None) -> Outcome:
    """The study's verdict at ``scale`` from the runs stored now."""
    return study.decide(load(study, scale, url), scale)


def existing_runs(study: Study, scale: str, url: str | None = None) -> int:
    from db import queries

    _, total = queries.list_runs({"tags": [study.tag(scale)]}, page_size=1, engine=queries.engine_for(url))
    return int(total)


def _refuse_a_second_set(study: Study, scale: str, url: str | None) -> None:
    n = existing_runs(study, scale, url)
    if n:
        raise StudyError(f"study {study.name} v{study.version} already has {n} run(s) at scale {scale} "
                         f"(tag {study.tag(scale)}); see `rnnlab study status {study.name} --scale {scale}`, or "
                         f"delete those runs to start over")


def submit(study: Study, scale: str, *, owner: str | None = None, url: str | None = None, app=None) -> list[int]:
    """Queue every run of the study at ``scale`` on the workers, tagged ``study.tag(scale)``; refuses
    when the study already has runs at that scale (its verdict would mix two sets)."""
    from client.submit import submit as send

    _refuse_a_second_set(study, scale, url)
    return send(study.specs(scale), owner=owner, tags=[study.tag(scale)], sweep=study.sweep(scale), url=url, app=app)


def create(study: Study, scale: str, *, owner: str | None = None, url: str | None = None,
           limits=None) -> list[int]:
    """Create the study's runs at ``scale`` without sending them to a queue (to train them here: `rnnlab
    study run NAME --local`); the same tag, sweep and refusals as ``submit``, the operator's limits
    included (client.submit.check_submission with the settings' limits, or ``limits``): raises SpecError
    before any row is written."""
    from client.submit import check_owner, check_submission
    from db import store
    from rnnlab.settings import get_settings
    from rnnlab.spec import SpecError

    specs, tags = study.specs(scale), [study.tag(scale)]
    errors = check_owner(owner) + check_submission(specs, tags, limits or get_settings().limits)
    if errors:
        raise SpecError(errors)
    _refuse_a_second_set(study, scale, url)
    return store.create_runs(specs, owner=owner, tags=tags, sweep=study.sweep(scale), url=url)


def write_report(study: Study, scale: str, path: Path, *, url: str | None = None) -> tuple[Path, Path, Outcome]:
    """Write the HTML report to ``path`` and the Markdown next to it (same name, .md)."""
    from db.engine import default_url
    from db.store import code_version
    from studies import report

    path = Path(path)
    if path.suffix.lower() not in (".html", ".htm"):
        raise StudyError(f"-o: got {str(path)[:200]!r}; the report is an .html file (the Markdown goes next to it)")
    out = outcome(study, scale, url)
    db_url = url or default_url()
    md = path.with_suffix(".md")
    path.write_text(report.html(study, out, url=db_url, code_version=code_version()), encoding="utf-8")
    md.write_text(report.markdown(study, out, url=db_url, code_version=code_version()), encoding="utf-8")
    return path, md, out
