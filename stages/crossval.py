"""Stage crossval: the configured network (the ``train`` params) cross-validated on the training rows' folds →
reports/crossval.json (metrics), reports/crossval_folds.csv (per fold), reports/crossval_predictions.csv
(out-of-fold predictions) and the per-epoch history in reports/history/ (DVCLive). Never reads the test split."""

import sys

from signdigits.crossval import cross_validate, folds_csv, predictions_csv, summary
from signdigits.errors import exit_code
from signdigits.files import hold_signals, load_array, load_json, release_signals, write_outputs
from signdigits.history import log_epoch, open_log
from signdigits.params import load_params


def main():
    params = load_params("train")
    meta = load_json("data/split/meta.json")
    X, y = load_array("data/split/X_train.npy"), load_array("data/split/y_train.npy")
    folds = load_array("data/split/folds.npy")
    held = None
    try:
        with open_log() as live:
            _, per_fold, out_of_fold = cross_validate(
                params, X, y, folds, len(meta["classes"]), on_epoch=lambda row: log_epoch(live, row)
            )
            # Inside the log's block, so that the history is put back if these cannot be written; a Ctrl-C or
            # SIGTERM from here on waits until the history and these are complete, never falls between them.
            held = hold_signals()
            write_outputs(
                {
                    "reports/crossval.json": summary(per_fold, out_of_fold),
                    "reports/crossval_folds.csv": folds_csv(per_fold),
                    "reports/crossval_predictions.csv": predictions_csv(out_of_fold, meta["classes"]),
                }
            )
    finally:
        if held is not None:
            release_signals(held)


if __name__ == "__main__":
    sys.exit(exit_code(main))
