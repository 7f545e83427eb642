"""Statistics over seeds, shared by the report, the sweep summary and the parity benchmark, so that the three
never disagree on what a spread or a difference is.

- The standard deviation is the sample one (ddof=1). Of a single run it is None, not 0.0: one seed says
  nothing about how much a result moves with the seed, and 0.0 would read as "does not move".
- The 95% confidence interval of a mean is mean ± t(0.975, n-1) · std / sqrt(n) (Student's t: a handful of seeds).
- Two sets of runs are compared with a paired t-test when they ran the same seeds (the seed fixes the data order
  and the head's initialisation for both, so the per-seed differences cancel that noise), else with Welch's
  t-test (no equal-variance assumption). Both two-sided.
"""

from __future__ import annotations

import math
import statistics
import warnings
from dataclasses import dataclass

from scipy import stats as scipy_stats

CONFIDENCE = 0.95
ALPHA = 0.05  # p >= ALPHA: not significantly different


@dataclass(frozen=True)
class Spread:
    """Mean, sample standard deviation and 95% confidence interval of one set of values (one per seed)."""

    n: int
    mean: float
    std: float | None  # None for a single value
    ci_low: float | None
    ci_high: float | None


def spread(values: list[float]) -> Spread:
    n, mean = len(values), statistics.fmean(values)
    if n < 2:
        return Spread(n, mean, None, None, None)
    std = statistics.stdev(values)
    half = scipy_stats.t.ppf((1 + CONFIDENCE) / 2, n - 1) * std / math.sqrt(n)
    return Spread(n, mean, std, mean - half, mean + half)


@dataclass(frozen=True)
class Comparison:
    test: str  # paired | welch
    p_value: float


def compare(a: list[tuple[int | None, float]], b: list[tuple[int | None, float]]) -> Comparison | None:
    """Two-sided test of equal means of two sets of (seed, value) runs; None when either has fewer than 2 runs
    (no spread to test against). Paired when both ran the same seeds, each once, else Welch's."""
    if len(a) < 2 or len(b) < 2:
        return None
    seeds_a, seeds_b = [s for s, _ in a], [s for s, _ in b]
    if None not in seeds_a and len(set(seeds_a)) == len(seeds_a) and sorted(seeds_a) == sorted(seeds_b):
        by_seed_b = dict(b)
        return Comparison("paired", _p_value(scipy_stats.ttest_rel, [v for _, v in sorted(a)], [by_seed_b[s] for s, _ in sorted(a)]))
    return Comparison("welch", welch_p([v for _, v in a], [v for _, v in b]))


def welch_p(x: list[float], y: list[float]) -> float:
    """Welch's two-sided t-test p-value (needs at least 2 values on each side)."""
    return _p_value(lambda x, y: scipy_stats.ttest_ind(x, y, equal_var=False), x, y)


def _p_value(test, x: list[float], y: list[float]) -> float:
    with warnings.catch_warnings():  # scipy warns of precision loss on identical values: handled below
        warnings.simplefilter("ignore", RuntimeWarning)
        p = float(test(x, y).pvalue)
    # nan: no spread on either side (or in the paired differences) and equal means: nothing differs
    return 1.0 if math.isnan(p) else p
