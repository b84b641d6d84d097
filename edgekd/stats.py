"""Sampling uncertainty of measured accuracies (torch-free, no SciPy).

An accuracy measured on n test samples is a binomial proportion; its 95% Wilson score interval is what the report
shows beside it and what selection uses to call two candidates tied (E. B. Wilson, "Probable inference, the law of
succession, and statistical inference", JASA 1927; L. D. Brown, T. T. Cai, A. DasGupta, "Interval estimation for a
binomial proportion", Statistical Science 2001, recommend it over the normal approximation at every n).
"""

from __future__ import annotations

import math

Z95 = 1.959963984540054  # the standard normal's 97.5th percentile: a two-sided 95% interval


def wilson_interval(accuracy: float, n: int, z: float = Z95) -> tuple[float, float]:
    """The Wilson score interval of a proportion ``accuracy`` observed on ``n`` samples; (0, 1) when n is 0."""
    if n <= 0 or not 0.0 <= accuracy <= 1.0:
        return (0.0, 1.0)
    z2 = z * z
    centre = (accuracy + z2 / (2 * n)) / (1 + z2 / n)
    half = z * math.sqrt(accuracy * (1 - accuracy) / n + z2 / (4 * n * n)) / (1 + z2 / n)
    # the interval always holds the observed proportion; min/max keep rounding (e.g. at 0 or 1) from moving it out
    return (max(0.0, min(accuracy, centre - half)), min(1.0, max(accuracy, centre + half)))
