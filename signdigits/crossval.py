"""k-fold cross-validation of the configured network on the training rows (the test split is never read).

For each fold f of data/split/folds.npy, a fresh network (the ``train`` params) is trained on the rows of the
other folds and scored on the rows of fold f. Every training row is held out exactly once, so the folds'
predictions together are one out-of-fold prediction per training row: its accuracy is an estimate over all the
training rows, with a Wilson interval narrower than the test split's (4 times the rows with 5 folds).

The per-epoch history is the mean over folds (train_* on each fold's training rows, val_* on its validation
fold), with the standard deviation of val_* over folds beside it.
"""

import numpy as np
from threadpoolctl import threadpool_limits

from signdigits.network import TrainingConfig
from signdigits.stats import wilson_interval
from signdigits.training import build_model, fit_options, progress, show_epoch

DECIMALS = 4  # as reports/metrics.json
SPREAD = ("val_loss", "val_accuracy")  # history columns whose standard deviation over folds is kept too


def cross_validate(params, X, y, folds, n_classes, on_epoch=None):
    """Train and score one network per fold. Returns (history, per_fold, out_of_fold): the mean history rows,
    [{fold, rows, loss, accuracy}], and {row, fold, true, predicted, probability} arrays over the training rows.

    The folds train in lockstep, epoch e of every fold before epoch e + 1 of any, so that each epoch's mean over
    folds is known as soon as that epoch ends: ``on_epoch(row)`` receives it then (DVCLive logs it live). With
    cross-validation off (every fold −1) nothing is trained: all three are empty."""
    k = int(folds.max()) + 1
    if k == 0:
        empty = np.zeros(0, dtype=np.int64)
        return [], [], {"row": empty, "fold": empty, "true": empty, "predicted": empty, "probability": empty}
    config = TrainingConfig(**fit_options(params))
    held_out = [folds == fold for fold in range(k)]
    nets = [build_model(params, X.shape[1], n_classes) for _ in range(k)]
    runs = [net.training(X[~rows], y[~rows], config, X[rows], y[rows]) for net, rows in zip(nets, held_out)]
    history = []
    with threadpool_limits(limits=nets[0].BLAS_THREADS, user_api="blas"), progress(config.epochs, f"{k} folds") as bar:
        for last in zip(*runs):  # one epoch of each fold; after the loop, ``last`` holds each fold's final row
            row = mean_row(last)
            history.append(row)
            show_epoch(bar, row)
            if on_epoch is not None:
                on_epoch(row)
    per_fold = []
    predicted, probability = np.zeros(len(y), dtype=np.int64), np.zeros(len(y))
    for fold, (net, rows, final) in enumerate(zip(nets, held_out, last)):
        scores = {"loss": final["val_loss"], "accuracy": final["val_accuracy"]}
        per_fold.append({"fold": fold, "rows": int(rows.sum())} | scores)
        predicted[rows], proba = net.predict_with_proba(X[rows])
        # the probability of the predicted class: the larger of P(class 1) and 1 − P(class 1), or the largest
        probability[rows] = np.maximum(proba, 1 - proba) if proba.ndim == 1 else proba.max(axis=1)
    out_of_fold = {"row": np.arange(len(y)), "fold": folds, "true": y, "predicted": predicted}
    out_of_fold["probability"] = probability
    return history, per_fold, out_of_fold


def mean_row(rows: tuple[dict, ...]) -> dict:
    """One epoch's history rows of the folds averaged, with the standard deviation over folds of SPREAD."""
    row = {"epoch": rows[0]["epoch"]}
    row |= {name: float(np.mean([r[name] for r in rows])) for name in rows[0] if name != "epoch"}
    return row | {f"{name}_std": float(np.std([r[name] for r in rows])) for name in SPREAD}


def summary(per_fold: list[dict], out_of_fold: dict) -> dict:
    """reports/crossval.json: the folds' mean and standard deviation of the validation accuracy and loss, and the
    out-of-fold accuracy over every training row with its 95 % Wilson interval. Off: {"cv_folds": 0}."""
    if not per_fold:
        return {"cv_folds": 0}
    accuracy = [f["accuracy"] for f in per_fold]
    loss = [f["loss"] for f in per_fold]
    correct = int(np.sum(out_of_fold["predicted"] == out_of_fold["true"]))
    low, high = wilson_interval(correct, len(out_of_fold["true"]))
    values = {
        "cv_accuracy_mean": np.mean(accuracy),
        "cv_accuracy_std": np.std(accuracy),
        "cv_loss_mean": np.mean(loss),
        "cv_loss_std": np.std(loss),
        "oof_accuracy": correct / len(out_of_fold["true"]),
        "oof_accuracy_low": low,
        "oof_accuracy_high": high,
    }
    return {name: round(float(value), DECIMALS) for name, value in values.items()} | {"cv_folds": len(per_fold)}


def folds_csv(per_fold: list[dict]) -> str:
    lines = ["fold,rows,loss,accuracy"]
    lines += [f"{f['fold']},{f['rows']},{f['loss']:.6f},{f['accuracy']:.6f}" for f in per_fold]
    return "\n".join(lines) + "\n"


def predictions_csv(out_of_fold: dict, classes: list[str]) -> str:
    """One line per training row: its index in the training rows, its validation fold, the true and predicted
    class and the probability the network gave its prediction."""
    o = out_of_fold
    lines = ["row,fold,true,predicted,probability"]
    lines += [
        f"{r},{f},{classes[t]},{classes[p]},{q:.4f}"
        for r, f, t, p, q in zip(o["row"], o["fold"], o["true"], o["predicted"], o["probability"])
    ]
    return "\n".join(lines) + "\n"
