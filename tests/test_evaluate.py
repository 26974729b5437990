"""Metrics against independent computations, figures that are real pictures, and evaluate's bad inputs."""

import io
import json
import shutil

import numpy as np
import pytest
import yaml
from PIL import Image
from scipy.stats import binomtest
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import log_loss, roc_auc_score

from signdigits import figures
from signdigits.metrics import (
    classification_report_text,
    held_out_metrics,
    macro_average_roc,
    roc_curves,
    wilson_interval,
)
from signdigits.modelfile import load_model, save_model
from signdigits.refusal import ood_score, refused


@pytest.mark.parametrize(
    "successes, trials, low, high",
    # Newcombe (1998), Statistics in Medicine 17:857, Table I, method 3 (score interval without correction)
    [(81, 263, 0.2553, 0.3662), (15, 148, 0.0624, 0.1605), (0, 20, 0.0, 0.1611), (1, 29, 0.0061, 0.1718)],
)
def test_wilson_interval_matches_published_values(successes, trials, low, high):
    got = wilson_interval(successes, trials)
    assert got == pytest.approx((low, high), abs=1e-4)


def pairs_ranked_right(positive_scores, negative_scores):
    """AUC by its definition: the share of (positive, negative) pairs the score orders right, ties half."""
    return np.mean([(p > q) + 0.5 * (p == q) for p in positive_scores for q in negative_scores])


def test_binary_metrics_by_hand():
    # 10 images, classes ["0", "5"]: 7 right; "5" predicted 4 times, 3 of them right; 2 of the 5 fives missed
    y_true = np.array([0, 0, 0, 0, 0, 1, 1, 1, 1, 1])
    y_pred = np.array([0, 0, 0, 0, 1, 1, 1, 1, 0, 0])
    proba = np.array([0.1, 0.2, 0.3, 0.4, 0.6, 0.9, 0.8, 0.7, 0.45, 0.35])
    m = held_out_metrics(y_true, y_pred, proba, loss=0.123456)
    assert set(m) == {"test_acc", "test_accuracy_low", "test_accuracy_high", "test_loss", "test_roc_auc"}
    assert m["test_acc"] == 0.7 and m["test_loss"] == 0.1235
    # AUC = share of (five, zero) pairs ranked right: 0.9, 0.8, 0.7 beat all five zeros, 0.45 four, 0.35 three
    assert m["test_roc_auc"] == round(pairs_ranked_right(proba[5:], proba[:5]), 4) == 22 / 25
    # Wilson by its formula: centre (p + z²/2n)/(1 + z²/n), half-width z√(p(1−p)/n + z²/4n²)/(1 + z²/n)
    z, n, p = 1.959963984540054, 10, 0.7
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    assert (m["test_accuracy_low"], m["test_accuracy_high"]) == (round(centre - half, 4), round(centre + half, 4))
    report = classification_report_text(y_true, y_pred, ["0", "5"])
    five = next(line.split() for line in report.splitlines() if line.strip().startswith("5 digit sign"))
    assert five[3:] == ["0.7500", "0.6000", f"{2 * 0.75 * 0.6 / 1.35:.4f}", "5"]  # precision, recall, f1, support


def test_multiclass_auc_is_the_mean_of_one_against_the_rest_and_the_macro_curve_has_that_area():
    rng = np.random.default_rng(0)
    y_true = rng.integers(0, 3, 40)
    proba = rng.dirichlet(np.ones(3), size=6)[rng.integers(0, 6, 40)]  # six rows repeated: ties, steps straight up
    by_hand = np.mean([pairs_ranked_right(proba[y_true == k, k], proba[y_true != k, k]) for k in range(3)])
    m = held_out_metrics(y_true, proba.argmax(axis=1), proba, loss=1.0)
    assert m["test_roc_auc"] == round(by_hand, 4)
    fpr, tpr = macro_average_roc(roc_curves(y_true, proba))
    assert np.all(np.diff(fpr) >= 0) and np.all(np.diff(tpr) >= 0) and (fpr[0], tpr[-1]) == (0, 1)
    assert np.trapezoid(tpr, fpr) == pytest.approx(by_hand, abs=1e-12)
    report = classification_report_text(y_true, proba.argmax(axis=1), ["1", "4", "9"])
    assert "9 digit sign" in report and "macro avg" in report and "weighted avg" in report


def ece_by_hand(confidence, correct, bins=15):
    """Expected calibration error, written out: per bin (l, u] of width 1/15 (the first also holds 0), the share
    of predictions in it times |accuracy − mean confidence|."""
    total = 0.0
    for b in range(bins):
        low, high = b / bins, (b + 1) / bins
        inside = (confidence > low) & (confidence <= high) | ((b == 0) & (confidence == 0))
        if inside.any():
            total += inside.mean() * abs(correct[inside].mean() - confidence[inside].mean())
    return total


def is_real_picture(png: bytes, min_side=200):
    image = Image.open(io.BytesIO(png))
    assert image.format == "PNG" and min(image.size) >= min_side
    pixels = np.asarray(image.convert("L"), dtype=float)
    assert pixels.std() > 10  # not blank
    return image


def draw_figure(name):
    """Each figure evaluate draws, on small made-up data, by name."""
    rng = np.random.default_rng(0)
    history = {"epoch": np.arange(1, 6), "train_loss": np.linspace(1, 0.2, 5), "val_loss": np.linspace(1, 0.3, 5)}
    history |= {"train_accuracy": np.linspace(0.5, 1, 5), "val_accuracy": np.linspace(0.5, 0.9, 5)}
    history |= {"val_loss_std": np.full(5, 0.05), "val_accuracy_std": np.full(5, 0.02)}
    digits = [str(d) for d in range(10)]
    y10 = np.arange(200) % 10
    proba10 = rng.dirichlet(np.ones(10), size=200) + 2 * np.eye(10)[y10]
    proba10 /= proba10.sum(axis=1, keepdims=True)
    y2, proba2 = np.arange(40) % 2, rng.random(40)
    images = rng.random((30, 64)).astype(np.float32)
    y_true, y_pred, p = np.arange(30) % 2, (np.arange(30) % 3 == 0).astype(int), np.full(30, 0.9)
    draw = {
        "loss curve": lambda: figures.loss_curve(history),
        "confusion, 2 classes": lambda: figures.confusion_matrix(y2, (proba2 > 0.5).astype(int), ["0", "5"]),
        "confusion, 10 classes": lambda: figures.confusion_matrix(y10, proba10.argmax(axis=1), digits),
        "ROC, 2 classes": lambda: figures.roc_curve(y2, proba2, ["0", "5"]),
        "ROC, 10 classes": lambda: figures.roc_curve(y10, proba10, digits),
        "24 examples": lambda: figures.prediction_examples(images, y_true, y_pred, p, ["0", "5"]),
        "5 examples": lambda: figures.prediction_examples(images[:5], y_true[:5], y_pred[:5], p[:5], ["0", "5"]),
    }
    return draw[name]()


FIGURES = ["loss curve", "confusion, 2 classes", "confusion, 10 classes", "ROC, 2 classes", "ROC, 10 classes"]
FIGURES += ["24 examples", "5 examples"]


@pytest.mark.parametrize("name", FIGURES)
def test_each_figure_lies_inside_its_canvas(name):
    figure = draw_figure(name)
    width, height = figure.get_size_inches()
    drawn = figure.get_tightbbox(figure.canvas.get_renderer())  # inches, every artist that is drawn
    assert drawn.x0 >= 0 and drawn.y0 >= 0 and drawn.x1 <= width and drawn.y1 <= height, (name, drawn)
    image = is_real_picture(figures.png(figure))
    pixels = np.asarray(image.convert("RGB"))
    border = np.concatenate([pixels[:2].reshape(-1, 3), pixels[-2:].reshape(-1, 3)])
    border = np.concatenate([border, pixels[:, :2].reshape(-1, 3), pixels[:, -2:].reshape(-1, 3)])
    assert np.all(border == 255), f"{name}: something is drawn on the edge of the canvas"


def test_confusion_matrix_has_true_digits_as_rows_and_a_colour_scale_from_zero(root):
    # true "0" three times, predicted "0" twice and "5" once; true "5" once, predicted "5"
    figure = figures.confusion_matrix(np.array([0, 0, 0, 1]), np.array([0, 0, 1, 1]), ["0", "5"])
    axis, colour_bar = figure.axes
    cells = {(round(t.get_position()[1]), round(t.get_position()[0])): t.get_text() for t in axis.texts}
    assert cells == {(0, 0): "2", (0, 1): "1", (1, 0): "0", (1, 1): "1"}  # (row, column) = (true, predicted)
    assert axis.get_ylabel() == "true digit" and axis.get_xlabel() == "predicted digit"
    assert colour_bar.get_ylim()[0] == 0
    # DVC's confusion plot (dvc.yaml) is laid out the same way: predicted digit across, true digit down
    import yaml

    plots = yaml.safe_load((root / "dvc.yaml").read_text())["plots"]
    specs = [spec for plot in plots if isinstance(plot, dict) for spec in plot.values()]
    (confusion,) = [spec for spec in specs if spec.get("template") == "confusion"]
    assert confusion["x"] == "predicted" and confusion["y"] == {"reports/predictions.csv": "actual"}
    assert (confusion["x_label"], confusion["y_label"]) == ("predicted digit", "true digit")


@pytest.fixture
def evaluated_tiny_project(tmp_path, copy_project, write_split):
    """A project copy with a hand-made split (40 training rows in 4 folds, 10 test rows)."""
    project = copy_project(tmp_path / "project")
    write_split(project)
    return project


def test_train_and_evaluate_stages_on_a_tiny_split(evaluated_tiny_project, run_stage):
    project = evaluated_tiny_project
    for stage in ("perturbations", "crossval", "train", "evaluate"):
        result = run_stage(project, stage)
        assert result.returncode == 0, result.stderr
    declared = json.loads((project / "reports/metrics.json").read_text())
    assert set(declared) == {"test_acc"}  # the one headline figure; the others are details
    metrics = declared | json.loads((project / "reports/test_details.json").read_text())
    net = load_model(project / "models/model.npz")
    X_test, y_test = np.load(project / "data/split/X_test.npy"), np.load(project / "data/split/y_test.npy")
    assert metrics["test_acc"] == round(float(np.mean(net.predict(X_test) == y_test)), 4)
    # the loss and calibration error of the calibrated probabilities, as predict shows them
    proba = net.predict_proba(X_test)
    assert net.temperature >= 1 and metrics["test_loss"] == pytest.approx(log_loss(y_test, proba), abs=1e-4)
    confidence = np.maximum(proba, 1 - proba)
    assert metrics["test_ece"] == pytest.approx(ece_by_hand(confidence, net.predict(X_test) == y_test), abs=1e-4)
    assert set(metrics) == {
        "test_acc",
        "test_accuracy_low",
        "test_accuracy_high",
        "test_loss",
        "test_roc_auc",
        "test_ece",
        "test_robust_accuracy",
        "test_refused",
        "baseline_test_accuracy",
        "mcnemar_p_vs_baseline",
    }
    table = np.genfromtxt(project / "reports/robustness.csv", delimiter=",", names=True, dtype=None, encoding=None)
    assert table["accuracy"][0] == metrics["test_acc"]  # severity 0: the clean photos
    headline = [a for f, s, a in table[1:] if s <= 3]
    assert metrics["test_robust_accuracy"] == pytest.approx(np.mean(headline), abs=1e-4)
    refusal = json.loads((project / "reports/refusal.json").read_text())
    assert set(refusal["refused"]) == {"test", "non_hands", "other_digits"}  # other digits: write_split's "3"s
    # the default learns the training split's "3"s as "other" (train.other_hands): each fold's network is scored on
    # the "3"s of its fold, the final network on the test split's two
    final = load_model(project / "models/model.npz")
    assert final.other_output
    calibrated = json.loads((project / "reports/calibration.json").read_text())
    assert set(calibrated["other_hand_auroc"]) == {"msp", "energy", "mahalanobis"}
    assert calibrated["refusal"]["refused_other_hands"] in {round(k / 6, 4) for k in range(7)}
    X_others_test = np.load(project / "data/split/X_others_test.npy")
    assert refusal["refused"]["other_digits"] == round(float(np.mean(refused(final, X_others_test))), 4)
    scores = [ood_score(final, X, "msp", {}, final.temperature) for X in (X_test, X_others_test)]
    truth = np.repeat([1, 0], [len(scores[0]), len(scores[1])])
    assert refusal["auroc"]["other_digits"] == round(roc_auc_score(truth, np.concatenate(scores)), 4)
    assert refusal["refused"]["test"] == metrics["test_refused"] and refusal["score"] == "msp"
    # the baseline is the one minimum of its convex loss: another solver, run to a tighter tolerance, agrees
    X_train, y_train = np.load(project / "data/split/X_train.npy"), np.load(project / "data/split/y_train.npy")
    mean, scale = X_train.mean(axis=0), X_train.std()
    linear = LogisticRegression(solver="newton-cg", tol=1e-8).fit((X_train - mean) / scale, y_train)
    expected = round(linear.score((X_test - mean) / scale, y_test), 4)
    assert metrics["baseline_test_accuracy"] == expected
    right_net, right_linear = net.predict(X_test) == y_test, linear.predict((X_test - mean) / scale) == y_test
    b, c = int(np.sum(right_net & ~right_linear)), int(np.sum(~right_net & right_linear))
    assert metrics["mcnemar_p_vs_baseline"] == (float(f"{binomtest(b, b + c).pvalue:.4g}") if b + c else 1.0)
    rows = (project / "reports/predictions.csv").read_text().splitlines()
    assert rows[0] == "actual,predicted,probability,refused,source" and len(rows) == 11
    sources = np.load(project / "data/split/sources_test.npy")
    assert [row.split(",")[4] for row in rows[1:]] == sources.tolist()  # each test photo named by its file
    for name in ("loss_curve", "confusion_matrix", "roc_curve", "robustness", "calibration"):
        is_real_picture((project / f"reports/figures/{name}.png").read_bytes())
    is_real_picture((project / "reports/prediction_examples.png").read_bytes())
    is_real_picture((project / "reports/perturbations.png").read_bytes())
    history = (project / "reports/history/plots/metrics/val_loss.tsv").read_text().splitlines()
    epochs = yaml.safe_load((project / "params.yaml").read_text())["train"]["epochs"]
    assert (
        history[0].split("\t") == ["step", "val_loss"] and history[1].startswith("1\t") and len(history) == 1 + epochs
    )


def test_evaluate_refuses_a_model_of_other_classes_or_none(evaluated_tiny_project, run_stage):
    project = evaluated_tiny_project
    for stage in ("crossval", "train"):
        assert run_stage(project, stage).returncode == 0
    net = load_model(project / "models/model.npz")
    net.metadata["classes"] = ["1", "2"]
    save_model(net, project / "models/model.npz")
    shutil.rmtree(project / "reports" / "figures", ignore_errors=True)
    result = run_stage(project, "evaluate")
    assert result.returncode == 1
    assert "was trained on classes ['1', '2'] but the split holds ['0', '5']; retrain" in result.stderr
    assert not (project / "reports/metrics.json").exists() and not (project / "reports/figures").exists()
    (project / "models/model.npz").unlink()
    result = run_stage(project, "evaluate")
    assert result.returncode == 1 and "model file models/model.npz not found" in result.stderr
    assert not (project / "reports/metrics.json").exists()


def test_train_stage_stops_cleanly_when_training_diverges(evaluated_tiny_project, run_stage):
    import yaml

    project = evaluated_tiny_project
    params = yaml.safe_load((project / "params.yaml").read_text())
    params["train"] |= {"learning_rate": 1e30, "activation": "relu"}
    (project / "params.yaml").write_text(yaml.safe_dump(params))
    (project / "reports").mkdir()
    (project / "reports/calibration.json").write_text('{"temperature": 1.0, "refusal": null}')  # what crossval writes
    result = run_stage(project, "train")
    assert result.returncode == 1
    assert result.stderr.strip().startswith("error: training diverged at epoch 1")
    assert "train.learning_rate (1e+30, try it smaller) and train.weight_decay" in result.stderr
    assert not (project / "models").exists()
