"""Judging a trained model on the split: metrics.json and test_details.json, the per-class table, per-image
predictions for DVC's confusion plot, the ROC points for DVC's ROC plot, the accuracy under the perturbation suite,
the model's refusals, and the figures.

Probabilities, the loss and the calibration error are those of the calibrated model (its logits divided by the
temperature chosen on the validation folds), as ``predict`` shows them."""

import csv
import io
from dataclasses import dataclass

import numpy as np
from threadpoolctl import threadpool_limits

from signdigits import calibration, robustness
from signdigits.errors import UsageError
from signdigits.metrics import DECIMALS, classification_report_text, held_out_metrics, macro_average_roc, roc_curves
from signdigits.network import standardization
from signdigits.perturbations import MEASURED_NON_HANDS, non_hands
from signdigits.refusal import ood_score, refused
from signdigits.stats import discordant_counts, mcnemar_p

NON_HANDS_SEED = 1  # evaluate's synthetic non-hands: other images than crossval's (seed 0)


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
    proba: np.ndarray  # P(class 1) (N,) or class probabilities (N, K), calibrated
    confidence: np.ndarray  # the probability of the predicted class
    logits: np.ndarray  # Z of the last layer, before the temperature
    refused: np.ndarray  # the photos the model answers "?" (refusal.py)


def predict_split(net, split: dict) -> Predictions:
    with net.blas_threads():
        Z = net.logits(split["X_test"])
        y_pred, proba = net.classes(Z), net.probabilities(Z)
        is_refused = refused(net, split["X_test"], Z)
    return Predictions(y_pred, proba, confidence_of_prediction(proba, y_pred), Z, is_refused)


def refusal_report(net, X_test, y_test, predictions: Predictions, X_others) -> dict:
    """reports/refusal.json: the share of photos the model refuses among the clean test photos, synthetic
    non-hands (seed NON_HANDS_SEED) and photos of the digits it was not trained on (``X_others``, the test split's
    other hands; None or none: no such figures),
    and how well its score tells the test photos from each of the others (AUROC), and its accuracy on the test
    photos it answers (None if it refuses them all). Without a refusal threshold (cross-validation off) only flat
    images are refused, and there is no score."""
    side = int(round(np.sqrt(net.n_inputs)))
    others = {"non_hands": non_hands(MEASURED_NON_HANDS, side, seed=NON_HANDS_SEED)}
    if X_others is not None and len(X_others):
        others["other_digits"] = X_others
    report = {"score": None, "threshold": None, "refused": {}, "auroc": {}}
    report["refused"]["test"] = round(float(np.mean(predictions.refused)), DECIMALS)
    with net.blas_threads():
        if net.refusal is not None:
            report |= {"score": net.refusal["score"], "threshold": net.refusal["threshold"]}
            scores_in = ood_score(net, X_test, report["score"], net.ood_stats, net.temperature, predictions.logits)
        for name, X in others.items():
            scores_out = None
            if net.refusal is not None:
                scores_out = ood_score(net, X, report["score"], net.ood_stats, net.temperature)
                report["auroc"][name] = round(calibration.ood_auroc(scores_in, scores_out), DECIMALS)
            report["refused"][name] = round(float(np.mean(refused(net, X, scores=scores_out))), DECIMALS)
    answered = ~predictions.refused
    right = predictions.y_pred[answered] == y_test[answered]
    report["accuracy_answered"] = round(float(np.mean(right)), DECIMALS) if answered.any() else None  # none answered
    return report


def robustness_on_test(net, split: dict) -> dict:
    """robustness.accuracy_table of the model on the test split."""
    with net.blas_threads():
        return robustness.accuracy_table(net.predict, split["X_test"], split["y_test"])


def evaluate(net, split: dict, meta: dict, baseline: dict, predictions: Predictions, robust: dict, X_others) -> dict:
    """Everything evaluate writes but the figures, as {relative path: content}: the headline metric (the test
    accuracy ``test_acc``, the only figure of reports/metrics.json, which DVC declares as a metric) and the details
    in reports/test_details.json (its interval, the calibrated loss and calibration error, the ROC AUC, the accuracy
    under the perturbation suite, the share of test photos refused, and ``baseline``), the per-class table,
    per-photo predictions (each photo named by its source), ROC points, the suite's table (``robust``, from
    ``robustness_on_test``) and the refusals."""
    classes = meta["classes"]
    X_test, y_test, y_pred, proba = split["X_test"], split["y_test"], predictions.y_pred, predictions.proba
    loss = calibration.negative_log_likelihood(predictions.logits, y_test, net.temperature)
    refusals = refusal_report(net, X_test, y_test, predictions, X_others)
    details = held_out_metrics(y_test, y_pred, proba, loss) | {
        "test_ece": round(calibration.expected_calibration_error(predictions.confidence, y_pred == y_test), DECIMALS),
        "test_robust_accuracy": round(robustness.robust_accuracy(robust), DECIMALS),
        "test_refused": refusals["refused"]["test"],
    }
    details |= baseline
    metrics = {"test_acc": details.pop("test_acc")}
    rows = io.StringIO()  # a path holding a comma stays one cell
    table = csv.writer(rows, lineterminator="\n")
    table.writerow(["actual", "predicted", "probability", "refused", "source"])
    for a, p, c, r, source in zip(y_test, y_pred, predictions.confidence, predictions.refused, split["sources_test"]):
        table.writerow([classes[a], classes[p], f"{c:.4f}", int(r), source])
    curves = roc_curves(y_test, proba)
    fpr, tpr = curves[0] if len(curves) == 1 else macro_average_roc(curves)
    roc = ["fpr,tpr"] + [f"{f:.6f},{t:.6f}" for f, t in zip(fpr, tpr)]
    return {
        "reports/metrics.json": metrics,
        "reports/test_details.json": details,
        "reports/classification_report.txt": classification_report_text(y_test, y_pred, classes),
        "reports/predictions.csv": rows.getvalue(),
        "reports/roc.csv": "\n".join(roc) + "\n",
        "reports/robustness.csv": robustness.table_csv(robust, float(np.mean(y_pred == y_test))),
        "reports/refusal.json": refusals,
    }


def figures(history: dict, calibrated: dict, X_test, y_test, meta: dict, predictions: Predictions, robust) -> dict:
    """The PNG figures, as {relative path: bytes}. The one that shows dataset photos (prediction examples) goes
    beside reports/figures/, not in it: it is not committed."""
    from signdigits import figures as draw

    classes, p = meta["classes"], predictions
    clean = float(np.mean(p.y_pred == y_test))
    drawn = {
        "reports/figures/loss_curve.png": draw.loss_curve(history),
        "reports/figures/confusion_matrix.png": draw.confusion_matrix(y_test, p.y_pred, classes),
        "reports/figures/roc_curve.png": draw.roc_curve(y_test, p.proba, classes),
        "reports/figures/robustness.png": draw.robustness_curves(
            robust, clean, chance=1 / len(classes), title="Accuracy under the perturbation suite (test split)"
        ),
        "reports/figures/calibration.png": (
            draw.reliability_diagram(*reliability_tables(calibrated))
            if calibrated["refusal"] is not None
            else draw.notice("cross-validation is off (split.folds ≤ 1): nothing to calibrate on, temperature 1")
        ),
        "reports/prediction_examples.png": draw.prediction_examples(X_test, y_test, p.y_pred, p.confidence, classes),
    }
    return {path: draw.png(figure) for path, figure in drawn.items()}


def reliability_tables(calibrated: dict) -> tuple[dict, dict]:
    """The reliability tables before and after temperature scaling from reports/calibration.json, as
    figures.reliability_diagram takes them; empty ones with cross-validation off."""
    tables = []
    for name in ("before", "after"):
        table = calibrated.get(f"reliability_{name}")
        table = {k: np.array(v, dtype=float) for k, v in table.items()} if table else {}
        temperature = 1.0 if name == "before" else calibrated["temperature"]
        tables.append(table | {"ece": calibrated.get(f"ece_{name}"), "temperature": temperature})
    return tables[0], tables[1]


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
