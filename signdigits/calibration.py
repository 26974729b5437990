"""Calibrated probabilities and an "I don't know": temperature scaling, the expected calibration error, and
out-of-distribution scores with a refusal threshold.

The logits Z are a network's last-layer outputs: (N, 1) for two classes (σ(Z[:, 0]) is P(class 1)), (N, K) for
K ≥ 3 classes (softmax). Everything here works on both; ``class_logits`` turns binary logits z into the
equivalent two-class logits [0, z], since softmax([0, z]) = [1 − σ(z), σ(z)]. All the maths is done in float64.

- Temperature scaling (Guo et al., 2017, "On Calibration of Modern Neural Networks"): one scalar T > 0 divides
  every logit, softmax(Z / T), chosen to minimise the negative log-likelihood on held-out predictions. It
  changes no prediction (argmax of Z / T is argmax of Z), only how sure the network says it is.
- Expected calibration error (Naeini et al., 2015, "Obtaining Well Calibrated Probabilities Using Bayesian
  Binning"; in the form Guo et al. use): the confidences are put in equal-width bins, and ECE is the mean over
  photos of |accuracy − mean confidence| of their bin.
- Out-of-distribution scores, each "higher = more like the training photos":
  the maximum softmax probability (Hendrycks & Gimpel, 2017, "A Baseline for Detecting Misclassified and
  Out-of-Distribution Examples in Neural Networks"), the energy score T · logsumexp(Z / T) (Liu et al., 2020,
  "Energy-based Out-of-distribution Detection"), and minus the Mahalanobis distance of the last hidden layer's
  features to the nearest class mean under one covariance shared by the classes (Lee et al., 2018, "A Simple
  Unified Framework for Detecting Out-of-Distribution Samples and Adversarial Attacks").
- ``refusal_threshold``: the score below which a photo is refused, from the scores of clean validation photos;
  ``ood_auroc``: how well a score tells in-distribution photos from others.
"""

import numpy as np
from scipy.special import log_softmax, logsumexp, softmax

TEMPERATURE_BOUNDS = (0.05, 20.0)  # the range fit_temperature searches
ECE_BINS = 15


# --- logits and probabilities ----------------------------------------------------------------------------------------
def class_logits(Z) -> np.ndarray:
    """Z as (N, K) class logits in float64, K ≥ 2: binary logits (N, 1) become [0, z] (softmax([0, z]) is
    [1 − σ(z), σ(z)]); (N, K) logits with K ≥ 2 are returned as they are. Any other shape is a ValueError."""
    Z = np.asarray(Z, dtype=np.float64)
    if Z.ndim != 2 or Z.shape[1] < 1:
        raise ValueError(f"logits must have shape (N, 1) or (N, K), not {Z.shape}")
    if Z.shape[1] == 1:
        return np.column_stack([np.zeros(len(Z)), Z[:, 0]])
    return Z


def _checked_temperature(temperature) -> float:
    T = float(temperature)
    if not (np.isfinite(T) and T > 0):
        raise ValueError(f"the temperature must be a positive number, not {temperature}")
    return T


def probabilities(Z, temperature=1.0) -> np.ndarray:
    """Class probabilities softmax(Z / T), (N, K), with K = 2 for binary logits (columns P(class 0), P(class 1))."""
    return softmax(class_logits(Z) / _checked_temperature(temperature), axis=1)


def _checked_labels(y, N, K) -> np.ndarray:
    y = np.asarray(y)
    if y.shape != (N,):
        raise ValueError(f"labels must have shape ({N},), not {y.shape}")
    if not np.issubdtype(y.dtype, np.integer) or (N and (y.min() < 0 or y.max() >= K)):
        raise ValueError(f"labels must be class indices in 0 … {K - 1}")
    return y.astype(np.int64)


def negative_log_likelihood(Z, y, temperature=1.0) -> float:
    """Mean negative log-likelihood of the labels y (class indices) under softmax(Z / T):
    (1/N) Σ_i −log softmax(z_i / T)_{y_i}, from the logits (log-softmax: nothing overflows or is clipped)."""
    Z = class_logits(Z)
    y = _checked_labels(y, *Z.shape)
    log_p = log_softmax(Z / _checked_temperature(temperature), axis=1)
    return float(-log_p[np.arange(len(y)), y].mean())


def fit_temperature(Z, y) -> float:
    """Temperature scaling: the T > 0 that minimises ``negative_log_likelihood(Z, y, T)``, searched over log T
    in TEMPERATURE_BOUNDS (0.05 … 20) by bounded Brent's method (scipy.optimize.minimize_scalar), which is
    deterministic.

    With β = 1/T the NLL is convex in β (a log-sum-exp of functions linear in β, minus one linear in β), so it
    has one minimum along log T and the search finds it. T > 1 softens over-confident probabilities, T < 1
    sharpens under-confident ones. When every prediction is right the NLL keeps falling as T → 0, and the
    lower bound 0.05 is returned; a result at a bound means the optimum is at or beyond it. Fit it on held-out
    (out-of-fold) logits, never on the rows the network trained on nor on test."""
    from scipy.optimize import minimize_scalar  # imported where used: of the stages, only crossval needs it

    Z = class_logits(Z)
    y = _checked_labels(y, *Z.shape)
    if len(y) == 0:
        raise ValueError("fit_temperature needs at least one row")
    log_low, log_high = np.log(TEMPERATURE_BOUNDS)
    result = minimize_scalar(
        lambda log_T: negative_log_likelihood(Z, y, np.exp(log_T)),
        bounds=(log_low, log_high),
        method="bounded",
        options={"xatol": 1e-8},
    )
    return float(np.exp(result.x))


# --- calibration -----------------------------------------------------------------------------------------------------
def _checked_confidence(confidence, correct):
    confidence = np.asarray(confidence, dtype=np.float64)
    correct = np.asarray(correct)
    if confidence.ndim != 1 or correct.shape != confidence.shape:
        raise ValueError(
            f"confidence and correct must be two arrays of shape (N,), not {confidence.shape}, {correct.shape}"
        )
    if len(confidence) == 0:
        raise ValueError("calibration needs at least one prediction")
    if not np.all((confidence >= 0) & (confidence <= 1)):
        raise ValueError("confidences must lie in [0, 1]")
    if not np.all((correct == 0) | (correct == 1)):
        raise ValueError("correct must be true/false (or 1/0) per prediction")
    return confidence, correct.astype(np.float64)


def reliability(confidence, correct, bins=ECE_BINS) -> dict:
    """The reliability table of predictions with ``confidence`` (the probability of the predicted class, (N,))
    and ``correct`` (whether the prediction is right, (N,) bool or 0/1), in ``bins`` equal-width bins of [0, 1].

    The bin edges are np.linspace(0, 1, bins + 1); bin b holds the confidences c with edge_b < c ≤ edge_{b+1}
    (right-closed), except that the first bin also holds c = 0: [0, edge_1]. Returns a dict of arrays, one
    entry per bin: ``lower``, ``upper`` (the edges), ``count`` (int), ``confidence`` (the mean confidence of its
    predictions) and ``accuracy`` (the share of them that are right), the last two NaN for an empty bin."""
    confidence, correct = _checked_confidence(confidence, correct)
    bins = int(bins)
    if bins < 1:
        raise ValueError(f"bins must be at least 1, not {bins}")
    edges = np.linspace(0.0, 1.0, bins + 1)
    # the number of inner edges strictly below c: edge_b < c ≤ edge_{b+1} gives b, and c = 0 gives 0
    index = np.searchsorted(edges[1:-1], confidence, side="left")
    count = np.bincount(index, minlength=bins)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_confidence = np.bincount(index, weights=confidence, minlength=bins) / count
        accuracy = np.bincount(index, weights=correct, minlength=bins) / count
    return {
        "lower": edges[:-1],
        "upper": edges[1:],
        "count": count.astype(np.int64),
        "confidence": np.where(count > 0, mean_confidence, np.nan),
        "accuracy": np.where(count > 0, accuracy, np.nan),
    }


def expected_calibration_error(confidence, correct, bins=ECE_BINS) -> float:
    """ECE = Σ_b |B_b| / N · |acc(B_b) − conf(B_b)|, over the equal-width bins B_b of ``reliability`` (right-closed,
    the first one [0, 1/bins]); acc is the share of right predictions in the bin, conf their mean confidence.
    Empty bins add nothing. 0 for perfectly calibrated predictions, at most 1."""
    table = reliability(confidence, correct, bins)
    filled = table["count"] > 0
    weights = table["count"][filled] / table["count"].sum()
    return float(np.sum(weights * np.abs(table["accuracy"][filled] - table["confidence"][filled])))


# --- out-of-distribution scores (higher = more like the training photos) ------------------------------------------
def msp(Z, temperature=1.0) -> np.ndarray:
    """Maximum softmax probability max_k softmax(Z / T)_k, (N,) (Hendrycks & Gimpel, 2017). For binary logits
    it is max(σ(z / T), 1 − σ(z / T)). It is also a prediction's confidence, as ``reliability`` takes it."""
    return probabilities(Z, temperature).max(axis=1)


def energy(Z, temperature=1.0) -> np.ndarray:
    """The energy score T · logsumexp(Z / T), (N,): minus the free energy of Liu et al. (2020). Binary logits are
    first made two-class, [0, z], so the score is T · log(1 + e^{z/T}).

    Unlike softmax, it depends on where the logits sit, not only on their differences: with [0, z] a photo
    the binary network is sure is class 1 (z ≫ 0) scores ≈ z, one it is sure is class 0 (z ≪ 0) scores ≈ 0,
    like an uncertain photo (T log 2). For a one-output network it is therefore no measure of familiarity for
    class 0; MSP is (and for two classes any score of |z| ranks photos as MSP does)."""
    T = _checked_temperature(temperature)
    return T * logsumexp(class_logits(Z) / T, axis=1)


def fit_mahalanobis(features, y) -> dict:
    """The statistics of the Mahalanobis score (Lee et al., 2018) from the last hidden layer's features (N, D) of
    the training photos and their labels y (class indices): ``classes`` (K,), the classes present in y, in
    order; ``means`` (K, D), each class's mean feature vector μ_k; and ``precision`` (D, D), the inverse of one
    covariance shared by the classes ("tied"), estimated by Ledoit-Wolf shrinkage (scikit-learn's LedoitWolf)
    on the class-centred features x_i − μ_{y_i} (so with assume_centered: divided by N, as in Lee et al.).
    Shrinkage keeps the estimate invertible when D is large next to N or features are constant (dead ReLUs).
    Plain float64 arrays: np.savez can store them."""
    from sklearn.covariance import LedoitWolf  # imported where used: only the Mahalanobis score needs it

    features = np.asarray(features, dtype=np.float64)
    y = np.asarray(y)
    if features.ndim != 2 or y.shape != (len(features),):
        raise ValueError(f"features must be (N, D) and labels (N,), not {features.shape} and {y.shape}")
    if len(features) < 2:
        raise ValueError("fit_mahalanobis needs at least two rows")
    classes = np.unique(y)
    means = np.stack([features[y == k].mean(axis=0) for k in classes])
    centred = features - means[np.searchsorted(classes, y)]
    precision = LedoitWolf(assume_centered=True).fit(centred).precision_
    return {"classes": classes, "means": means, "precision": np.asarray(precision, dtype=np.float64)}


def mahalanobis(features, stats) -> np.ndarray:
    """Minus the smallest squared Mahalanobis distance of each row of ``features`` (N, D) to a class mean,
    −min_k (x − μ_k)ᵀ P (x − μ_k), (N,), with μ_k and P from ``fit_mahalanobis``; 0 at a class mean, lower
    farther from every class."""
    features = np.asarray(features, dtype=np.float64)
    means, precision = np.asarray(stats["means"], np.float64), np.asarray(stats["precision"], np.float64)
    if features.ndim != 2 or features.shape[1] != means.shape[1]:
        raise ValueError(f"features must have shape (N, {means.shape[1]}), not {features.shape}")
    squared = np.empty((len(features), len(means)))
    for k, mean in enumerate(means):
        difference = features - mean
        squared[:, k] = np.sum((difference @ precision) * difference, axis=1)
    return -squared.min(axis=1)


# --- refusing, and judging a score -----------------------------------------------------------------------------------
def refusal_threshold(scores_in, refuse_share=0.02) -> float:
    """The threshold t of a score: a photo whose score is strictly below t is refused ("I don't know"); t is
    chosen on the scores of clean validation photos, ``scores_in`` (N,), so that at most ``refuse_share`` of them
    fall strictly below it.

    The rule: with k = ⌊refuse_share · N⌋, t is the (k + 1)-th smallest score (the empirical quantile
    np.quantile(scores_in, k / (N − 1), method="lower"), taken directly by sorting). Exactly the k smaller ones
    are below t when the scores are distinct; with ties at t, fewer (a tie is accepted, never refused). So the
    refused share of ``scores_in`` is at most refuse_share, and exactly it when the scores are distinct and
    refuse_share · N is a whole number. (k is computed with a 1e-9 allowance, so that 0.29 · 100, which is
    28.999999999999996 in floating point, counts as 29.) refuse_share = 0 gives the smallest score: nothing
    of scores_in is refused."""
    scores = np.asarray(scores_in, dtype=np.float64)
    if scores.ndim != 1 or len(scores) == 0 or not np.all(np.isfinite(scores)):
        raise ValueError("scores_in must be a non-empty (N,) array of finite scores")
    share = float(refuse_share)
    if not 0 <= share < 1:
        raise ValueError(f"refuse_share must be in [0, 1), not {refuse_share}")
    k = int(np.floor(share * len(scores) + 1e-9))
    return float(np.sort(scores)[k])


def ood_auroc(scores_in, scores_out) -> float:
    """Area under the ROC curve of telling in-distribution photos (positives, ``scores_in``) from others
    (``scores_out``) by the score, higher meaning in-distribution (scikit-learn's roc_auc_score): the chance that
    a random in-distribution photo scores higher than a random other one, ties counting half. 1: perfectly
    separated; 0.5: no better than chance."""
    from sklearn.metrics import roc_auc_score  # imported where used: stage train never needs scikit-learn

    scores_in, scores_out = np.ravel(scores_in), np.ravel(scores_out)
    if len(scores_in) == 0 or len(scores_out) == 0:
        raise ValueError("ood_auroc needs scores of both sets")
    labels = np.concatenate([np.ones(len(scores_in)), np.zeros(len(scores_out))])
    return float(roc_auc_score(labels, np.concatenate([scores_in, scores_out])))
