"""The numbers evaluate reports, all computed by scikit-learn and SciPy: accuracy with its Wilson interval
(``stats.wilson_interval``), ROC AUC and ROC curves, and the seed's per-class table (precision, recall, f1,
support)."""

import numpy as np
from sklearn.metrics import classification_report, roc_auc_score, roc_curve

from signdigits.stats import wilson_interval

DECIMALS = 4  # enough to see a one-image change on ~80 test images, few enough to read a diff


def class_label(name: str) -> str:
    """How the seed's report names a class: '0' → '0 digit sign'."""
    return f"{name} digit sign"


def _round(value) -> float:
    return round(float(value), DECIMALS)


def roc_auc(y_true, proba) -> float:
    """Area under the ROC curve: of class 1 for one output (N,); for K classes (N, K) the macro average of the K
    one-class-against-the-rest areas, the area under ``macro_average_roc``."""
    if proba.ndim == 1:
        return float(roc_auc_score(y_true, proba))
    return float(roc_auc_score(y_true, proba, multi_class="ovr", average="macro", labels=range(proba.shape[1])))


def held_out_metrics(y_true, y_pred, proba, loss: float) -> dict:
    """The test split's figures, flat names that do not look like params: the accuracy ``test_acc`` (the headline
    of reports/metrics.json) and, for reports/test_details.json, its 95 % Wilson interval, the loss and the ROC AUC."""
    correct = int(np.sum(np.asarray(y_true) == np.asarray(y_pred)))
    low, high = wilson_interval(correct, len(y_true))
    return {
        "test_acc": _round(correct / len(y_true)),
        "test_accuracy_low": _round(low),
        "test_accuracy_high": _round(high),
        "test_loss": _round(loss),
        "test_roc_auc": _round(roc_auc(y_true, proba)),
    }


def roc_curves(y_true, proba) -> list[tuple[np.ndarray, np.ndarray]]:
    """(fpr, tpr) of scikit-learn's ROC curve: one of class 1 for one output (N,); for K classes (N, K), one per
    class, that class against the rest."""
    if proba.ndim == 1:
        fpr, tpr, _ = roc_curve(y_true, proba)
        return [(fpr, tpr)]
    curves = []
    for k in range(proba.shape[1]):
        fpr, tpr, _ = roc_curve(np.asarray(y_true) == k, proba[:, k])
        curves.append((fpr, tpr))
    return curves


def macro_average_roc(curves) -> tuple[np.ndarray, np.ndarray]:
    """The mean of ROC curves, point by point over every false-positive rate any of them has: a curve whose area
    is the mean of their areas, so it is the curve of ``roc_auc``'s macro average.

    A curve steps straight up where several points share one false-positive rate f, so at each f the mean
    takes each curve's lowest point there and then its highest (np.interp of the points in order gives the
    highest; of the points reversed, the lowest). Between two such f each curve is a straight line, and so is
    their mean: the trapezoids under the mean curve add up to the mean of the curves' areas."""
    grid = np.unique(np.concatenate([fpr for fpr, _ in curves]))
    lowest = np.mean([-np.interp(-grid, -fpr[::-1], -tpr[::-1]) for fpr, tpr in curves], axis=0)
    highest = np.mean([np.interp(grid, fpr, tpr) for fpr, tpr in curves], axis=0)
    return np.repeat(grid, 2), np.column_stack([lowest, highest]).ravel()


def classification_report_text(y_true, y_pred, classes: list[str]) -> str:
    """The seed's Table 1: per-class precision, recall, f1, support; accuracy; macro and weighted averages."""
    return classification_report(
        y_true,
        y_pred,
        labels=list(range(len(classes))),
        target_names=[class_label(name) for name in classes],
        digits=DECIMALS,
        zero_division=0,
    )
