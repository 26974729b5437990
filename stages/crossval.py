"""Stage crossval: the configured network (the ``train`` params) cross-validated on the training rows' folds →
reports/crossval.json (the headline metrics), reports/crossval_details.json (the other figures),
reports/crossval_folds.csv (per fold), reports/crossval_predictions.csv (out-of-fold predictions, each photo named
by its source, with every class's calibrated probability), reports/crossval_robustness.csv (accuracy under the
perturbation suite), reports/calibration.json (temperature and refusal threshold, for stage train, and the share
of the training split's other hands refused, each by the network of its fold) and the per-epoch history in
reports/history/ (DVCLive). Never reads the test split."""

import sys

from signdigits.crossval import (
    NO_CALIBRATION,
    calibrate,
    cross_validate,
    folds_csv,
    out_of_fold_probabilities,
    predictions_csv,
    robustness_csv,
    robustness_table,
    summary,
)
from signdigits.errors import exit_code
from signdigits.files import hold_signals, load_array, load_json, release_signals, write_outputs
from signdigits.history import log_epoch, open_log
from signdigits.params import load_all
from signdigits.perturbations import MEASURED_NON_HANDS, non_hands
from signdigits.training import other_hands_to_learn


def main():
    params = load_all()
    meta = load_json("data/split/meta.json")
    X, y = load_array("data/split/X_train.npy"), load_array("data/split/y_train.npy")
    folds, sources = load_array("data/split/folds.npy"), load_array("data/split/sources_train.npy")
    X_others, folds_others = load_array("data/split/X_others_train.npy"), load_array("data/split/folds_others.npy")
    learnt = other_hands_to_learn(params["train"], X_others)
    held = None
    try:
        with open_log() as live:
            _, per_fold, out_of_fold, nets = cross_validate(
                params["train"],
                X,
                y,
                folds,
                len(meta["classes"]),
                on_epoch=lambda row: log_epoch(live, row),
                others=learnt,
                folds_others=folds_others,
            )
            robust, calibrated = {}, NO_CALIBRATION
            if nets:
                robust = robustness_table(nets, X, y, folds)
                synthetic = non_hands(MEASURED_NON_HANDS, meta["image_size"])
                calibrated = calibrate(
                    nets, X, y, folds, out_of_fold, params["refusal"], synthetic, X_others, folds_others
                )
            headline, details = summary(per_fold, out_of_fold, robust, calibrated)
            probabilities = out_of_fold_probabilities(out_of_fold, calibrated["temperature"], len(meta["classes"]))
            # Inside the log's block, so that the history is put back if these cannot be written; a Ctrl-C or
            # SIGTERM from here on waits until the history and these are complete, never falls between them.
            held = hold_signals()
            write_outputs(
                {
                    "reports/crossval.json": headline,
                    "reports/crossval_details.json": details,
                    "reports/crossval_folds.csv": folds_csv(per_fold),
                    "reports/crossval_predictions.csv": predictions_csv(
                        out_of_fold, meta["classes"], sources, probabilities
                    ),
                    "reports/crossval_robustness.csv": robustness_csv(robust, out_of_fold),
                    "reports/calibration.json": calibrated,
                }
            )
    finally:
        if held is not None:
            release_signals(held)


if __name__ == "__main__":
    sys.exit(exit_code(main))
