"""k-fold cross-validation of the configured network on the training rows (the test split is never read).

For each fold f of data/split/folds.npy, a fresh network (the ``train`` params) is trained on the rows of the
other folds and scored on the rows of fold f. Every training row is held out exactly once, so the folds'
predictions together are one out-of-fold prediction per training row: its accuracy is an estimate over all the
training rows, with a Wilson interval narrower than the test split's (4 times the rows with 5 folds).

The per-epoch history is the mean over folds (train_* on each fold's training rows, val_* on its validation
fold, batch_loss over the epoch's batches as they were trained), with the standard deviation of val_* over folds
beside it.

The same out-of-fold principle gives everything else chosen or judged before the test split: the accuracy
under the perturbation suite (robustness.py), the temperature that calibrates the probabilities, and the
threshold of the model's "I don't know" (refusal.py), with how well each out-of-distribution score tells the
validation photos from synthetic non-hands (perturbations.non_hands).
"""

import csv
import io

import numpy as np

from signdigits import calibration, robustness
from signdigits.choices import REFUSAL_SCORES
from signdigits.fold_processes import train_folds
from signdigits.refusal import fit_stats, flat, ood_score
from signdigits.stats import wilson_interval
from signdigits.training import progress, show_epoch

DECIMALS = 4  # as reports/metrics.json
MIN_TEMPERATURE = 1.0  # see ``calibrate``
SPREAD = ("val_loss", "val_accuracy")  # history columns whose standard deviation over folds is kept too


def cross_validate(params, X, y, folds, n_classes, on_epoch=None, others=None, folds_others=None):
    """Train and score one network per fold. Returns (history, per_fold, out_of_fold, nets): the mean history
    rows, [{fold, rows, loss, accuracy}], {row, fold, true, predicted, probability, logits} arrays over the
    training rows, and the folds' networks (fold f's network never saw the rows of fold f). With ``others`` (the
    other hands that train.other_hands learns, see training.other_hands_to_learn) and their folds ``folds_others``,
    fold f's network learns those of the other folds only.

    The folds train side by side, each in a process of its own (fold_processes.py), and each epoch's mean over
    folds is known as soon as every fold has trained that epoch: ``on_epoch(row)`` receives it then (DVCLive logs
    it live). Each fold's network has its own random generator, so it is the one a plain fit on the other folds
    makes with one BLAS thread. With cross-validation off (every fold −1) nothing is trained: all three are empty."""
    if others is not None and folds_others is None:
        raise ValueError("others need their folds, folds_others")
    k = int(folds.max()) + 1
    if k == 0:
        empty = np.zeros(0, dtype=np.int64)
        return [], [], {"row": empty, "fold": empty, "true": empty, "predicted": empty, "probability": empty}, []
    held_out = [folds == fold for fold in range(k)]
    jobs = [
        {
            "params": params,
            "n_classes": n_classes,
            "X": X[~rows],
            "y": y[~rows],
            "validation": (X[rows], y[rows]),
            "others": None if others is None else others[folds_others != fold],
        }
        for fold, rows in enumerate(held_out)
    ]
    history, last = [], None
    with progress(params["epochs"], f"{k} folds") as bar:

        def epoch_done(rows):
            nonlocal last
            last = rows  # in the end, each fold's final row
            row = mean_row(rows)
            history.append(row)
            show_epoch(bar, row)
            if on_epoch is not None:
                on_epoch(row)

        nets = train_folds(jobs, epoch_done)
    per_fold = []
    predicted, probability = np.zeros(len(y), dtype=np.int64), np.zeros(len(y))
    logits = np.zeros((len(y), nets[0].n_outputs))
    with nets[0].blas_threads():
        for fold, (net, rows, final) in enumerate(zip(nets, held_out, last)):
            scores = {"loss": final["val_loss"], "accuracy": final["val_accuracy"]}
            per_fold.append({"fold": fold, "rows": int(rows.sum())} | scores)
            logits[rows] = Z = net.logits(X[rows])
            predicted[rows], proba = net.classes(Z), net.probabilities(Z)
            # the probability of the predicted class: the larger of P(class 1) and 1 − P(class 1), or the largest
            probability[rows] = np.maximum(proba, 1 - proba) if proba.ndim == 1 else proba.max(axis=1)
    out_of_fold = {"row": np.arange(len(y)), "fold": folds, "true": y, "predicted": predicted}
    out_of_fold |= {"probability": probability, "logits": logits}
    return history, per_fold, out_of_fold, nets


def out_of_fold_predictor(nets, folds):
    """A function of rows X (as many as the training rows, in their order, altered in any way) → the class each
    row's own fold network predicts: out-of-fold predictions of altered photos."""

    def predict(X):
        predicted = np.zeros(len(X), dtype=np.int64)
        for fold, net in enumerate(nets):
            rows = folds == fold
            predicted[rows] = net.predict(X[rows])
        return predicted

    return predict


def robustness_table(nets, X, y, folds) -> dict[str, list[float]]:
    """robustness.accuracy_table of the out-of-fold predictions: each validation fold perturbed and predicted by
    the network that did not train on it."""
    with nets[0].blas_threads():
        return robustness.accuracy_table(out_of_fold_predictor(nets, folds), X, y)


def robustness_csv(robust: dict, out_of_fold: dict) -> str:
    """robustness.table_csv of ``robust`` with the clean out-of-fold accuracy; empty with cross-validation off."""
    if not robust:
        return ""
    return robustness.table_csv(robust, float(np.mean(out_of_fold["predicted"] == out_of_fold["true"])))


def calibrate(nets, X, y, folds, out_of_fold, refusal: dict, non_hands, others=None, folds_others=None) -> dict:
    """reports/calibration.json: the temperature fitted on the out-of-fold logits; the expected calibration
    error and reliability bins before and after it; and refusal (the ``refusal`` params): for each score, its
    out-of-fold value on every training row and on the synthetic ``non_hands`` (each fold's network), the AUROC
    of the two, and for the configured score the threshold that refuses at most refusal.max_refused of the
    validation photos, with the shares it refuses (of the non-hands: those below it, and the flat ones). With
    ``others``, the other hands of the training split, and their folds ``folds_others`` (None, or none: no such
    figures), the same for them, each scored by the network of its fold (which did not learn it)."""
    Z, y = out_of_fold["logits"], np.asarray(y)
    # Only ever softened (T ≥ 1): a network right on nearly every validation photo fits a T below 1, sharper
    # probabilities, which photos from other hands, rooms and cameras do not earn. The NLL is convex in 1/T, so
    # the optimum within T ≥ 1 is the unconstrained one clamped to 1.
    T = max(MIN_TEMPERATURE, calibration.fit_temperature(Z, y))
    report = {"temperature": round(T, 6)}
    for name, t in (("before", 1.0), ("after", T)):
        confidence, correct = calibration.msp(Z, t), out_of_fold["predicted"] == y
        report[f"ece_{name}"] = round(calibration.expected_calibration_error(confidence, correct), 4)
        table = calibration.reliability(confidence, correct)
        report[f"reliability_{name}"] = {  # as JSON: an empty bin's mean confidence and accuracy are null
            key: [None if np.isnan(v) else round(float(v), 6) for v in values] for key, values in table.items()
        }
    k = len(nets)
    held_out = [folds == fold for fold in range(k)]
    with_others = others is not None and len(others) > 0
    scores_in, scores_out, scores_others = {}, {}, {}
    with nets[0].blas_threads():
        for score in REFUSAL_SCORES:
            scores_in[score], scores_out[score] = np.zeros(len(y)), []
            scores_others[score] = np.zeros(len(others) if with_others else 0)
            for fold, (net, rows) in enumerate(zip(nets, held_out)):
                stats = fit_stats(net, X[~rows], y[~rows], score)
                scores_in[score][rows] = ood_score(net, X[rows], score, stats, T, Z[rows])
                scores_out[score].append(ood_score(net, non_hands, score, stats, T))
                if with_others:
                    mine = folds_others == fold
                    scores_others[score][mine] = ood_score(net, others[mine], score, stats, T)
            scores_out[score] = np.concatenate(scores_out[score])
    report["non_hand_auroc"] = {
        score: round(calibration.ood_auroc(scores_in[score], scores_out[score]), 4) for score in REFUSAL_SCORES
    }
    if with_others:
        report["other_hand_auroc"] = {
            score: round(calibration.ood_auroc(scores_in[score], scores_others[score]), 4) for score in REFUSAL_SCORES
        }
    chosen = refusal["score"]
    threshold = calibration.refusal_threshold(scores_in[chosen], refusal["max_refused"])
    report["refusal"] = {
        "score": chosen,
        "threshold": float(threshold),
        "refused_validation": round(float(np.mean(scores_in[chosen] < threshold)), 4),
        "refused_non_hands": round(float(np.mean((scores_out[chosen] < threshold) | np.tile(flat(non_hands), k))), 4),
    }
    if with_others:
        refused_others = (scores_others[chosen] < threshold) | flat(others)
        report["refusal"]["refused_other_hands"] = round(float(np.mean(refused_others)), 4)
    return report


NO_CALIBRATION = {"temperature": 1.0, "refusal": None}  # cross-validation off: nothing to calibrate on


def mean_row(rows: tuple[dict, ...]) -> dict:
    """One epoch's history rows of the folds averaged, with the standard deviation over folds of SPREAD."""
    row = {"epoch": rows[0]["epoch"]}
    row |= {name: float(np.mean([r[name] for r in rows])) for name in rows[0] if name != "epoch"}
    return row | {f"{name}_std": float(np.std([r[name] for r in rows])) for name in SPREAD}


def summary(per_fold: list[dict], out_of_fold: dict, robust: dict, calibrated: dict) -> tuple[dict, dict]:
    """(reports/crossval.json, reports/crossval_details.json). The first holds the headline figures, the only ones
    DVC declares as metrics (what `dvc exp show` and `dvc metrics diff` list): the folds' mean validation accuracy
    and loss, ``cv_acc`` and ``cv_loss``, and the accuracy under the perturbation suite, ``cv_robust``
    (robustness.robust_accuracy of ``robust``). The details: the standard deviations over the folds, the
    out-of-fold accuracy over every training row with its 95 % Wilson interval, the expected calibration error
    after temperature scaling (``calibrated``, from ``calibrate``) and the number of folds.
    Off: ({}, {"cv_folds": 0})."""
    if not per_fold:
        return {}, {"cv_folds": 0}
    accuracy = [f["accuracy"] for f in per_fold]
    loss = [f["loss"] for f in per_fold]
    correct = int(np.sum(out_of_fold["predicted"] == out_of_fold["true"]))
    low, high = wilson_interval(correct, len(out_of_fold["true"]))
    headline = {"cv_acc": np.mean(accuracy), "cv_loss": np.mean(loss), "cv_robust": robustness.robust_accuracy(robust)}
    details = {
        "cv_accuracy_std": np.std(accuracy),
        "cv_loss_std": np.std(loss),
        "oof_accuracy": correct / len(out_of_fold["true"]),
        "oof_accuracy_low": low,
        "oof_accuracy_high": high,
        "cv_ece": calibrated["ece_after"],
    }
    headline, details = ({name: round(float(v), DECIMALS) for name, v in d.items()} for d in (headline, details))
    return headline, details | {"cv_folds": len(per_fold)}


def folds_csv(per_fold: list[dict]) -> str:
    lines = ["fold,rows,loss,accuracy"]
    lines += [f"{f['fold']},{f['rows']},{f['loss']:.6f},{f['accuracy']:.6f}" for f in per_fold]
    return "\n".join(lines) + "\n"


def out_of_fold_probabilities(out_of_fold: dict, temperature: float, n_classes: int) -> np.ndarray:
    """(N, K) out-of-fold class probabilities softmax(Z / T) of the training rows, from each row's fold network's
    logits Z and the temperature T that ``calibrate`` fitted on them (1 with cross-validation off): the
    probabilities the calibrated model states, as evaluate and predict show them. K = 2 for a binary network."""
    if "logits" not in out_of_fold:
        return np.zeros((0, n_classes))
    return calibration.probabilities(out_of_fold["logits"], temperature)


def predictions_csv(out_of_fold: dict, classes: list[str], sources, probabilities) -> str:
    """One line per training row: its index in the training rows, its validation fold, the true and predicted
    class, the probability of the predicted class, the photo's source (its path in the dataset) and the
    probability of each class (p_<class>, six significant digits: a suspect's tiny probability keeps its order),
    all calibrated (``out_of_fold_probabilities``). CSV quoting: a path holding a comma stays one cell."""
    buffer = io.StringIO()
    table = csv.writer(buffer, lineterminator="\n")
    table.writerow(["row", "fold", "true", "predicted", "probability", "source"] + [f"p_{c}" for c in classes])
    o = out_of_fold
    for r, f, t, p, q in zip(o["row"], o["fold"], o["true"], o["predicted"], probabilities):
        cells = [r, f, classes[t], classes[p], f"{q[p]:.4f}", sources[r]] + [f"{v:.6g}" for v in q]
        table.writerow(cells)
    return buffer.getvalue()
