"""Judging a trained model on the split: metrics.json, the classification table, per-image predictions for
DVC's confusion plot, the ROC points, and the figures."""

from dataclasses import dataclass

import numpy as np
from threadpoolctl import threadpool_limits

from signdigits.errors import UsageError
from signdigits.metrics import (
    DECIMALS,
    classification_metrics,
    classification_report_text,
    confusion_counts,
    roc_points,
)
from signdigits.network import standardization


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
    """The model's answers on the test split, and what the figures and reports derive from them."""

    y_pred: np.ndarray  # predicted class indices
    proba: np.ndarray  # P(class 1) (N,) or class probabilities (N, K)
    confidence: np.ndarray  # the probability of the predicted class
    fpr: np.ndarray  # ROC curve points
    tpr: np.ndarray
    matrix: np.ndarray  # confusion counts, true × predicted


def predict_split(net, split: dict, n_classes: int) -> Predictions:
    y_pred, proba = net.predict_with_proba(split["X_test"])
    fpr, tpr = roc_points(split["y_test"], proba, n_classes)
    return Predictions(
        y_pred,
        proba,
        confidence_of_prediction(proba, y_pred),
        fpr,
        tpr,
        confusion_counts(split["y_test"], y_pred, n_classes),
    )


def evaluate(net, split: dict, meta: dict, baseline: dict, predictions: Predictions) -> dict:
    """Everything evaluate writes but the figures, as {relative path: content}; metrics by scikit-learn."""
    classes = meta["classes"]
    y_test, y_pred = split["y_test"], predictions.y_pred
    test = {"loss": round(net.loss(split["X_test"], y_test), DECIMALS)}
    test |= classification_metrics(y_test, y_pred, predictions.proba, classes)
    train_loss, train_accuracy = net.evaluate(split["X_train"], split["y_train"])
    metrics = {
        "test": test,
        "train": {"accuracy": round(train_accuracy, DECIMALS), "loss": round(train_loss, DECIMALS)},
        "baseline": baseline,
    }
    rows = ["actual,predicted,probability"]
    rows += [f"{classes[a]},{classes[p]},{c:.4f}" for a, p, c in zip(y_test, y_pred, predictions.confidence)]
    roc = ["fpr,tpr"] + [f"{f:.6f},{t:.6f}" for f, t in zip(predictions.fpr, predictions.tpr)]
    return {
        "reports/metrics.json": metrics,
        "reports/classification_report.txt": classification_report_text(y_test, y_pred, classes),
        "reports/predictions.csv": "\n".join(rows) + "\n",
        "reports/roc.csv": "\n".join(roc) + "\n",
    }


def figures(history: dict, X_test, y_test, meta: dict, predictions: Predictions) -> dict:
    """The PNG figures, as {relative path: bytes}. Needs matplotlib, not scikit-learn."""
    from signdigits import figures as draw

    classes, p = meta["classes"], predictions
    auc = float(np.trapezoid(p.tpr, p.fpr))
    return {
        "reports/figures/loss_curve.png": draw.loss_curve(history),
        "reports/figures/confusion_matrix.png": draw.confusion_matrix(p.matrix, classes),
        "reports/figures/roc_curve.png": draw.roc_curve(p.fpr, p.tpr, auc, p.proba.ndim == 2),
        "reports/prediction_examples.png": draw.prediction_examples(X_test, y_test, p.y_pred, p.confidence, classes),
    }


def logistic_regression_baseline(split: dict) -> dict:
    """A plain linear model on the same train split: is the network worth it?

    Its inputs are standardized as the network's (``standardization``), and it is fitted to convergence
    (tol 1e-6, float64, one BLAS thread): its loss is convex with one minimum, and stopping early or summing on
    more threads moved the ten-digit accuracy by up to a point between runs."""
    from sklearn.linear_model import LogisticRegression

    X_train, X_test = split["X_train"].astype(np.float64), split["X_test"].astype(np.float64)
    mean, scale = standardization(X_train)
    with threadpool_limits(limits=1, user_api="blas"):
        model = LogisticRegression(tol=1e-6, max_iter=10_000).fit((X_train - mean) / scale, split["y_train"])
        accuracy = model.score((X_test - mean) / scale, split["y_test"])
    return {"logistic_regression": {"test_accuracy": round(float(accuracy), DECIMALS)}}
