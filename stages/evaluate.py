"""Stage evaluate: the trained model on the split → reports/metrics.json (with the baseline stage's
logistic-regression accuracy beside it), the classification report, per-image predictions, ROC points and
figures."""

from pathlib import Path

from signdigits.errors import exit_on_usage_error
from signdigits.evaluation import check_model_matches, evaluate, figures
from signdigits.files import load_json, load_split, write_outputs
from signdigits.network import load_model
from signdigits.training import read_history_tsv

MODEL = "models/model.npz"


def main():
    net = load_model(MODEL)
    split, meta = load_split()
    check_model_matches(net, meta, MODEL)
    history = read_history_tsv(Path("reports/train_history.tsv").read_text())
    outputs, (y_pred, proba, fpr, tpr) = evaluate(net, split, meta, load_json("data/baseline.json"))
    metrics = outputs["reports/metrics.json"]
    write_outputs(outputs | figures(history, split, meta, metrics, y_pred, proba, fpr, tpr))


if __name__ == "__main__":
    exit_on_usage_error(main)
