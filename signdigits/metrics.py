"""The numbers evaluate reports: accuracy with its Wilson interval, loss, ROC AUC, per-class and averaged
precision/recall/F1 (scikit-learn), laid out as reports/metrics.json and the seed's classification table."""

import math

import numpy as np

DECIMALS = 4  # enough to see a one-image change on ~80 test images, few enough to read a diff


def class_label(name: str) -> str:
    """How the seed's report names a class: '0' → '0 digit sign'."""
    return f"{name} digit sign"


def wilson_interval(successes: int, trials: int, z: float = 1.959963984540054) -> tuple[float, float]:
    """95 % Wilson score interval for a proportion: better than p ± z√(p(1−p)/n) near 0 or 1 and for small n.

    centre = (p + z²/2n) / (1 + z²/n),  half-width = z √(p(1−p)/n + z²/4n²) / (1 + z²/n)."""
    if trials == 0:
        return 0.0, 1.0
    p = successes / trials
    denominator = 1 + z * z / trials
    centre = (p + z * z / (2 * trials)) / denominator
    half = z * math.sqrt(p * (1 - p) / trials + z * z / (4 * trials * trials)) / denominator
    return max(0.0, centre - half), min(1.0, centre + half)


def _round(value):
    return round(float(value), DECIMALS)


def classification_metrics(y_true, y_pred, proba, classes: list[str]) -> dict:
    """The ``test`` block of metrics.json (without the loss, which the model computes)."""
    from sklearn.metrics import accuracy_score, precision_recall_fscore_support, roc_auc_score

    labels = list(range(len(classes)))
    correct = int(np.sum(np.asarray(y_true) == np.asarray(y_pred)))
    low, high = wilson_interval(correct, len(y_true))
    block = {"accuracy": _round(accuracy_score(y_true, y_pred))}
    block["accuracy_ci95"] = {"low": _round(low), "high": _round(high)}
    if proba.ndim == 1:
        block["roc_auc"] = _round(roc_auc_score(y_true, proba))
    else:  # one class against the rest, averaged over the classes
        block["roc_auc"] = _round(roc_auc_score(y_true, proba, multi_class="ovr", average="macro", labels=labels))
    for average in ("macro", "weighted"):
        precision, recall, f1, _ = precision_recall_fscore_support(
            y_true, y_pred, labels=labels, average=average, zero_division=0
        )
        block[f"{average}_avg"] = {"precision": _round(precision), "recall": _round(recall), "f1": _round(f1)}
    precision, recall, f1, support = precision_recall_fscore_support(
        y_true, y_pred, labels=labels, average=None, zero_division=0
    )
    block["per_class"] = {
        name: {"precision": _round(p), "recall": _round(r), "f1": _round(f), "support": int(s)}
        for name, p, r, f, s in zip(classes, precision, recall, f1, support)
    }
    return block


def classification_report_text(y_true, y_pred, classes: list[str]) -> str:
    """The seed's Table 1: per-class precision, recall, f1, support; accuracy; macro and weighted averages."""
    from sklearn.metrics import classification_report

    return classification_report(
        y_true,
        y_pred,
        labels=list(range(len(classes))),
        target_names=[class_label(name) for name in classes],
        digits=2,
        zero_division=0,
    )


def roc_points(y_true, proba, n_classes: int):
    """(fpr, tpr) of the ROC curve: of class 1 for one output, micro-averaged one-vs-rest for K classes
    (every (image, class) pair a binary case). Computed here, without scikit-learn, so the figures can be drawn
    without importing it; the tests check it against sklearn.metrics.roc_curve.

    Sorted by falling score, each distinct score is a threshold: the positives and negatives at or above it are
    its true and false positives."""
    if proba.ndim == 1:
        truth, score = np.asarray(y_true) == 1, np.asarray(proba)
    else:
        truth, score = (np.eye(n_classes)[y_true] == 1).ravel(), proba.ravel()
    order = np.argsort(-score, kind="stable")
    truth, score = truth[order], score[order]
    last_of_each_score = np.r_[np.flatnonzero(np.diff(score)), len(score) - 1]
    true_positives = np.cumsum(truth)[last_of_each_score]
    false_positives = last_of_each_score + 1 - true_positives
    fpr = np.r_[0.0, false_positives / max(1, (~truth).sum())]
    tpr = np.r_[0.0, true_positives / max(1, truth.sum())]
    return fpr, tpr


def confusion_counts(y_true, y_pred, n_classes: int) -> np.ndarray:
    """K × K counts, rows the true class and columns the predicted one (as sklearn.metrics.confusion_matrix)."""
    pairs = np.asarray(y_true) * n_classes + np.asarray(y_pred)
    return np.bincount(pairs, minlength=n_classes * n_classes).reshape(n_classes, n_classes)
