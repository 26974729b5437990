"""Calibration and out-of-distribution scores against independent references: a known temperature recovered,
the NLL flat at the fitted one, ECE worked by hand, scipy's Mahalanobis distance, exact refusal shares."""

import numpy as np
import pytest
from scipy.spatial.distance import mahalanobis as scipy_mahalanobis
from scipy.special import expit, logsumexp
from sklearn.metrics import log_loss

from signdigits import calibration, figures
from signdigits.calibration import (
    energy,
    expected_calibration_error,
    fit_mahalanobis,
    fit_temperature,
    mahalanobis,
    msp,
    negative_log_likelihood,
    ood_auroc,
    probabilities,
    refusal_threshold,
    reliability,
)


def sample_labels(rng, Z0):
    """Labels drawn from the model the logits Z0 state: y ~ softmax(Z0) per row (σ(z) for one column)."""
    if Z0.shape[1] == 1:
        P = np.column_stack([1 - expit(Z0[:, 0]), expit(Z0[:, 0])])
    else:
        P = np.exp(Z0 - logsumexp(Z0, axis=1, keepdims=True))
    drawn = (rng.random(len(P))[:, None] > np.cumsum(P, axis=1)).sum(axis=1)  # the first k with u ≤ P_0 + … + P_k
    return np.minimum(drawn, P.shape[1] - 1)  # (u above a cumulative sum rounded to just under 1)


# --- temperature scaling ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("K", [1, 10])
@pytest.mark.parametrize("T_true", [0.5, 3.0])
def test_temperature_scaling_recovers_a_known_temperature(K, T_true):
    # y is drawn from softmax(Z0): Z0 is calibrated, so the logits Z0 · T_true need T = T_true to be
    rng = np.random.default_rng(K)
    Z0 = rng.normal(0, 2.0, size=(6000, K))
    y = sample_labels(rng, Z0)
    assert fit_temperature(Z0 * T_true, y) == pytest.approx(T_true, rel=0.05)


@pytest.mark.parametrize("K", [1, 4])
def test_the_nll_is_flat_at_the_fitted_temperature_and_is_sklearns_log_loss(K):
    rng = np.random.default_rng(1)
    Z = rng.normal(0, 3.0, size=(500, K))
    y = sample_labels(rng, Z / 2)
    T = fit_temperature(Z, y)
    assert T == fit_temperature(Z, y)  # deterministic
    h = 1e-4 * T
    slope = (negative_log_likelihood(Z, y, T + h) - negative_log_likelihood(Z, y, T - h)) / (2 * h)
    far = (negative_log_likelihood(Z, y, 1.2 * T) - negative_log_likelihood(Z, y, T)) / (0.2 * T)
    assert abs(slope) < 1e-3 * abs(far)  # flat at T, not flat 20 % away from it
    # the NLL itself against scikit-learn's log loss of the probabilities
    P = probabilities(Z, T)
    assert negative_log_likelihood(Z, y, T) == pytest.approx(log_loss(y, P, labels=range(P.shape[1])), rel=1e-9)


def test_all_right_predictions_sharpen_to_the_lower_bound():
    Z = np.array([[2.0], [-1.0], [3.0], [-0.5]])
    assert fit_temperature(Z, np.array([1, 0, 1, 0])) == pytest.approx(calibration.TEMPERATURE_BOUNDS[0], rel=1e-6)


def test_bad_labels_and_temperatures_are_refused():
    Z = np.zeros((3, 4))
    with pytest.raises(ValueError, match="class indices"):
        fit_temperature(Z, np.array([0, 1, 4]))
    with pytest.raises(ValueError, match="shape"):
        fit_temperature(Z, np.array([0, 1]))
    with pytest.raises(ValueError, match="positive"):
        probabilities(Z, 0.0)
    with pytest.raises(ValueError, match="shape"):
        probabilities(np.zeros(3))


def test_binary_logits_are_the_two_class_computation():
    rng = np.random.default_rng(2)
    z = rng.normal(0, 5, size=50)
    Z1, Z2 = z[:, None], np.column_stack([np.zeros(50), z])
    T = 1.7
    p1 = expit(z / T)  # P(class 1) as the sigmoid network states it
    assert np.allclose(probabilities(Z1, T), np.column_stack([1 - p1, p1]), rtol=0, atol=1e-12)
    assert np.allclose(msp(Z1, T), np.maximum(p1, 1 - p1), rtol=0, atol=1e-12)
    assert np.allclose(energy(Z1, T), T * np.logaddexp(0, z / T), rtol=1e-12)
    assert np.array_equal(msp(Z1, T), msp(Z2, T)) and np.array_equal(energy(Z1, T), energy(Z2, T))


def test_energy_and_msp_of_multiclass_logits_by_their_definitions():
    Z = np.array([[1.0, 2.0, 3.0], [0.0, 0.0, 0.0]])
    T = 2.0
    # row 1: T log(e^0.5 + e^1 + e^1.5); row 2: T log 3, and softmax is uniform
    assert np.allclose(energy(Z, T), [2 * np.log(np.exp(0.5) + np.e + np.exp(1.5)), 2 * np.log(3)])
    assert np.allclose(msp(Z, T), [np.exp(1.5) / (np.exp(0.5) + np.e + np.exp(1.5)), 1 / 3])


# --- expected calibration error ----------------------------------------------------------------------------------
def test_ece_against_a_worked_example():
    # 4 bins: [0, .25], (.25, .5], (.5, .75], (.75, 1] (edges exact in binary; the values on an edge go left)
    #   bin 1: 0.0 ✗, 0.25 ✓               n=2  Σcorrect − Σconf = 1 − 0.25 = 0.75
    #   bin 2: 0.3 ✗, 0.5 ✗, 0.4 ✓          n=3  1 − 1.2 = −0.2                 → 0.2
    #   bin 3: 0.75 ✓, 0.6 ✓, 0.55 ✗, 0.7 ✓  n=4  3 − 2.6 = 0.4
    #   bin 4: 0.8 ✓, 1.0 ✓, 0.9 ✗          n=3  2 − 2.7 = −0.7                 → 0.7
    # ECE = Σ n_b/N |acc_b − conf_b| = (1/N) Σ_b |Σcorrect − Σconf| = (0.75 + 0.2 + 0.4 + 0.7) / 12 = 2.05 / 12
    confidence = [0.0, 0.25, 0.3, 0.5, 0.4, 0.75, 0.6, 0.55, 0.7, 0.8, 1.0, 0.9]
    correct = [0, 1, 0, 0, 1, 1, 1, 0, 1, 1, 1, 0]
    assert expected_calibration_error(confidence, correct, bins=4) == pytest.approx(2.05 / 12, abs=1e-12)
    table = reliability(confidence, np.array(correct, bool), bins=4)
    assert table["count"].tolist() == [2, 3, 4, 3]
    assert np.allclose(table["confidence"], [0.125, 0.4, 0.65, 0.9])
    assert np.allclose(table["accuracy"], [0.5, 1 / 3, 0.75, 2 / 3])
    assert np.allclose(table["lower"], [0, 0.25, 0.5, 0.75]) and np.allclose(table["upper"], [0.25, 0.5, 0.75, 1])


def test_reliability_counts_add_up_and_empty_bins_are_nan():
    rng = np.random.default_rng(3)
    confidence = rng.uniform(0.5, 1.0, 777)  # two classes: nothing below 0.5
    table = reliability(confidence, rng.random(777) < confidence)
    assert len(table["count"]) == 15 and table["count"].sum() == 777
    empty = table["count"] == 0
    assert empty[:7].all() and np.isnan(table["accuracy"][empty]).all() and np.isnan(table["confidence"][empty]).all()


def test_ece_of_calibrated_predictions_is_small_and_of_overconfident_ones_is_not():
    rng = np.random.default_rng(4)
    confidence = rng.uniform(0.1, 1.0, 100_000)
    right_as_stated = rng.random(len(confidence)) < confidence
    assert expected_calibration_error(confidence, right_as_stated) < 0.01
    right_less_often = rng.random(len(confidence)) < confidence**2  # over-confident by conf − conf² (mean ≈ 0.15)
    assert expected_calibration_error(confidence, right_less_often) > 0.1


def test_bad_confidences_are_refused():
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        expected_calibration_error([0.5, 1.2], [1, 0])
    with pytest.raises(ValueError, match="shape"):
        reliability([0.5, 0.7], [1])


# --- Mahalanobis -----------------------------------------------------------------------------------------------------
def gaussian_blobs(rng, n_per_class=400):
    """Three classes in 4-D, each N(μ_k, Σ) with one covariance Σ (correlated, unequal spreads)."""
    means = np.array([[0, 0, 0, 0], [6, 0, 0, 0], [0, 6, 0, 3]], dtype=float)
    A = np.array([[1, 0.5, 0, 0], [0, 0.7, 0.3, 0], [0, 0, 1.2, 0], [0.2, 0, 0, 0.5]])
    covariance = A @ A.T
    X = np.concatenate([rng.multivariate_normal(m, covariance, n_per_class) for m in means])
    y = np.repeat(np.arange(3), n_per_class)
    return X, y, means, covariance


def test_mahalanobis_is_scipys_distance_to_the_nearest_class_and_far_points_score_lower():
    rng = np.random.default_rng(5)
    X, y, true_means, covariance = gaussian_blobs(rng)
    stats = fit_mahalanobis(X, y)
    assert set(stats) == {"classes", "means", "precision"}
    assert all(value.dtype.kind in "if" and isinstance(value, np.ndarray) for value in stats.values())
    assert np.allclose(stats["means"], true_means, atol=0.2)
    assert np.allclose(
        stats["precision"], np.linalg.inv(covariance), atol=0.25 * np.abs(np.linalg.inv(covariance)).max()
    )
    far = rng.normal(0, 1, size=(50, 4)) + np.array([0, 0, 30, 0])
    points = np.concatenate([X[::40], far])
    scores = mahalanobis(points, stats)
    reference = [-min(scipy_mahalanobis(x, mean, stats["precision"]) ** 2 for mean in stats["means"]) for x in points]
    assert np.allclose(scores, reference, rtol=1e-10)
    inside, outside = scores[: len(X[::40])], scores[len(X[::40]) :]
    assert inside.min() > outside.max()
    assert ood_auroc(mahalanobis(X, stats), mahalanobis(far, stats)) == 1.0


def test_mahalanobis_stats_survive_npz(tmp_path):
    rng = np.random.default_rng(6)
    X, y, _, _ = gaussian_blobs(rng, 50)
    stats = fit_mahalanobis(X, y)
    np.savez(tmp_path / "stats.npz", **stats)
    loaded = dict(np.load(tmp_path / "stats.npz", allow_pickle=False))
    assert np.array_equal(mahalanobis(X, loaded), mahalanobis(X, stats))


# --- refusal threshold and AUROC ---------------------------------------------------------------------------------
@pytest.mark.parametrize("N, share, refused", [(1000, 0.02, 20), (100, 0.29, 29), (60, 0.02, 1), (49, 0.02, 0)])
def test_refusal_threshold_refuses_exactly_the_share_of_distinct_scores_it_can(N, share, refused):
    scores = np.random.default_rng(N).normal(size=N)
    t = refusal_threshold(scores, share)
    assert np.sum(scores < t) == refused  # ⌊share · N⌋: exactly share · N when that is whole
    assert refused <= share * N + 1e-9  # (0.29 · 100 is 28.999999999999996 in floating point)


def test_refusal_threshold_never_refuses_more_than_the_share_with_ties():
    rng = np.random.default_rng(7)
    scores = np.concatenate([np.full(30, -1.0), rng.uniform(0, 1, 970)])  # 30 tied lowest, share 0.02 → 20
    t = refusal_threshold(scores, 0.02)
    assert t == -1.0 and np.sum(scores < t) == 0  # a tie at t is accepted
    coarse = np.round(rng.normal(size=1000), 1)  # many ties everywhere
    for share in (0.0, 0.01, 0.02, 0.05, 0.5):
        assert np.sum(coarse < refusal_threshold(coarse, share)) <= share * len(coarse)
    assert refusal_threshold(coarse, 0.0) == coarse.min()
    with pytest.raises(ValueError, match="refuse_share"):
        refusal_threshold(coarse, 1.0)
    with pytest.raises(ValueError, match="finite"):
        refusal_threshold(np.array([0.1, np.nan]))


def test_ood_auroc_orientation_and_chance():
    rng = np.random.default_rng(8)
    assert ood_auroc([5, 6, 7], [1, 2, 3]) == 1.0  # higher = in-distribution
    assert ood_auroc([1, 2, 3], [5, 6, 7]) == 0.0
    assert ood_auroc(rng.normal(size=5000), rng.normal(size=5000)) == pytest.approx(0.5, abs=0.02)
    assert ood_auroc([1, 1], [1, 1]) == 0.5  # ties count half


# --- the figure --------------------------------------------------------------------------------------------------
def test_reliability_diagram_lies_inside_its_canvas():
    rng = np.random.default_rng(9)
    confidence = rng.uniform(0.5, 1, 2000) ** 0.3
    correct = rng.random(2000) < confidence**3
    before = reliability(confidence, correct) | {"ece": expected_calibration_error(confidence, correct)}
    after = reliability(confidence**3, correct) | {"ece": expected_calibration_error(confidence**3, correct)}
    figure = figures.reliability_diagram(before, after)
    width, height = figure.get_size_inches()
    drawn = figure.get_tightbbox(figure.canvas.get_renderer())
    assert drawn.x0 >= 0 and drawn.y0 >= 0 and drawn.x1 <= width and drawn.y1 <= height, drawn
    titles = " ".join(axis.get_title() for axis in figure.axes)
    assert f"{before['ece']:.3f}" in titles and f"{after['ece']:.3f}" in titles
    assert figures.png(figure).startswith(b"\x89PNG")
