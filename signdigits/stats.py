"""Statistics for judging classifiers on a few hundred photos: the Wilson interval of an accuracy, and the exact
McNemar test of two classifiers on the same photos."""

import numpy as np


def wilson_interval(correct: int, total: int) -> tuple[float, float]:
    """95 % Wilson score interval of a proportion (SciPy): better than p ± 1.96 √(p(1−p)/n) near 0 or 1 and
    for small n, as here (one test photo is more than a point of accuracy)."""
    from scipy.stats import binomtest

    interval = binomtest(int(correct), int(total)).proportion_ci(confidence_level=0.95, method="wilson")
    return float(interval.low), float(interval.high)


def discordant_counts(y_true, predicted_a, predicted_b) -> tuple[int, int]:
    """(b, c): the photos A gets right and B wrong, and those B gets right and A wrong."""
    right_a = np.asarray(predicted_a) == np.asarray(y_true)
    right_b = np.asarray(predicted_b) == np.asarray(y_true)
    return int(np.sum(right_a & ~right_b)), int(np.sum(~right_a & right_b))


def mcnemar_p(b: int, c: int) -> float:
    """Exact two-sided McNemar p-value of two classifiers on the same photos.

    Only the discordant photos tell them apart: b that A gets right and B wrong, c the reverse. If both are
    equally accurate, each of the n = b + c discordant photos is a fair coin, so b ~ Binomial(n, 1/2), and p is
    the chance of a split at least as uneven as the one seen, on either side:

        p = min(1, 2 · Σ_{i ≤ min(b, c)} C(n, i) / 2ⁿ)

    (the distribution is symmetric, so both tails are equal): SciPy's exact two-sided binomial test. With no
    discordant photo, p = 1."""
    from scipy.stats import binomtest

    return 1.0 if b + c == 0 else float(binomtest(b, b + c, 0.5).pvalue)
