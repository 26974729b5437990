"""Stage evaluate: the trained model on the test split → reports/metrics.json (the test accuracy) and
reports/test_details.json (its interval, loss, AUC, …, and the test accuracy of a logistic regression fitted on the
same train split), the per-class table, per-image predictions,
ROC points, the accuracy under the perturbation suite (reports/robustness.csv), the refusals (reports/refusal.json:
test photos, synthetic non-hands, and the test split's other hands: photos of the digits outside filter.classes)
and figures."""

import sys

from signdigits.errors import exit_code
from signdigits.evaluation import (
    check_model_matches,
    evaluate,
    figures,
    logistic_regression_baseline,
    predict_split,
    robustness_on_test,
)
from signdigits.files import load_array, load_json, load_split, write_outputs
from signdigits.history import read_history
from signdigits.modelfile import load_model

MODEL = "models/model.npz"


def main():
    net = load_model(MODEL)
    split, meta = load_split()
    check_model_matches(net, meta, MODEL)
    history = read_history()
    calibrated = load_json("reports/calibration.json")
    X_others = load_array("data/split/X_others_test.npy")
    predictions = predict_split(net, split)
    baseline = logistic_regression_baseline(split, predictions.y_pred)
    robust = robustness_on_test(net, split)
    outputs = evaluate(net, split, meta, baseline, predictions, robust, X_others)
    outputs |= figures(history, calibrated, split["X_test"], split["y_test"], meta, predictions, robust)
    write_outputs(outputs)


if __name__ == "__main__":
    sys.exit(exit_code(main))
