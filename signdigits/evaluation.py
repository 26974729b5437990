"""Judging a trained model on the split: metrics.json, the classification table, per-image predictions for
DVC's confusion plot, the ROC points, and the figures."""

import numpy as np

from signdigits.errors import UsageError
from signdigits.metrics import DECIMALS, classification_metrics, classification_report_text, roc_points


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


def evaluate(net, split: dict, meta: dict, baseline: dict) -> dict:
    """Everything evaluate writes, as {relative path: content}, figures excepted (see ``figures``)."""
    classes = meta["classes"]
    y_test = split["y_test"]
    proba = net.predict_proba(split["X_test"])
    y_pred = net.predict(split["X_test"])
    test = {"loss": round(net.loss(split["X_test"], y_test), DECIMALS)}
    test |= classification_metrics(y_test, y_pred, proba, classes)
    train_loss, train_accuracy = net.evaluate(split["X_train"], split["y_train"])
    metrics = {
        "test": test,
        "train": {"accuracy": round(train_accuracy, DECIMALS), "loss": round(train_loss, DECIMALS)},
        "baseline": baseline,
    }
    rows = ["actual,predicted,probability"]
    rows += [
        f"{classes[a]},{classes[p]},{c:.4f}" for a, p, c in zip(y_test, y_pred, confidence_of_prediction(proba, y_pred))
    ]
    fpr, tpr = roc_points(y_test, proba, len(classes))
    roc = ["fpr,tpr"] + [f"{f:.6f},{t:.6f}" for f, t in zip(fpr, tpr)]
    return {
        "reports/metrics.json": metrics,
        "reports/classification_report.txt": classification_report_text(y_test, y_pred, classes),
        "reports/predictions.csv": "\n".join(rows) + "\n",
        "reports/roc.csv": "\n".join(roc) + "\n",
    }, (y_pred, proba, fpr, tpr)


def figures(history: dict, split: dict, meta: dict, metrics: dict, y_pred, proba, fpr, tpr) -> dict:
    from sklearn.metrics import confusion_matrix

    from signdigits import figures as draw

    classes = meta["classes"]
    y_test = split["y_test"]
    matrix = confusion_matrix(y_test, y_pred, labels=list(range(len(classes))))
    return {
        "reports/figures/loss_curve.png": draw.loss_curve(history),
        "reports/figures/confusion_matrix.png": draw.confusion_matrix(matrix, classes),
        "reports/figures/roc_curve.png": draw.roc_curve(fpr, tpr, metrics["test"]["roc_auc"], proba.ndim == 2),
        "reports/prediction_examples.png": draw.prediction_examples(
            split["X_test"], y_test, y_pred, confidence_of_prediction(proba, y_pred), classes
        ),
    }


def logistic_regression_baseline(split: dict) -> dict:
    """A plain linear model on the same train split: is the network worth it?"""
    from sklearn.linear_model import LogisticRegression

    model = LogisticRegression(max_iter=2000)
    model.fit(split["X_train"], split["y_train"])
    accuracy = float(np.mean(model.predict(split["X_test"]) == split["y_test"]))
    return {"logistic_regression": {"test_accuracy": round(accuracy, DECIMALS)}}
