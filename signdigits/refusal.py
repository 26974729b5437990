"""The model's "I don't know": when ``predict`` answers "?" instead of a digit.

A network answers every photo with some digit, and its highest probability is high for almost anything: a red
ball, a flat grey wall. Refusal compares an out-of-distribution score (higher: more like the training photos) with
a threshold chosen on the validation folds, never on the test split:

- ``msp``: the highest class probability after temperature scaling (Hendrycks & Gimpel, 2017);
- ``energy``: T · logsumexp(Z / T) of the logits Z (Liu et al., 2020);
- ``mahalanobis``: minus the squared Mahalanobis distance of the last hidden layer's activations to the nearest
  class mean, with one covariance shared by the classes (Lee et al., 2018). Its class means and precision
  matrix are fitted on the training rows' activations and stored in the model file (``ood_stats``).

The maths is in calibration.py; this module applies it to a network. Stage crossval scores each validation fold
with the network that did not train on it and sets the threshold so that at most ``refusal.max_refused`` of
those clean photos are refused; stage train stores it in the model file, and ``predict`` and ``evaluate`` use
it. A photo too small to hold a hand is refused before the model sees it (``MIN_SIDE``).
"""

import numpy as np

from signdigits import calibration

MIN_SIDE = 16  # pixels: a photo whose shorter side is smaller cannot show a hand's fingers


def fit_stats(net, X_train, y_train, score: str) -> dict:
    """What ``score`` needs from the training rows: the Mahalanobis class means and precision, or nothing."""
    if score != "mahalanobis":
        return {}
    stats = calibration.fit_mahalanobis(net.features(X_train).astype(np.float64), np.asarray(y_train))
    return {"means": stats["means"], "precision": stats["precision"]}  # every class is in the training rows


def ood_score(net, X, score: str, stats: dict, temperature: float, Z=None) -> np.ndarray:
    """The out-of-distribution score of each row of X (higher: more like the training photos). ``Z``, the
    network's logits of X, may be given when already computed."""
    if score == "mahalanobis":
        return calibration.mahalanobis(net.features(X).astype(np.float64), stats)
    Z = net.logits(X) if Z is None else Z
    Z = np.asarray(Z, dtype=np.float64)
    return calibration.msp(Z, temperature) if score == "msp" else calibration.energy(Z, temperature)


def refused(net, X, Z=None) -> np.ndarray:
    """Which rows of X the network refuses to answer (its stored score below its stored threshold); none if the
    model file holds no refusal (a model trained without cross-validation, or before refusal existed)."""
    if net.refusal is None:
        return np.zeros(len(X), dtype=bool)
    scores = ood_score(net, X, net.refusal["score"], net.ood_stats, net.temperature, Z)
    return scores < net.refusal["threshold"]
