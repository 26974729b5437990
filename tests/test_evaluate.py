"""Metrics against independent computations, figures that are real pictures, and evaluate's bad inputs."""

import io
import json
import shutil

import numpy as np
import pytest
from PIL import Image
from sklearn.linear_model import LogisticRegression

from signdigits import figures
from signdigits.metrics import classification_metrics, classification_report_text, wilson_interval
from signdigits.mlp import MLP


@pytest.mark.parametrize(
    "successes, trials, low, high",
    # Newcombe (1998), Statistics in Medicine 17:857, Table I, method 3 (score interval without correction)
    [(81, 263, 0.2553, 0.3662), (15, 148, 0.0624, 0.1605), (0, 20, 0.0, 0.1611), (1, 29, 0.0061, 0.1718)],
)
def test_wilson_interval_matches_published_values(successes, trials, low, high):
    got = wilson_interval(successes, trials)
    assert got == pytest.approx((low, high), abs=1e-4)


def test_binary_metrics_by_hand():
    # 10 images, classes ["0", "5"]: 7 right; "5" predicted 4 times, 3 of them right; 2 of the 5 fives missed
    y_true = np.array([0, 0, 0, 0, 0, 1, 1, 1, 1, 1])
    y_pred = np.array([0, 0, 0, 0, 1, 1, 1, 1, 0, 0])
    proba = np.array([0.1, 0.2, 0.3, 0.4, 0.6, 0.9, 0.8, 0.7, 0.45, 0.35])
    m = classification_metrics(y_true, y_pred, proba, ["0", "5"])
    assert m["accuracy"] == 0.7
    five = m["per_class"]["5"]
    assert (five["precision"], five["recall"], five["support"]) == (0.75, 0.6, 5)
    assert five["f1"] == round(2 * 0.75 * 0.6 / (0.75 + 0.6), 4)
    zero = m["per_class"]["0"]
    assert (zero["precision"], zero["recall"]) == (round(4 / 6, 4), 0.8)
    assert m["macro_avg"]["recall"] == 0.7 and m["weighted_avg"]["recall"] == 0.7
    # AUC = share of (five, zero) pairs ranked correctly: every five outranks 0.1–0.3; 0.45 and 0.35 lose to 0.6
    pairs = sum(p > q for p in proba[5:] for q in proba[:5])
    assert m["roc_auc"] == round(pairs / 25, 4)
    assert (m["accuracy_ci95"]["low"], m["accuracy_ci95"]["high"]) == tuple(round(v, 4) for v in wilson_interval(7, 10))


def test_multiclass_metrics_and_report():
    y_true = np.array([0, 1, 2, 2, 1, 0])
    y_pred = np.array([0, 2, 2, 2, 1, 1])
    proba = np.eye(3)[y_pred] * 0.8 + 0.2 / 3
    m = classification_metrics(y_true, y_pred, proba, ["1", "4", "9"])
    assert set(m["per_class"]) == {"1", "4", "9"}
    assert m["per_class"]["9"]["precision"] == round(2 / 3, 4) and m["per_class"]["9"]["recall"] == 1.0
    report = classification_report_text(y_true, y_pred, ["1", "4", "9"])
    assert "9 digit sign" in report and "macro avg" in report and "weighted avg" in report


def is_real_picture(png: bytes, min_side=200):
    image = Image.open(io.BytesIO(png))
    assert image.format == "PNG" and min(image.size) >= min_side
    pixels = np.asarray(image.convert("L"), dtype=float)
    assert pixels.std() > 10  # not blank
    return image


def test_figures_are_valid_non_blank_pngs():
    history = {"epoch": np.arange(1, 6), "train_loss": np.linspace(1, 0.2, 5), "test_loss": np.linspace(1, 0.3, 5)}
    history |= {"train_accuracy": np.linspace(0.5, 1, 5), "test_accuracy": np.linspace(0.5, 0.9, 5)}
    is_real_picture(figures.loss_curve(history))
    is_real_picture(figures.confusion_matrix(np.array([[40, 1], [2, 40]]), ["0", "5"]))
    is_real_picture(figures.roc_curve(np.array([0, 0.1, 1]), np.array([0, 0.9, 1]), 0.95, False))
    images = np.random.default_rng(0).random((8, 64)).astype(np.float32)
    y_true, y_pred = np.array([0, 1] * 4), np.array([0, 1, 1, 1, 0, 1, 0, 1])
    is_real_picture(figures.prediction_examples(images, y_true, y_pred, np.full(8, 0.9), ["0", "5"]))


@pytest.fixture
def evaluated_tiny_project(tmp_path, copy_project):
    """A project copy with a hand-made split and a small trained model."""
    project = copy_project(tmp_path / "project")
    rng = np.random.default_rng(0)
    split = project / "data" / "split"
    split.mkdir(parents=True)
    for part, n in (("train", 40), ("test", 10)):
        y = np.arange(n) % 2
        X = np.clip(rng.normal(0.3 + 0.4 * y[:, None], 0.1, size=(n, 64)), 0, 1).astype(np.float32)
        np.save(split / f"X_{part}.npy", X)
        np.save(split / f"y_{part}.npy", y)
    (split / "meta.json").write_text(json.dumps({"classes": ["0", "5"], "image_size": 8, "pixel_scale": 255.0}))
    return project


def test_train_and_evaluate_stages_on_a_tiny_split(evaluated_tiny_project, run_stage):
    project = evaluated_tiny_project
    for stage in ("train", "evaluate"):
        result = run_stage(project, stage)
        assert result.returncode == 0, result.stderr
    metrics = json.loads((project / "reports/metrics.json").read_text())
    net = MLP.load(project / "models/model.npz")
    X_test, y_test = np.load(project / "data/split/X_test.npy"), np.load(project / "data/split/y_test.npy")
    assert metrics["test"]["accuracy"] == round(float(np.mean(net.predict(X_test) == y_test)), 4)
    assert metrics["test"]["loss"] == round(net.loss(X_test, y_test), 4)
    assert set(metrics["test"]) == {
        "loss",
        "accuracy",
        "accuracy_ci95",
        "roc_auc",
        "macro_avg",
        "weighted_avg",
        "per_class",
    }
    assert set(metrics["train"]) == {"accuracy", "loss"}
    # the baseline is the one minimum of its convex loss: another solver, run to a tighter tolerance, agrees
    X_train, y_train = np.load(project / "data/split/X_train.npy"), np.load(project / "data/split/y_train.npy")
    mean, scale = X_train.mean(axis=0), X_train.std()
    linear = LogisticRegression(solver="newton-cg", tol=1e-8).fit((X_train - mean) / scale, y_train)
    expected = round(linear.score((X_test - mean) / scale, y_test), 4)
    assert metrics["baseline"]["logistic_regression"]["test_accuracy"] == expected
    rows = (project / "reports/predictions.csv").read_text().splitlines()
    assert rows[0] == "actual,predicted,probability" and len(rows) == 11
    for name in ("loss_curve", "confusion_matrix", "roc_curve"):
        is_real_picture((project / f"reports/figures/{name}.png").read_bytes())
    is_real_picture((project / "reports/prediction_examples.png").read_bytes())
    history = (project / "reports/train_history.tsv").read_text().splitlines()
    assert history[0].split("\t") == ["epoch", "train_loss", "train_accuracy", "test_loss", "test_accuracy"]
    assert len(history) == 101


def test_evaluate_refuses_a_model_of_other_classes_or_none(evaluated_tiny_project, run_stage):
    project = evaluated_tiny_project
    assert run_stage(project, "train").returncode == 0
    net = MLP.load(project / "models/model.npz")
    net.metadata["classes"] = ["1", "2"]
    net.save(project / "models/model.npz")
    shutil.rmtree(project / "reports" / "figures", ignore_errors=True)
    result = run_stage(project, "evaluate")
    assert result.returncode == 1
    assert "was trained on classes ['1', '2'] but the split holds ['0', '5']; retrain" in result.stderr
    assert not (project / "reports/metrics.json").exists() and not (project / "reports/figures").exists()
    (project / "models/model.npz").unlink()
    result = run_stage(project, "evaluate")
    assert result.returncode == 1 and "model file models/model.npz not found" in result.stderr
    assert not (project / "reports/metrics.json").exists()


def test_roc_points_and_confusion_counts_agree_with_sklearn():
    from sklearn.metrics import confusion_matrix, roc_auc_score, roc_curve

    from signdigits.metrics import confusion_counts, roc_points

    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 60)
    scores = np.round(rng.random(60), 1)  # many ties, which share one threshold
    fpr, tpr = roc_points(y, scores, 2)
    ref_fpr, ref_tpr, _ = roc_curve(y, scores, drop_intermediate=False)
    np.testing.assert_allclose(fpr, ref_fpr)
    np.testing.assert_allclose(tpr, ref_tpr)
    assert np.trapezoid(tpr, fpr) == pytest.approx(roc_auc_score(y, scores))
    y3 = rng.integers(0, 3, 40)
    proba = rng.dirichlet(np.ones(3), size=40)
    fpr, tpr = roc_points(y3, proba, 3)
    ref_fpr, ref_tpr, _ = roc_curve(np.eye(3)[y3].ravel(), proba.ravel(), drop_intermediate=False)
    np.testing.assert_allclose(fpr, ref_fpr)
    np.testing.assert_allclose(tpr, ref_tpr)
    predicted = proba.argmax(axis=1)
    np.testing.assert_array_equal(confusion_counts(y3, predicted, 3), confusion_matrix(y3, predicted, labels=[0, 1, 2]))


def test_train_stage_stops_cleanly_when_training_diverges(evaluated_tiny_project, run_stage):
    import yaml

    project = evaluated_tiny_project
    params = yaml.safe_load((project / "params.yaml").read_text())
    params["train"] |= {"learning_rate": 1e30, "activation": "relu"}
    (project / "params.yaml").write_text(yaml.safe_dump(params))
    result = run_stage(project, "train")
    assert result.returncode == 1
    assert result.stderr.strip().startswith("error: training diverged at epoch 1")
    assert "use a smaller train.learning_rate than 1e+30" in result.stderr
    assert not (project / "models").exists() and not (project / "reports/train_history.tsv").exists()
