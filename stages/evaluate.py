"""Stage evaluate: the trained model on the test split → reports/metrics.json (with the test accuracy of a
logistic regression fitted on the same train split beside it), the per-class table, per-image predictions,
ROC points and figures."""

import sys

from signdigits.errors import exit_code
from signdigits.evaluation import check_model_matches, evaluate, figures, logistic_regression_baseline, predict_split
from signdigits.files import load_split, write_outputs
from signdigits.history import read_history
from signdigits.modelfile import load_model

MODEL = "models/model.npz"


def main():
    net = load_model(MODEL)
    split, meta = load_split()
    check_model_matches(net, meta, MODEL)
    history = read_history()
    predictions = predict_split(net, split)
    outputs = evaluate(net, split, meta, logistic_regression_baseline(split, predictions.y_pred), predictions)
    outputs |= figures(history, split["X_test"], split["y_test"], meta, predictions)
    write_outputs(outputs)


if __name__ == "__main__":
    sys.exit(exit_code(main))
