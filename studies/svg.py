"""A small, dependency-free SVG renderer for a study's figures (the report must open offline and the
environment has neither matplotlib nor kaleido). Points per seed on categorical x, or lines on
numeric x; optional log y. A value the axis cannot draw is never dropped: −∞ (and 0 or a negative on a log
axis) is drawn as ▼ on the bottom edge, +∞ as ▲ and NaN as ✕ on the top edge, as the dashboard's charts do
(dashboard.charts.SYMBOL), and a key line under the plot says what each drawn symbol means. Every value of
a study's series was recorded (a curve's points are the run's stored epochs), so a NaN is drawn wherever
it is, a line's first value and a line of NaN only included.
"""

from __future__ import annotations

import math
from html import escape

from studies.core import Figure

COLORS = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#e377c2", "#17becf"]


def _ticks(lo: float, hi: float, n: int = 5) -> list[float]:
    if not (math.isfinite(lo) and math.isfinite(hi)):
        return []
    if hi <= lo:
        return [lo]
    raw = (hi - lo) / n
    mag = 10 ** math.floor(math.log10(raw))
    step = next(m * mag for m in (1, 2, 2.5, 5, 10) if m * mag >= raw)
    first = math.ceil(lo / step) * step
    out, v = [], first
    while v <= hi + 1e-12 * abs(hi) and len(out) < 20:
        out.append(round(v, 12))
        v += step
    return out


def _value(y: float) -> str:
    """An edge marker's value as its hover title says it."""
    return "−∞" if y == -math.inf else "∞" if y == math.inf else f"{y:.4g}".replace("-", "−")


def _label(v: float, log: bool) -> str:
    if log:
        return f"1e{int(v)}" if float(v).is_integer() else f"{10 ** v:.3g}"
    return f"{v:.4g}".replace("-", "−")


def point_kinds(y: list, log: bool) -> list[str]:
    """Per point: '' (drawable), 'floor' (−∞, and 0 or below on a log axis: the bottom edge), 'inf' (+∞)
    or 'nan' (NaN or None) at the top edge. Every point is drawn: a study's series hold recorded values
    only (a curve's points are its run's stored epochs), so a NaN before a line's first finite value, or a
    line of NaN only (a run that diverged at once), is a recorded NaN, drawn as ✕. The Studies page
    (_plotly) uses it too."""
    out = []
    for v in y:
        v = math.nan if v is None else float(v)
        out.append("nan" if math.isnan(v) else "inf" if v == math.inf
                   else "floor" if v == -math.inf or (log and v <= 0) else "")
    return out


def key_text(kinds: set[str], log: bool) -> str:
    """The key line for the edge markers drawn ('' when none is)."""
    floor = "−∞, 0 or below (no log)" if log else "−∞"
    parts = {"floor": f"▼ {floor}: bottom edge", "inf": "▲ +∞: top edge", "nan": "✕ NaN: top edge"}
    return " · ".join(parts[k] for k in ("floor", "inf", "nan") if k in kinds)


def group_colours(figures: list[Figure]) -> dict[str, str]:
    """One colour per group (or ungrouped series name) across all of an outcome's figures, in order of
    first appearance, so a group keeps its colour from figure to figure (a per-figure order gave the
    same cell blue in one figure and green in the next). The HTML report and the Studies page share it."""
    names = dict.fromkeys(s.group or s.name for f in figures for s in f.series)
    return {g: COLORS[i % len(COLORS)] for i, g in enumerate(names)}


def render(fig: Figure, width: int = 560, height: int = 300, colours: dict[str, str] | None = None) -> str:
    """The figure as a standalone <svg> element; ``colours``: group_colours of the outcome's figures
    (default: this figure's own)."""
    left, right, top, bottom = 64, 150, 28, 40
    pw, ph = width - left - right, height - top - bottom
    kinds = [point_kinds(s.y, fig.log_y) for s in fig.series]
    key = key_text({k for ks in kinds for k in ks}, fig.log_y)
    full = height + (16 if key else 0)   # the key line goes under the plot and the x label

    def ty(v: float) -> float:
        return math.log10(v) if fig.log_y else v

    finite = [ty(y) for s in fig.series for y in s.y
              if y is not None and math.isfinite(y) and (y > 0 or not fig.log_y)]
    if fig.hline is not None and (fig.hline[0] > 0 or not fig.log_y):
        finite.append(ty(fig.hline[0]))
    lo, hi = (min(finite), max(finite)) if finite else (0.0, 1.0)
    if hi - lo < 1e-9:
        lo, hi = lo - 1, hi + 1
    pad = (hi - lo) * 0.08
    lo, hi = lo - pad, hi + pad

    def py(v: float) -> float:
        return top + ph - (v - lo) / (hi - lo) * ph

    if fig.categorical_x:
        cats = list(dict.fromkeys(x for s in fig.series for x in s.x))

        def px(x, i=0, n=1):
            k = cats.index(x)
            off = (i - (n - 1) / 2) * min(10.0, pw / max(1, len(cats)) / (n + 2))
            return left + (k + 0.5) / max(1, len(cats)) * pw + off
    else:
        xs = [float(x) for s in fig.series for x in s.x]
        xlo, xhi = (min(xs), max(xs)) if xs else (0.0, 1.0)
        xhi = xhi if xhi > xlo else xlo + 1

        def px(x, i=0, n=1):
            return left + (float(x) - xlo) / (xhi - xlo) * pw

    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{full}" '
           f'viewBox="0 0 {width} {full}" font-family="sans-serif" font-size="11">',
           f'<text x="{left}" y="16" font-size="12" font-weight="bold">{escape(fig.title)}</text>',
           f'<rect x="{left}" y="{top}" width="{pw}" height="{ph}" fill="none" stroke="#999"/>']
    for t in _ticks(lo, hi):
        y = py(t)
        out.append(f'<line x1="{left}" x2="{left + pw}" y1="{y:.1f}" y2="{y:.1f}" stroke="#eee"/>'
                   f'<text x="{left - 4}" y="{y + 3:.1f}" text-anchor="end">{escape(_label(t, fig.log_y))}</text>')
    out.append(f'<text x="14" y="{top + ph / 2:.0f}" transform="rotate(-90 14 {top + ph / 2:.0f})" '
               f'text-anchor="middle">{escape(fig.ylabel)}</text>')
    if fig.categorical_x:
        for c in cats:
            out.append(f'<text x="{px(c):.1f}" y="{top + ph + 16}" text-anchor="middle">{escape(str(c))}</text>')
    else:
        for t in _ticks(xlo, xhi):
            out.append(f'<text x="{px(t):.1f}" y="{top + ph + 16}" text-anchor="middle">{_label(t, False)}</text>')
        out.append(f'<text x="{left + pw / 2:.0f}" y="{height - 6}" text-anchor="middle">{escape(fig.xlabel)}</text>')
    if fig.hline is not None and (fig.hline[0] > 0 or not fig.log_y):
        y = py(ty(fig.hline[0]))
        out.append(f'<line x1="{left}" x2="{left + pw}" y1="{y:.1f}" y2="{y:.1f}" stroke="#555" '
                   f'stroke-dasharray="4 3"/><text x="{left + pw - 2}" y="{y - 3:.1f}" text-anchor="end" '
                   f'fill="#555">{escape(fig.hline[1])}</text>')
    groups = list(dict.fromkeys(s.group or s.name for s in fig.series))
    colours = {**group_colours([fig]), **(colours or {})}
    for s, ks in zip(fig.series, kinds):
        color = colours[s.group or s.name]
        segs: list[list[tuple[float, float]]] = [[]]   # a line breaks where a value is off the axis
        for i, (x, y, kind) in enumerate(zip(s.x, s.y, ks)):
            X = px(x, i, len(s.x)) if fig.categorical_x else px(x)
            if kind == "nan":
                Y = top + 6
                out.append(f'<path d="M{X - 4:.1f},{Y - 4:.1f} L{X + 4:.1f},{Y + 4:.1f} M{X - 4:.1f},{Y + 4:.1f} '
                           f'L{X + 4:.1f},{Y - 4:.1f}" stroke="{color}" stroke-width="2" fill="none">'
                           f'<title>{escape(s.name)}: NaN</title></path>')
                segs.append([])
                continue
            if kind:
                edge = top + ph - 2 if kind == "floor" else top + 2
                d = 1 if kind == "floor" else -1
                out.append(f'<path d="M{X - 4:.1f},{edge - 6 * d:.1f} L{X + 4:.1f},{edge - 6 * d:.1f} '
                           f'L{X:.1f},{edge:.1f} Z" fill="{color}"><title>{escape(s.name)}: '
                           f'{escape(_value(y))}</title></path>')
                segs.append([])
                continue
            Y = py(ty(y))
            segs[-1].append((X, Y))
            if s.mode == "markers":
                out.append(f'<circle cx="{X:.1f}" cy="{Y:.1f}" r="3.5" fill="{color}" fill-opacity="0.8">'
                           f'<title>{escape(s.name)}: {y:.4g}</title></circle>')
        if s.mode == "lines":
            for pts in segs:
                if len(pts) == 1:   # a value between two off-axis ones: a dot, not nothing
                    out.append(f'<circle cx="{pts[0][0]:.1f}" cy="{pts[0][1]:.1f}" r="2" fill="{color}">'
                               f'<title>{escape(s.name)}</title></circle>')
                elif pts:
                    d = " ".join(f"{'M' if k == 0 else 'L'}{X:.1f},{Y:.1f}" for k, (X, Y) in enumerate(pts))
                    out.append(f'<path d="{d}" fill="none" stroke="{color}" stroke-width="1.3" '
                               f'stroke-opacity="0.8"><title>{escape(s.name)}</title></path>')
    if key:
        out.append(f'<text class="key" x="{left}" y="{full - 5}" fill="#555" font-size="10">{escape(key)}</text>')
    for k, g in enumerate(groups[:16]):
        y = top + 8 + 14 * k
        out.append(f'<rect x="{left + pw + 10}" y="{y - 7}" width="9" height="9" fill="{colours[g]}"/>'
                   f'<text x="{left + pw + 24}" y="{y + 1}">{escape(str(g))}</text>')
    out.append("</svg>")
    return "".join(out)
