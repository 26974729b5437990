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
it. Two photos are refused before any score: one too small to hold a hand (``MIN_SIDE``), and a flat one (a
wall, a lens cap, a blank screen: ``flat``), whose pixels spread less than any photo of the dataset by far.
"""

import numpy as np
from scipy.special import softmax

from signdigits import calibration

MIN_SIDE = 16  # pixels: a photo whose shorter side is smaller cannot show a hand's fingers
# The standard deviation of a photo's grey levels (in [0, 1]) below which it is flat. Every photo of the dataset
# spreads 0.10 or more (median 0.14); the same photo half as bright, 0.05 or more.
MIN_SPREAD = 0.03


def flat(X) -> np.ndarray:
    """Which rows of X (grey levels in [0, 1]) are flat: their standard deviation is below MIN_SPREAD."""
    return np.asarray(X).std(axis=1) < MIN_SPREAD


def fit_stats(net, X_train, y_train, score: str) -> dict:
    """What ``score`` needs from the training rows: the Mahalanobis class means and precision, or nothing."""
    if score != "mahalanobis":
        return {}
    stats = calibration.fit_mahalanobis(net.features(X_train).astype(np.float64), np.asarray(y_train))
    return {"means": stats["means"], "precision": stats["precision"]}  # every class is in the training rows


def other_probability(net, X, temperature: float) -> np.ndarray:
    """P(other) of each row of X: the last unit's share of softmax(U / T) over the output layer's logits U,
    for a network with the ``other_output`` output (train.other_hands)."""
    U = np.asarray(net.outputs(X), dtype=np.float64)
    return softmax(U / temperature, axis=1)[:, -1]


def ood_score(net, X, score: str, stats: dict, temperature: float, Z=None) -> np.ndarray:
    """The out-of-distribution score of each row of X (higher: more like the training photos). ``Z``, the
    network's logits of X, may be given when already computed. With the ``other_output`` output, ``msp`` and
    ``energy`` read all the output layer's units U: msp is the highest probability of a class in softmax(U / T),
    P(a hand of the classes) · P(its most probable class | such a hand), and energy is T · logsumexp over the
    classes' units of U / T."""
    if score == "mahalanobis":
        return calibration.mahalanobis(net.features(X).astype(np.float64), stats)
    if net.other_output:
        U = np.asarray(net.outputs(X), dtype=np.float64)
        if score == "msp":
            return softmax(U / temperature, axis=1)[:, :-1].max(axis=1)
        return calibration.energy(U[:, :-1], temperature)
    Z = net.logits(X) if Z is None else Z
    Z = np.asarray(Z, dtype=np.float64)
    return calibration.msp(Z, temperature) if score == "msp" else calibration.energy(Z, temperature)


def refused(net, X, Z=None, scores=None) -> np.ndarray:
    """Which rows of X the network refuses to answer: the flat ones, and those whose score is below the model's
    threshold (if the model file holds one: not a model trained without cross-validation, or before refusal
    existed). ``Z`` (the logits of X) or ``scores`` (its scores) may be given when already computed."""
    if net.refusal is None:
        return flat(X)
    if scores is None:
        scores = ood_score(net, X, net.refusal["score"], net.ood_stats, net.temperature, Z)
    return flat(X) | (scores < net.refusal["threshold"])
