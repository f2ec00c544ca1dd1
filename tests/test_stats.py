"""rnnlab.stats.t95, the one Student t quantile of the verdicts and the studies, is exact to 6 decimals for
every n ≥ 2: checked against an independent inversion of the t distribution (its closed-form CDF for
whole degrees of freedom) and against scipy where it is installed. The old Strategies table said 1.96
beyond 31 runs (off by 0.08 at n = 32) and kept two decimals below."""

from __future__ import annotations

import math

import pytest

from rnnlab import strategies
from rnnlab.stats import t95
from studies import core

LARGE = (250, 500, 1000, 5000, 10**5)
TOL = 1e-6                       # 6 decimals (the table is rounded to them)


def _two_sided_cdf(t: float, nu: int) -> float:
    """P(|T| ≤ t) for Student's T with ``nu`` whole degrees of freedom, in closed form (Abramowitz &
    Stegun 26.7.3): with θ = atan(t/√ν), c = cos²θ, for odd ν (2/π)(θ + sinθ cosθ Σ_{j<(ν−1)/2} a_j c^j)
    with a_0 = 1, a_j = a_{j−1}·2j/(2j+1); for even ν sinθ Σ_{j<ν/2} b_j c^j with b_0 = 1,
    b_j = b_{j−1}·(2j−1)/(2j)."""
    theta = math.atan(t / math.sqrt(nu))
    c = math.cos(theta) ** 2
    if nu % 2:
        total, term = 0.0, 1.0
        for j in range((nu - 1) // 2):
            if j:
                term *= c * 2 * j / (2 * j + 1)
            total += term
        return 2 / math.pi * (theta + math.sin(theta) * math.cos(theta) * total)
    total, term = 0.0, 1.0
    for j in range(nu // 2):
        if j:
            term *= c * (2 * j - 1) / (2 * j)
        total += term
    return math.sin(theta) * total


def _quantile(nu: int) -> float:
    """t₀.₉₇₅ with ``nu`` degrees of freedom, by bisection of the closed-form CDF to 1e-10."""
    lo, hi = 1.9, 13.0
    while hi - lo > 1e-10:
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if _two_sided_cdf(mid, nu) < 0.95 else (lo, mid)
    return (lo + hi) / 2


def test_the_closed_form_is_right_where_it_is_known():
    """The reference is itself checked where the quantile has a closed form: ν = 1 is the Cauchy
    distribution (t = tan(0.475π)); for ν = 2, P(|T| ≤ t) = t/√(2 + t²), so t = 0.95·√(2/(1 − 0.95²))."""
    assert _quantile(1) == pytest.approx(math.tan(math.pi * 0.475), abs=1e-8)        # Cauchy
    assert _quantile(2) == pytest.approx(0.95 * math.sqrt(2 / (1 - 0.95 ** 2)), abs=1e-8)


@pytest.mark.parametrize("n", range(2, 201))
def test_t95_is_exact_to_six_decimals(n):
    assert t95(n) == pytest.approx(_quantile(n - 1), abs=TOL)


@pytest.mark.parametrize("n", LARGE)
def test_t95_is_exact_for_many_runs(n):
    assert t95(n) == pytest.approx(_quantile(n - 1), abs=TOL)


def test_t95_tends_to_the_normal_quantile():
    """Far out, t₀.₉₇₅ = z + (z³ + z)/(4ν) + O(ν⁻²) (Fisher 1925), z = Φ⁻¹(0.975) = 1.959963984540054."""
    z, nu = 1.959963984540054, 10**7
    assert t95(nu + 1) == pytest.approx(z + (z ** 3 + z) / (4 * nu), abs=1e-13)


def test_t95_matches_scipy_everywhere():
    stats = pytest.importorskip("scipy.stats")
    for n in (*range(2, 201), *LARGE, 10**7):
        assert t95(n) == pytest.approx(float(stats.t.ppf(0.975, n - 1)), abs=TOL), n


@pytest.mark.parametrize("n", [1, 0, -3])
def test_fewer_than_two_values_have_no_quantile(n):
    assert math.isnan(t95(n))


def test_one_implementation_for_the_verdicts_and_the_studies():
    assert strategies.t95 is t95 and core.t95 is t95
