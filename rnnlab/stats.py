"""Exact small statistics shared by the verdicts (rnnlab.strategies) and the studies (studies.core).

Pure Python: the dashboard's dependencies hold no scipy (only the worker's scikit-learn brings it).
"""

from __future__ import annotations

import math

Z975 = 1.959963984540054   # Φ⁻¹(0.975), the normal quantile the t quantile tends to
# t₀.₉₇₅ with ν = 1 … 30 degrees of freedom, rounded to 6 decimals
_T975 = (12.706205, 4.302653, 3.182446, 2.776445, 2.570582, 2.446912, 2.364624, 2.306004, 2.262157, 2.228139,
         2.200985, 2.178813, 2.160369, 2.144787, 2.131450, 2.119905, 2.109816, 2.100922, 2.093024, 2.085963,
         2.079614, 2.073873, 2.068658, 2.063899, 2.059539, 2.055529, 2.051831, 2.048407, 2.045230, 2.042272)


def t95(n: int) -> float:
    """Two-sided 95% Student t quantile for the mean of ``n`` values: t₀.₉₇₅ with n − 1 degrees of
    freedom, so that mean ± t95(n)·s/√n is the 95% interval. NaN for n < 2 (one value has no interval).

    Exact to 6 decimals for every n ≥ 2: a table up to ν = 30, beyond it the Cornish–Fisher expansion
    of t in powers of 1/ν around the normal quantile z (Abramowitz & Stegun 26.7.5), to the 1/ν⁴ term,
    whose error is below 3e-8 at ν = 31 and falls as ν⁻⁵."""
    if n < 2:
        return math.nan
    df = n - 1
    if df <= len(_T975):
        return _T975[df - 1]
    z = Z975
    g1 = (z ** 3 + z) / 4
    g2 = (5 * z ** 5 + 16 * z ** 3 + 3 * z) / 96
    g3 = (3 * z ** 7 + 19 * z ** 5 + 17 * z ** 3 - 15 * z) / 384
    g4 = (79 * z ** 9 + 776 * z ** 7 + 1482 * z ** 5 - 1920 * z ** 3 - 945 * z) / 92160
    return z + g1 / df + g2 / df ** 2 + g3 / df ** 3 + g4 / df ** 4
