"""`signdigits compare`'s closing sentence, on counts made by hand (the real runs: test_compare_real.py)."""

from signdigits.compare import report, verdict
from signdigits.stats import mcnemar_p


def result(a_only: int, b_only: int, both: int = 300) -> dict:
    """compare()'s answer for photos right in A only, in B only, and in both (none wrong in both)."""
    n = a_only + b_only + both
    return {
        "photos": n,
        "accuracy_a": (a_only + both) / n,
        "accuracy_b": (b_only + both) / n,
        "a_right_b_wrong": a_only,
        "b_right_a_wrong": b_only,
        "p": mcnemar_p(a_only, b_only),
    }


def test_a_better_with_evidence():
    # 12 against 1: p = 2 · P(X ≤ 1), X ~ Binomial(13, 1/2) = 2 · 14 / 8192 = 0.0034
    assert verdict("fast", "small", result(12, 1)) == (
        "fast is more accurate, by 11 photos, and that is evidence it is better (p = 0.0034 < 0.05)."
    )


def test_b_better_without_evidence():
    # 2 against 3: p = 1.0
    assert verdict("fast", "small", result(2, 3)) == (
        "small is right on 1 photo more, but that is no evidence either is better (p = 1.0)."
    )
    # 2 against 7: p = 2 · (1 + 9 + 36) / 512 = 0.18
    assert verdict("fast", "small", result(2, 7)) == (
        "small is right on 5 photos more, but that is no evidence either is better (p = 0.18)."
    )


def test_tie():
    for a_only in (0, 4):
        assert verdict("fast", "small", result(a_only, a_only)) == (
            "fast and small are right on as many photos: no evidence either is better (p = 1.0)."
        )


def test_the_sentence_closes_the_report():
    lines = report("fast", "HEAD", result(0, 6)).splitlines()
    # 0 against 6: p = 2 / 64 = 0.03125
    assert lines[-1] == "HEAD is more accurate, by 6 photos, and that is evidence it is better (p = 0.031 < 0.05)."
    assert lines[-2].startswith("  exact McNemar p = 0.03125 ")
