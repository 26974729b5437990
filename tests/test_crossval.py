"""Cross-validation: the folds, the crossval stage's figures (accuracy, under the perturbation suite, calibration)
against independent computations, the exact McNemar test against SciPy, and the promise that only evaluate's
outputs depend on the test split (the temperature and refusal threshold are chosen on validation rows only)."""

import json
import math

import numpy as np
import pytest
from scipy.stats import binomtest

from signdigits import crossval, training
from signdigits.calibration import fit_temperature
from signdigits.errors import UsageError
from signdigits.modelfile import load_model
from signdigits.params import load_params
from signdigits.perturbations import mirror, non_hands
from signdigits.preprocess import NO_FOLD, stratified_folds
from signdigits.stats import discordant_counts, mcnemar_p


@pytest.mark.parametrize("k", [2, 3, 5, 10])
def test_folds_are_disjoint_stratified_cover_every_row_and_seeded(k):
    y = np.repeat([0, 1, 2], [40, 33, 27])
    np.random.default_rng(1).shuffle(y)
    folds = stratified_folds(y, k, seed=7)
    assert folds.shape == y.shape and set(folds.tolist()) == set(range(k))  # every row in exactly one fold
    sizes = np.bincount(folds)
    assert sizes.max() - sizes.min() <= 3  # nearly equal: within one row of each of the 3 classes
    for fold in range(k):
        counts = np.bincount(y[folds == fold], minlength=3)
        assert np.all(np.abs(counts - np.bincount(y) / k) < 1)  # each class in its share, to within one row
    np.testing.assert_array_equal(folds, stratified_folds(y, k, seed=7))
    assert not np.array_equal(folds, stratified_folds(y, k, seed=8))


def test_folds_off_and_too_many_folds():
    y = np.array([0, 1] * 5)
    for k in (0, 1):
        assert stratified_folds(y, k, seed=0).tolist() == [NO_FOLD] * 10
    with pytest.raises(UsageError, match="split.folds = 6 needs at least 6 training images of every class"):
        stratified_folds(y, 6, seed=0)


def test_split_stage_folds_index_the_training_rows_only(tmp_path, copy_project, run_stage):
    project = copy_project(tmp_path / "project")
    X = np.random.default_rng(0).random((50, 64)).astype(np.float32)  # 50 distinct rows
    (project / "data/normalized").mkdir(parents=True)
    np.save(project / "data/normalized/X.npy", X)
    np.save(project / "data/normalized/y.npy", np.arange(50) % 2)
    np.save(project / "data/normalized/sources.npy", np.array([f"Dataset/{'05'[i % 2]}/{i}.png" for i in range(50)]))
    (project / "data/normalized/meta.json").write_text(json.dumps({"classes": ["0", "5"], "image_size": 8}))
    others = np.random.default_rng(1).random((21, 64)).astype(np.float32)  # photos of other digits
    np.save(project / "data/normalized/X_others.npy", others)
    np.save(project / "data/normalized/sources_others.npy", np.array([f"Dataset/3/{i}.png" for i in range(21)]))
    assert run_stage(project, "split").returncode == 0
    names = ("X_train", "y_train", "X_test", "folds", "X_others_train", "X_others_test", "folds_others")
    split = {name: np.load(project / f"data/split/{name}.npy") for name in names}
    assert len(split["folds"]) == len(split["y_train"]) == 40 and set(split["folds"].tolist()) == set(range(5))
    test_rows = {row.tobytes() for row in split["X_test"]}
    assert not any(row.tobytes() in test_rows for row in split["X_train"])  # a fold holds training rows only
    # the other hands: a fifth (rounded up) held out for the test, the rest in five folds of their own
    learnt, held = ({row.tobytes() for row in split[name]} for name in ("X_others_train", "X_others_test"))
    assert len(held) == 5 and len(learnt) == 16 and not learnt & held and learnt | held == {r.tobytes() for r in others}
    assert np.bincount(split["folds_others"]).tolist() == [4, 3, 3, 3, 3]
    sources = np.load(project / "data/split/sources_others_test.npy")
    assert sorted(int(s.split("/")[-1][:-4]) for s in sources) == sorted(
        np.flatnonzero([r.tobytes() in held for r in others])
    )


def test_each_fold_trains_on_the_other_folds_and_the_figures_add_up(root):
    params = load_params("train", root / "params.yaml") | {"epochs": 5, "hidden_units": 8}
    rng = np.random.default_rng(0)
    y = np.arange(30) % 2
    X = np.clip(rng.normal(0.4 + 0.2 * y[:, None], 0.15, size=(30, 64)), 0, 1).astype(np.float32)
    folds = stratified_folds(y, 3, seed=0)
    rows_seen = []

    history, per_fold, oof, nets = crossval.cross_validate(params, X, y, folds, 2, on_epoch=rows_seen.append)
    assert rows_seen == history and [row["epoch"] for row in history] == [1, 2, 3, 4, 5]
    # each fold's network is the one a plain fit on the other folds makes, in this process, bit for bit: it
    # trained on the other folds' rows (their standardization is its), and the folds' processes change nothing
    for fold, net in enumerate(nets):
        rows = folds == fold
        alone, _ = training.train(params, X[~rows], y[~rows], n_classes=2, label=None)
        for name, value in alone.params.items():
            np.testing.assert_array_equal(value, net.params[name])
        np.testing.assert_array_equal(alone.input_mean, net.input_mean)
        np.testing.assert_array_equal(alone.logits(X[rows]), oof["logits"][rows])
        assert per_fold[fold]["loss"] == pytest.approx(alone.loss(X[rows], y[rows]), rel=1e-6)
    # the history is the mean over folds of each fold's own rows
    folds_alone = [
        training.build_model(params, 64, 2).fit(
            X[folds != f], y[folds != f], training.training_config(params), validation=(X[folds == f], y[folds == f])
        )
        for f in range(3)
    ]
    for epoch, row in enumerate(history):
        assert row["val_loss"] == pytest.approx(np.mean([h[epoch]["val_loss"] for h in folds_alone]), rel=1e-9)
        assert row["val_loss_std"] == pytest.approx(np.std([h[epoch]["val_loss"] for h in folds_alone]), rel=1e-9)

    from sklearn.metrics import accuracy_score

    np.testing.assert_array_equal(oof["fold"], folds)
    np.testing.assert_array_equal(oof["true"], y)
    for f in per_fold:
        rows = folds == f["fold"]
        assert f["rows"] == rows.sum()
        assert f["accuracy"] == pytest.approx(accuracy_score(y[rows], oof["predicted"][rows]))
    robust = crossval.robustness_table(nets, X, y, folds)
    # each fold perturbed and predicted by the network that did not train on it
    mirrored = np.concatenate([nets[f].predict(mirror(X[folds == f])) == y[folds == f] for f in range(3)])
    assert robust["mirror"] == [pytest.approx(mirrored.mean())] * 5
    # the default averages each photo's answer with its mirror image's: mirrored, every fold reads as it does clean
    assert params["mirror_average"] and robust["mirror"] == [pytest.approx(np.mean(oof["predicted"] == y))] * 5
    calibrated = crossval.calibrate(nets, X, y, folds, oof, {"score": "msp", "max_refused": 0.1}, non_hands(20, 8))
    assert calibrated["temperature"] == round(max(1.0, fit_temperature(oof["logits"], y)), 6)
    assert calibrated["refusal"]["refused_validation"] <= 0.1
    headline, summary = crossval.summary(per_fold, oof, robust, calibrated)
    assert headline == {
        "cv_acc": round(np.mean([f["accuracy"] for f in per_fold]), 4),
        "cv_loss": round(np.mean([f["loss"] for f in per_fold]), 4),
        "cv_robust": round(np.mean([row[:3] for row in robust.values()]), 4),  # every family, severities 1–3
    }
    assert summary["cv_ece"] == calibrated["ece_after"]
    correct = int(np.sum(oof["predicted"] == y))
    assert summary["oof_accuracy"] == round(correct / 30, 4) and summary["cv_folds"] == 3
    assert summary["cv_loss_std"] == round(np.std([f["loss"] for f in per_fold]), 4)
    # Wilson's interval by its formula: (p + z²/2n ± z √(p(1−p)/n + z²/4n²)) / (1 + z²/n)
    z, p, n = 1.959963984540054, correct / 30, 30
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    assert summary["oof_accuracy_low"] == pytest.approx((p + z * z / (2 * n) - half) / (1 + z * z / n), abs=1e-4)
    assert summary["oof_accuracy_high"] == pytest.approx((p + z * z / (2 * n) + half) / (1 + z * z / n), abs=1e-4)
    assert [row["epoch"] for row in history] == [1, 2, 3, 4, 5]
    assert history[-1]["val_loss"] == pytest.approx(np.mean([f["loss"] for f in per_fold]))
    assert history[-1]["val_accuracy_std"] == pytest.approx(np.std([f["accuracy"] for f in per_fold]))


@pytest.mark.parametrize(
    "pairs",
    [
        # (true, A, B) per photo
        [(0, 0, 0)] * 20,  # no discordant photo
        [(1, 1, 0)] * 6 + [(1, 0, 1)] * 1 + [(0, 0, 0)] * 30,
        [(0, 0, 1)] * 3 + [(0, 1, 0)] * 3 + [(1, 1, 1)] * 10,
        [(2, 2, 0)] * 12 + [(2, 1, 2)] * 2 + [(0, 1, 1)] * 5,  # both wrong on the last five: not discordant
        [(1, 1, 0)] * 1,
    ],
)
def test_mcnemar_matches_scipy_binomtest(pairs):
    y, a, b = (np.array(column) for column in zip(*pairs))
    right_a_only = sum(1 for t, pa, pb in pairs if pa == t and pb != t)
    right_b_only = sum(1 for t, pa, pb in pairs if pb == t and pa != t)
    assert discordant_counts(y, a, b) == (right_a_only, right_b_only)
    n = right_a_only + right_b_only
    expected = binomtest(right_a_only, n, 0.5).pvalue if n else 1.0
    assert mcnemar_p(right_a_only, right_b_only) == pytest.approx(expected, rel=1e-12)
    assert mcnemar_p(right_b_only, right_a_only) == pytest.approx(expected, rel=1e-12)  # symmetric


def test_cross_validation_off(tmp_path, copy_project, write_split, run_stage):
    project = copy_project(tmp_path / "project")
    write_split(project, folds=0)
    for stage in ("crossval", "train", "evaluate"):
        result = run_stage(project, stage)
        assert result.returncode == 0, result.stderr
    assert json.loads((project / "reports/crossval.json").read_text()) == {}
    assert json.loads((project / "reports/crossval_details.json").read_text()) == {"cv_folds": 0}
    assert json.loads((project / "reports/calibration.json").read_text()) == {"temperature": 1.0, "refusal": None}
    net = load_model(project / "models/model.npz")
    assert net.temperature == 1.0 and net.refusal is None  # nothing to calibrate on: it never refuses
    header = "row,fold,true,predicted,probability,source,p_0,p_5\n"
    assert (project / "reports/crossval_predictions.csv").read_text() == header
    assert not list((project / "reports/history").rglob("*.tsv"))  # nothing trained, no curves


def test_only_evaluate_depends_on_the_test_split(tmp_path, copy_project, write_split, run_stage):
    """Run the stages after split, permute the test labels, run them again: everything but evaluate's outputs is
    byte-identical (the temperature and the refusal threshold in reports/calibration.json and the model file
    among them), and evaluate's metrics did change."""
    project = copy_project(tmp_path / "project")
    split = write_split(project, n_test=20)

    def run_all():
        for stage in ("crossval", "train", "evaluate"):
            result = run_stage(project, stage)
            assert result.returncode == 0, result.stderr
        files = [project / "models/model.npz", *sorted((project / "reports").rglob("*")), *split.glob("folds.npy")]
        return {str(p.relative_to(project)): p.read_bytes() for p in files if p.is_file()}

    before = run_all()
    y_test = np.load(split / "y_test.npy")
    np.save(split / "y_test.npy", np.roll(y_test, 1))  # every label flips: alternating classes
    after = run_all()
    evaluates = {
        "reports/metrics.json",
        "reports/test_details.json",
        "reports/classification_report.txt",
        "reports/predictions.csv",
        "reports/roc.csv",
        "reports/prediction_examples.png",
        "reports/robustness.csv",
        "reports/refusal.json",
    }
    evaluates |= {name for name in before if name.startswith("reports/figures/") and "loss_curve" not in name}
    assert set(before) == set(after) and "reports/crossval.json" in before and "models/model.npz" in before
    assert "reports/history/plots/metrics/val_loss.tsv" in before
    for name in set(before) - evaluates:
        assert before[name] == after[name], name
    assert before["reports/test_details.json"] != after["reports/test_details.json"]
    assert json.loads(before["reports/calibration.json"])["refusal"]["threshold"] is not None
