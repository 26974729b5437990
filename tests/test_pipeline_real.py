"""End to end: `dvc repro` in a temporary git copy of the project, on the real dataset (SIGN_DIGITS_DATA).
Without the dataset these tests skip with a reason; .ci/run turns any skip into a failure."""

import json
import shutil

import numpy as np

DATA_STAGES = ["source", "ingest", "filter", "normalize", "split"]
ALL_STAGES = DATA_STAGES + ["perturbations", "crossval", "audit", "train", "evaluate", "plots_template"]


def test_full_repro_builds_every_artifact(built_project, stages_run):
    project, result = built_project
    assert sorted(stages_run(result.stdout)) == sorted(ALL_STAGES)

    images, labels = np.load(project / "data/raw/images.npy"), np.load(project / "data/raw/labels.npy")
    assert images.shape == (2062, 784) and images.dtype == np.uint8 and labels.dtype.kind == "U"
    assert 0 <= images.min() and images.max() <= 255 and images.std() > 20
    counts = dict(zip(*np.unique(labels, return_counts=True)))
    assert {k: int(v) for k, v in counts.items()} == {
        "0": 205,
        "1": 206,
        "2": 206,
        "3": 206,
        "4": 207,
        "5": 207,
        "6": 207,
        "7": 206,
        "8": 208,
        "9": 204,
    }
    summary = json.loads((project / "reports/ingest_summary.json").read_text())
    assert summary["matches_pinned_upstream"] and summary["images"] == 2062

    filtered = np.load(project / "data/filtered/labels.npy")
    assert len(filtered) == 412 and np.bincount(filtered).tolist() == [205, 207]  # "0" → 0, "5" → 1
    X = np.load(project / "data/normalized/X.npy")
    assert X.shape == (412, 784) and X.dtype == np.float32 and X.min() >= 0 and X.max() <= 1

    y_train, y_test = np.load(project / "data/split/y_train.npy"), np.load(project / "data/split/y_test.npy")
    X_train, X_test = np.load(project / "data/split/X_train.npy"), np.load(project / "data/split/X_test.npy")
    assert len(y_test) == 83 and len(y_train) == 329 and X_train.shape == (329, 784) and X_test.dtype == np.float32
    share_train, share_test = np.bincount(y_train) / len(y_train), np.bincount(y_test) / len(y_test)
    assert np.all(np.abs(share_train - share_test) < 0.02)  # stratified


def test_sideways_photos_come_out_upright(built_project, real_data):
    """Three 3024-pixel photos of "7" are stored sideways with EXIF orientation 6. Ingested upright, each
    must look like the other sevens (nearest to their mean image) rather than like a quarter-turned one."""
    from signdigits.images import read_photo

    project, _ = built_project
    images = np.load(project / "data/raw/images.npy").reshape(-1, 28, 28).astype(float)
    labels = np.load(project / "data/raw/labels.npy")
    sevens = images[labels == "7"]
    mean_seven = sevens.mean(axis=0)
    for name in ("IMG_5874.JPG", "IMG_5935.JPG", "IMG_5978.JPG"):
        upright = read_photo((real_data / "Dataset" / "7" / name).read_bytes(), 28, name).astype(float)
        assert sum(np.array_equal(upright, row) for row in sevens) == 1  # ingested exactly this way
        distances = [np.abs(np.rot90(upright, k) - mean_seven).mean() for k in range(4)]
        assert int(np.argmin(distances)) == 0, distances


def test_accuracy_with_the_default_params(built_project):
    project, _ = built_project
    metrics = json.loads((project / "reports/metrics.json").read_text())
    details = json.loads((project / "reports/test_details.json").read_text())
    assert metrics["test_acc"] >= 0.97
    assert details["test_accuracy_low"] < metrics["test_acc"] <= details["test_accuracy_high"]


def test_second_repro_runs_nothing(built_copy, real_data, dvc, stages_run):
    result = dvc(built_copy, "repro", SIGN_DIGITS_DATA=real_data)
    assert stages_run(result.stdout) == ["source"]  # the always-run source check, which found no change
    assert "didn't change, skipping" in result.stdout


def test_editing_test_size_reruns_split_and_after_only(built_copy, real_data, dvc, stages_run, set_params):
    set_params(built_copy, split={"test_size": 0.25})
    result = dvc(built_copy, "repro", SIGN_DIGITS_DATA=real_data)
    assert stages_run(result.stdout) == ["source", "split", "perturbations", "crossval", "audit", "train", "evaluate"]
    assert len(np.load(built_copy / "data/split/y_test.npy")) == 103


def test_changing_the_source_ingests_again_and_an_equal_copy_does_not(built_copy, real_data, tmp_path, dvc, stages_run):
    copy = tmp_path / "same"
    shutil.copytree(real_data / "Dataset", copy / "Dataset")
    result = dvc(built_copy, "repro", SIGN_DIGITS_DATA=copy)
    assert stages_run(result.stdout) == ["source"]  # same content elsewhere: nothing to redo
    subset = tmp_path / "subset"
    for digit in ("0", "5", "9"):
        shutil.copytree(real_data / "Dataset" / digit, subset / "Dataset" / digit)
    result = dvc(built_copy, "repro", SIGN_DIGITS_DATA=subset)
    assert stages_run(result.stdout)[:2] == ["source", "ingest"]
    assert len(np.load(built_copy / "data/raw/labels.npy")) == 205 + 207 + 204


def test_cross_validation_with_the_default_params(built_project):
    project, _ = built_project
    cv = json.loads((project / "reports/crossval_details.json").read_text())
    test = json.loads((project / "reports/test_details.json").read_text())
    assert json.loads((project / "reports/crossval.json").read_text())["cv_acc"] >= 0.95
    folds = np.genfromtxt(project / "reports/crossval_folds.csv", delimiter=",", names=True)
    assert cv["cv_folds"] == len(folds) == 5 and folds["rows"].sum() == 329
    assert cv["cv_accuracy_std"] == round(float(np.std(folds["accuracy"])), 4) < 0.05  # every fold alike
    assert cv["oof_accuracy_low"] < cv["oof_accuracy"] <= cv["oof_accuracy_high"]
    # 329 out-of-fold predictions against 83 test photos: a narrower interval
    width = cv["oof_accuracy_high"] - cv["oof_accuracy_low"]
    assert width < test["test_accuracy_high"] - test["test_accuracy_low"]
    rows = (project / "reports/crossval_predictions.csv").read_text().splitlines()
    assert rows[0] == "row,fold,true,predicted,probability,source,p_0,p_5" and len(rows) == 1 + 329
    assert all(row.split(",")[5].startswith(("Dataset/0/", "Dataset/5/")) for row in rows[1:])  # named by its file
