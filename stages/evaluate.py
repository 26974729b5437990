"""Stage evaluate: the trained model on the split → reports/metrics.json (with the test accuracy of a
logistic regression fitted on the same train split beside it), the classification report, per-image
predictions, ROC points and figures."""

import sys
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path

from signdigits.errors import exit_code
from signdigits.evaluation import check_model_matches, evaluate, figures, logistic_regression_baseline, predict_split
from signdigits.files import load_split, write_outputs
from signdigits.network import load_model
from signdigits.training import read_history_tsv

MODEL = "models/model.npz"


def main():
    net = load_model(MODEL)
    split, meta = load_split()
    check_model_matches(net, meta, MODEL)
    history = read_history_tsv(Path("reports/train_history.tsv").read_text())
    predictions = predict_split(net, split, len(meta["classes"]))
    # The figures need only matplotlib, the metrics and the baseline only scikit-learn, and importing either takes
    # most of a second: a forked child draws the figures while this process does the rest, on the second core.
    with ProcessPoolExecutor(1, mp_context=get_context("fork")) as pool:
        drawing = pool.submit(figures, history, split["X_test"], split["y_test"], meta, predictions)
        outputs = evaluate(net, split, meta, logistic_regression_baseline(split), predictions)
        outputs |= drawing.result()
    write_outputs(outputs)


if __name__ == "__main__":
    sys.exit(exit_code(main))
