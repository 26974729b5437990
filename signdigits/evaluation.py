"""Judging a trained model on the split: metrics.json, the per-class table, per-image predictions for DVC's
confusion plot, the ROC points for DVC's ROC plot, and the figures."""

from dataclasses import dataclass

import numpy as np
from threadpoolctl import threadpool_limits

from signdigits.errors import UsageError
from signdigits.metrics import DECIMALS, classification_report_text, held_out_metrics, macro_average_roc, roc_curves
from signdigits.network import standardization
from signdigits.stats import discordant_counts, mcnemar_p


def check_model_matches(net, meta: dict, model_path: str) -> None:
    """The model must have been trained on the classes and image size the split holds."""
    trained_on = net.metadata.get("classes")
    if trained_on != meta["classes"]:
        raise UsageError(
            f"{model_path} was trained on classes {trained_on} but the split holds {meta['classes']}; "
            "retrain with `dvc repro train`"
        )
    if net.n_inputs != meta["image_size"] ** 2:
        raise UsageError(
            f"{model_path} expects {net.n_inputs} pixels but the split has images of {meta['image_size']}² pixels; "
            "retrain with `dvc repro train`"
        )


def confidence_of_prediction(proba, y_pred):
    """The probability the network gives to the class it predicts."""
    if proba.ndim == 1:
        return np.where(y_pred == 1, proba, 1 - proba)
    return proba[np.arange(len(y_pred)), y_pred]


@dataclass
class Predictions:
    """The model's answers on the test split."""

    y_pred: np.ndarray  # predicted class indices
    proba: np.ndarray  # P(class 1) (N,) or class probabilities (N, K)
    confidence: np.ndarray  # the probability of the predicted class


def predict_split(net, split: dict) -> Predictions:
    y_pred, proba = net.predict_with_proba(split["X_test"])
    return Predictions(y_pred, proba, confidence_of_prediction(proba, y_pred))


def evaluate(net, split: dict, meta: dict, baseline: dict, predictions: Predictions) -> dict:
    """Everything evaluate writes but the figures, as {relative path: content}."""
    classes = meta["classes"]
    y_test, y_pred, proba = split["y_test"], predictions.y_pred, predictions.proba
    metrics = held_out_metrics(y_test, y_pred, proba, net.loss(split["X_test"], y_test)) | baseline
    rows = ["actual,predicted,probability"]
    rows += [f"{classes[a]},{classes[p]},{c:.4f}" for a, p, c in zip(y_test, y_pred, predictions.confidence)]
    curves = roc_curves(y_test, proba)
    fpr, tpr = curves[0] if len(curves) == 1 else macro_average_roc(curves)
    roc = ["fpr,tpr"] + [f"{f:.6f},{t:.6f}" for f, t in zip(fpr, tpr)]
    return {
        "reports/metrics.json": metrics,
        "reports/classification_report.txt": classification_report_text(y_test, y_pred, classes),
        "reports/predictions.csv": "\n".join(rows) + "\n",
        "reports/roc.csv": "\n".join(roc) + "\n",
    }


def figures(history: dict, X_test, y_test, meta: dict, predictions: Predictions) -> dict:
    """The PNG figures, as {relative path: bytes}."""
    from signdigits import figures as draw

    classes, p = meta["classes"], predictions
    drawn = {
        "reports/figures/loss_curve.png": draw.loss_curve(history),
        "reports/figures/confusion_matrix.png": draw.confusion_matrix(y_test, p.y_pred, classes),
        "reports/figures/roc_curve.png": draw.roc_curve(y_test, p.proba, classes),
        "reports/prediction_examples.png": draw.prediction_examples(X_test, y_test, p.y_pred, p.confidence, classes),
    }
    return {path: draw.png(figure) for path, figure in drawn.items()}


def logistic_regression_baseline(split: dict, network_predicted) -> dict:
    """A plain linear model on the same train split: is the network worth it? Its test accuracy, and the exact
    McNemar p-value of the network (``network_predicted``, its test predictions) against it on the same photos.

    Its inputs are standardized as the network's (``standardization``), and it is fitted to convergence
    (tol 1e-6, float64, one BLAS thread): its loss is convex with one minimum, and stopping early or summing on
    more threads moved the ten-digit accuracy by up to a point between runs."""
    from sklearn.linear_model import LogisticRegression

    X_train, X_test = split["X_train"].astype(np.float64), split["X_test"].astype(np.float64)
    mean, scale = standardization(X_train)
    with threadpool_limits(limits=1, user_api="blas"):
        model = LogisticRegression(tol=1e-6, max_iter=10_000).fit((X_train - mean) / scale, split["y_train"])
        predicted = model.predict((X_test - mean) / scale)
    network_only, baseline_only = discordant_counts(split["y_test"], network_predicted, predicted)
    return {
        "baseline_test_accuracy": round(float(np.mean(predicted == split["y_test"])), DECIMALS),
        # four significant digits, not decimals: on ten digits p is far below 0.0001, and 0.0 would say "impossible"
        "mcnemar_p_vs_baseline": float(f"{mcnemar_p(network_only, baseline_only):.4g}"),
    }
