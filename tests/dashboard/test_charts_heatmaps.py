"""The t × epoch gradient heatmaps (dashboard.charts.heatmaps, diff_heatmap): a vanished norm (0,
log10 −∞) and an exploded one (+∞) or a missing one (NaN) get distinct colours that the chart's note
names, instead of one grey for both; the difference map's grey reads 'no value', not 'no difference'
(Δ = 0 is the scale's white); the colour range clipped to percentiles says so. Checked on the
returned figures: which trace paints a cell, in which colour, and what the note says."""

from __future__ import annotations

import math
import re

import numpy as np

from dashboard import charts

NAN, INF = math.nan, math.inf


def _mat(z) -> dict:
    z = np.asarray(z, dtype=float)
    return {"epochs": list(range(z.shape[0])), "t": list(range(1, z.shape[1] + 1)), "z": z, "seq_len": z.shape[1]}


def _traces(fig) -> list[dict]:
    return [t.to_plotly_json() for t in fig.data]


def _notes(fig) -> str:
    return " ".join(a.text or "" for a in fig.layout.annotations)


def _rgb(c: str) -> tuple[int, int, int]:
    c = c.strip()
    if c.startswith("#"):
        return tuple(int(c[i:i + 2], 16) for i in (1, 3, 5))
    return tuple(int(float(v)) for v in re.findall(r"[\d.]+", c)[:3])


def _looks(name: str, rgb) -> bool:
    """Whether an RGB colour is what a note's colour word says (the words a note may use)."""
    r, g, b = rgb
    return {"black": max(rgb) < 40, "red": r > 150 and r > g + 80 and r > b + 80,
            "white": min(rgb) > 230, "grey": abs(r - g) < 20 and abs(g - b) < 20 and 60 < r < 220,
            "magenta": r > 150 and b > 150 and g < 100, "orange": r > 200 and 80 < g < 200 and b < 80}[name]


def _painted(fig, epoch: int, t: int) -> list[tuple[str, tuple]]:
    """What paints cell (epoch, t): ('scale', z) for a value on the shared colour scale, ('fixed', rgb)
    for a one-colour trace."""
    out = []
    for tr in _traces(fig):
        if tr["type"] != "heatmap":
            continue
        x, y = list(np.asarray(tr["x"], dtype=float)), list(np.asarray(tr["y"], dtype=float))
        z = np.asarray(tr["z"], dtype=float)[y.index(epoch), x.index(t)]
        if not np.isfinite(z):
            continue   # a gap: this trace draws nothing there
        scale = tr.get("colorscale")
        if tr.get("coloraxis") or not scale or len({c for _, c in scale}) > 1:
            out.append(("scale", float(z)))
        else:
            out.append(("fixed", _rgb(scale[0][1])))
    return out


def test_vanished_and_exploded_cells_have_distinct_named_colours():
    #            t=1    t=2    t=3   t=4
    fig = charts.heatmaps([("#1", _mat([[-2.0, -INF, 0.5, INF],
                                        [-1.0, NAN, -3.0, 1.0]]))], "h")
    # finite cells: on the colour scale, painted once
    assert _painted(fig, 0, 1) == [("scale", -2.0)] and _painted(fig, 1, 3) == [("scale", -3.0)]
    (kind, vanished), = _painted(fig, 0, 2)     # ‖g‖ = 0
    (kind2, exploded), = _painted(fig, 0, 4)    # ‖g‖ = +∞
    (kind3, missing), = _painted(fig, 1, 2)     # NaN
    assert kind == kind2 == kind3 == "fixed"
    assert vanished != exploded and exploded == missing
    note = _notes(fig)
    word0 = re.search(r"(\w+) cells: ‖g_t‖ = 0\b", note)
    word_inf = re.search(r"(\w+) cells: ‖g_t‖ = \+∞ or NaN", note)
    assert word0 and word_inf, note
    assert _looks(word0.group(1), vanished) and _looks(word_inf.group(1), exploded)
    assert "vanished" in note and "exploded" in note and "no value" in note
    assert "grey" not in note


def test_a_heatmap_without_special_cells_names_no_special_colour():
    fig = charts.heatmaps([("#1", _mat([[-2.0, -1.0], [0.0, 1.0]]))], "h")
    assert [t["type"] for t in _traces(fig)] == ["heatmap"]
    assert "cells:" not in _notes(fig)


def test_the_colour_range_says_it_is_clipped_to_percentiles():
    z = np.linspace(-8.0, 2.0, 200).reshape(2, 100)
    z[0, 0], z[1, 99] = -40.0, 30.0          # far beyond the 1st and 99th percentiles
    fig = charts.heatmaps([("#1", _mat(z))], "h")
    ax = fig.layout.coloraxis
    assert ax.cmin > -40.0 and ax.cmax < 30.0   # these two take the end colours
    said = f"{ax.colorbar.title.text} {_notes(fig)}"
    assert re.search(r"1st.{0,3}99th perc", said) and "end colours" in said, said


def test_the_difference_maps_grey_reads_no_value_and_its_range_says_it_is_clipped():
    a = _mat([[-9.0, -INF, -1.0, 0.5]])
    b = _mat([[-1.7, -3.0, NAN, -1.5]])
    fig = charts.diff_heatmap(("#1", a), ("#2", b), "Difference")
    note = _notes(fig)
    assert "no difference" not in note and "grey cells: no value" in note
    assert "99th percentile" in note and "end colours" in note
    (tr,) = _traces(fig)
    z = np.asarray(tr["z"], dtype=float)[0]
    assert np.isnan(z[1]) and np.isnan(z[2])    # no Δ: gaps, the grey background
    assert fig.layout.plot_bgcolor is not None and _looks("grey", _rgb(fig.layout.plot_bgcolor))


def _luminance(rgb) -> float:
    """WCAG relative luminance of an sRGB colour."""
    def lin(c):
        c = c / 255
        return c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4
    r, g, b = (lin(c) for c in rgb)
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def _contrast(a, b) -> float:
    la, lb = sorted((_luminance(a), _luminance(b)), reverse=True)
    return (la + 0.05) / (lb + 0.05)


def test_the_special_colours_stand_out_against_the_scale_end_they_sit_next_to():
    """A vanished cell sits next to the smallest norms (the scale's dark end), an exploded one next to
    the largest (its bright end): each needs at least the 3:1 contrast asked of chart graphics."""
    import plotly.colors

    scale = plotly.colors.get_colorscale("Viridis")
    low, high = _rgb(scale[0][1]), _rgb(scale[-1][1])
    fig = charts.heatmaps([("#1", _mat([[-2.0, -INF, 0.5, INF]]))], "h")
    (_, vanished), = _painted(fig, 0, 2)
    (_, exploded), = _painted(fig, 0, 4)
    assert _contrast(vanished, low) >= 3, (vanished, low)
    assert _contrast(exploded, high) >= 3, (exploded, high)
