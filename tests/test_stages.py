"""Each stage script run as DVC runs it (a subprocess in the project folder), on data the test makes."""

import csv
import json

import numpy as np
import pytest


def written(project):
    """Every file under data/, models/ and reports/ (what a stage could have written)."""
    return sorted(
        str(p.relative_to(project))
        for folder in ("data", "models", "reports")
        for p in (project / folder).rglob("*")
        if p.is_file()
    )


@pytest.fixture
def tiny_project(tmp_path, copy_project, make_tree, set_params, tiny_train):
    project = copy_project(tmp_path / "project")
    tree = make_tree(tmp_path / "tree", digits=("0", "5", "3"), per_digit=10)
    set_params(project, ingest={"source": str(tree), "image_size": 8}, filter={"classes": ["5", "0"]}, train=tiny_train)
    return project


@pytest.fixture
def run_ok(run_stage):
    """run_ok(project, stage, **env): run the stage, which must succeed; the CompletedProcess."""

    def run_ok(project, stage, **env):
        result = run_stage(project, stage, **env)
        assert result.returncode == 0, result.stderr
        return result

    return run_ok


def test_data_stages_values(tiny_project, run_ok):
    project = tiny_project
    run_ok(project, "source")
    assert json.loads((project / "data/source.json").read_text())["kind"] == "tree"
    run_ok(project, "ingest")
    images, labels = np.load(project / "data/raw/images.npy"), np.load(project / "data/raw/labels.npy")
    assert images.shape == (30, 64) and images.dtype == np.uint8 and labels.tolist().count("3") == 10
    summary = json.loads((project / "reports/ingest_summary.json").read_text())
    assert summary["images_per_class"] == {"0": 10, "3": 10, "5": 10}

    run_ok(project, "filter")
    kept = np.load(project / "data/filtered/labels.npy")
    # classes ["5", "0"]: "5" → 0 and "0" → 1, in the order the params list them
    np.testing.assert_array_equal(kept, np.where(labels[labels != "3"] == "5", 0, 1))
    np.testing.assert_array_equal(np.load(project / "data/filtered/images.npy"), images[labels != "3"])
    assert json.loads((project / "data/filtered/meta.json").read_text()) == {"classes": ["5", "0"], "image_size": 8}

    run_ok(project, "normalize")
    X = np.load(project / "data/normalized/X.npy")
    assert X.dtype == np.float32 and 0 <= X.min() and X.max() <= 1
    np.testing.assert_allclose(X * 255, images[labels != "3"], atol=1e-4)

    run_ok(project, "split")
    parts = {name: np.load(project / f"data/split/{name}.npy") for name in ("X_train", "y_train", "X_test", "y_test")}
    assert len(parts["y_test"]) == 4 and len(parts["y_train"]) == 16  # 0.2 of 20
    assert np.bincount(parts["y_test"]).tolist() == [2, 2]  # stratified
    rows = {tuple(r) for r in np.concatenate([parts["X_train"], parts["X_test"]])}
    assert rows == {tuple(r) for r in X}  # a partition of the rows: nothing lost or duplicated
    again = run_ok(project, "split") and np.load(project / "data/split/y_test.npy")
    np.testing.assert_array_equal(again, parts["y_test"])  # seeded


def test_zip_and_npz_sources_through_ingest(tiny_project, tmp_path, zip_tree, run_ok):

    archive = zip_tree(tmp_path / "tree", tmp_path / "tree.zip")
    run_ok(tiny_project, "ingest", SIGN_DIGITS_DATA=archive)
    from_zip = np.load(tiny_project / "data/raw/images.npy")
    run_ok(tiny_project, "ingest")
    np.testing.assert_array_equal(from_zip, np.load(tiny_project / "data/raw/images.npy"))
    np.savez(tmp_path / "course.npz", dataset=np.full((4, 64), 7), labels=np.array(["0", "5", "0", "5"]))
    run_ok(tiny_project, "ingest", SIGN_DIGITS_DATA=tmp_path / "course.npz")
    assert np.load(tiny_project / "data/raw/images.npy").tolist() == [[7] * 64] * 4


@pytest.fixture
def assert_fails_cleanly(run_stage):
    """assert_fails_cleanly(project, stage, message, **env): the stage exits 1 with one ``error:`` line holding
    ``message``, and writes nothing."""

    def assert_fails_cleanly(project, stage, message, **env):
        before = written(project)
        result = run_stage(project, stage, **env)
        assert result.returncode == 1, result.stderr
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
        assert message in lines[0], lines[0]
        assert written(project) == before  # nothing written, nothing half-written
        assert not list(project.rglob("*.tmp"))

    return assert_fails_cleanly


@pytest.mark.parametrize(
    "params, message",
    [
        ({"ingest": {"source": "/no/such/folder"}}, "dataset source /no/such/folder does not exist; fix ingest.source"),
    ],
)
def test_ingest_bad_params(tiny_project, params, message, set_params, assert_fails_cleanly):
    set_params(tiny_project, **params)
    assert_fails_cleanly(tiny_project, "ingest", message)


def test_download_impossible_offline(tiny_project, tmp_path, set_params, assert_fails_cleanly):
    set_params(tiny_project, ingest={"source": "upstream"})
    # an unreachable proxy stands in for having no network
    assert_fails_cleanly(
        tiny_project,
        "ingest",
        "offline? set SIGN_DIGITS_DATA=",
        XDG_CACHE_HOME=tmp_path / "cache",
        HTTPS_PROXY="http://127.0.0.1:9",
        https_proxy="http://127.0.0.1:9",
    )
    assert not list((tmp_path / "cache").rglob("*.zip*")) if (tmp_path / "cache").exists() else True


def test_digest_mismatch_of_cached_archive(tiny_project, tmp_path, zip_tree, set_params, assert_fails_cleanly):
    from signdigits.dataset import UPSTREAM_COMMIT

    set_params(tiny_project, ingest={"source": "upstream"})
    cache = tmp_path / "cache"
    (cache / "signdigits").mkdir(parents=True)
    zip_tree(tmp_path / "tree", cache / "signdigits" / f"Sign-Language-Digits-Dataset-{UPSTREAM_COMMIT}.zip")
    assert_fails_cleanly(tiny_project, "ingest", "does not match the pinned content digest", XDG_CACHE_HOME=cache)


def test_filter_bad_classes(tiny_project, set_params, run_ok, assert_fails_cleanly):
    run_ok(tiny_project, "ingest")
    set_params(tiny_project, filter={"classes": ["0", "7"]})
    assert_fails_cleanly(
        tiny_project, "filter", "filter.classes lists '7', which is not in the data; classes present: 0, 3, 5"
    )
    set_params(tiny_project, filter={"classes": ["0"]})
    assert_fails_cleanly(tiny_project, "filter", "fewer than two classes")
    set_params(tiny_project, filter={"classes": ["0", "0"]})
    assert_fails_cleanly(tiny_project, "filter", "lists a class twice")


def test_split_bad_test_size(tiny_project, set_params, run_ok, assert_fails_cleanly):
    for stage in ("ingest", "filter", "normalize"):
        run_ok(tiny_project, stage)
    for bad in (0, 1, 1.5, -0.1):
        set_params(tiny_project, split={"test_size": bad})
        assert_fails_cleanly(
            tiny_project, "split", f"split.test_size = {bad} is not allowed; expected a number in (0, 1)"
        )
    set_params(tiny_project, split={"test_size": 0.01})
    assert_fails_cleanly(tiny_project, "split", "cannot put every class in both parts")


def test_missing_input_says_how_to_build_it(tiny_project, assert_fails_cleanly):
    assert_fails_cleanly(tiny_project, "filter", "data/raw/images.npy not found; run `dvc repro`")


def test_every_row_is_traced_to_its_file_through_every_stage(tiny_project, tmp_path, run_ok):
    """Each stage keeps each row's source beside its pixels: re-reading the file a source names gives that row's
    pixels and digit, in data/raw, data/filtered, data/normalized and both parts of data/split; the out-of-fold
    predictions, the label audit and the test predictions name the same photos; no artifact holds a machine path."""
    from signdigits.images import read_photo

    tree, project = tmp_path / "tree", tiny_project
    for stage in ("source", "ingest", "filter", "normalize", "split", "crossval", "audit", "train", "evaluate"):
        run_ok(project, stage)

    def photo(source):  # the file's pixels as ingest reads them (8 × 8), and its digit folder
        return read_photo((tree / source).read_bytes(), 8, source).reshape(-1), source.split("/")[1]

    classes = ["5", "0"]
    raw = np.load(project / "data/raw/sources.npy")
    assert raw.dtype.kind == "U" and len(set(raw)) == len(raw) == 30
    for folder, pixels, labels, sources, scale in [
        ("raw", "images", "labels", "sources", 1),
        ("filtered", "images", "labels", "sources", 1),
        ("normalized", "X", "y", "sources", 255),
        ("split", "X_train", "y_train", "sources_train", 255),
        ("split", "X_test", "y_test", "sources_test", 255),
    ]:
        X, y = np.load(project / f"data/{folder}/{pixels}.npy"), np.load(project / f"data/{folder}/{labels}.npy")
        names = np.load(project / f"data/{folder}/{sources}.npy", allow_pickle=False)
        assert len(names) == len(X) == len(y) and set(names) <= set(raw), folder
        for row, (source, label) in enumerate(zip(names, y)):
            pixels_of_file, digit = photo(source)
            np.testing.assert_allclose(X[row] * scale, pixels_of_file, atol=1e-3, err_msg=f"{folder} {source}")
            assert digit == (label if folder == "raw" else classes[label]), (folder, source)

    train, test = np.load(project / "data/split/sources_train.npy"), np.load(project / "data/split/sources_test.npy")
    with open(project / "reports/crossval_predictions.csv") as rows:
        oof = list(csv.DictReader(rows))
    assert [r["source"] for r in oof] == train.tolist()
    assert all(abs(float(r["p_5"]) + float(r["p_0"]) - 1) < 1e-5 for r in oof)
    assert all(r["true"] == r["source"].split("/")[1] for r in oof)
    with open(project / "reports/label_issues.csv") as rows:
        issues = list(csv.DictReader(rows))
    assert {r["source"] for r in issues} <= set(train.tolist())
    assert [int(r["rank"]) for r in issues] == list(range(1, len(issues) + 1))
    with open(project / "reports/predictions.csv") as rows:
        assert [r["source"] for r in csv.DictReader(rows)] == test.tolist()
    assert json.loads((project / "reports/label_audit.json").read_text())["audited_photos"] == len(train)
    assert (project / "reports/label_issues.png").read_bytes().startswith(b"\x89PNG")
    # no machine path, but in the ingest summary, which records ingest.source as params.yaml gives it (here a path)
    machine = str(tmp_path).encode()
    files = [p for folder in ("data", "reports", "models") for p in (project / folder).rglob("*") if p.is_file()]
    leaks = [p.name for p in files if machine in p.read_bytes()]
    assert leaks == ["ingest_summary.json"]


def test_filter_excludes_and_relabels_by_source(tiny_project, set_params, run_ok):
    project = tiny_project
    run_ok(project, "ingest")
    sources, labels = np.load(project / "data/raw/sources.npy"), np.load(project / "data/raw/labels.npy")
    pick = (("0", 0), ("5", 0), ("5", 1), ("3", 0))
    a_zero, a_five, another_five, a_three = (str(sources[labels == digit][i]) for digit, i in pick)
    relabel = {a_five: "0", another_five: "3", a_three: 5}  # a 3 called 5 joins; a 5 called 3 leaves
    set_params(project, filter={"exclude": [a_zero], "relabel": relabel})
    run_ok(project, "filter")
    kept = np.load(project / "data/filtered/sources.npy").tolist()
    y = dict(zip(kept, np.load(project / "data/filtered/labels.npy").tolist()))
    assert len(kept) == 20 - 1 - 1 + 1 and a_zero not in kept and another_five not in kept
    assert y[a_five] == 1 and y[a_three] == 0  # classes ["5", "0"]: "0" → 1, "5" → 0
    images = np.load(project / "data/filtered/images.npy")
    raw = np.load(project / "data/raw/images.npy")
    np.testing.assert_array_equal(images, raw[[sources.tolist().index(s) for s in kept]])


@pytest.mark.parametrize(
    "change, message",
    [
        (
            {"exclude": ["Dataset/0/IMG_99.JPG"]},
            "params.yaml: filter.exclude names 'Dataset/0/IMG_99.JPG', which is not a photo of the data",
        ),
        ({"relabel": {"/home/me/IMG_0.JPG": "5"}}, "filter.relabel names '/home/me/IMG_0.JPG', which is not a photo"),
        ({"relabel": {"Dataset/0/IMG_0.JPG": "x"}}, "filter.relabel maps 'Dataset/0/IMG_0.JPG' to 'x', which is not"),
        ({"relabel": {"Dataset/0/IMG_0.JPG": 10}}, "filter.relabel maps 'Dataset/0/IMG_0.JPG' to 10, which is not a"),
        ({"exclude": ["Dataset/0/IMG_0.JPG"] * 2}, "filter.exclude lists 'Dataset/0/IMG_0.JPG' twice"),
    ],
)
def test_bad_corrections_fail_in_one_line_before_anything_is_written(
    tiny_project, change, message, set_params, run_ok, assert_fails_cleanly
):
    project = tiny_project
    run_ok(project, "ingest")
    run_ok(project, "filter")
    before = {p: (project / p).read_bytes() for p in written(project)}
    set_params(project, filter=change)
    assert_fails_cleanly(project, "filter", message)
    assert {p: (project / p).read_bytes() for p in written(project)} == before
    if "maps" in message or "twice" in message:  # what params.py can tell without the data stops the first stage
        assert_fails_cleanly(project, "source", message)


def test_excluding_one_photo_reruns_filter_and_after_and_diffs_exactly_that(tiny_copy, tiny_built, dvc, stages_run):
    """Issue 21's goal: a photo excluded by path in params.yaml (as DVC would write it), `dvc repro` reruns filter
    and the stages after it, not ingest, and `dvc params diff` shows exactly that entry; the label audit counts one
    training photo fewer."""
    project, tree = tiny_copy, tiny_built[1]
    audited = json.loads((project / "reports/label_audit.json").read_text())["audited_photos"]
    path = str(np.load(project / "data/split/sources_train.npy")[0])
    params = project / "params.yaml"
    params.write_text(params.read_text().replace("  exclude: []\n", f"  exclude:\n  - {path}\n"))
    ran = stages_run(dvc(project, "repro", SIGN_DIGITS_DATA=tree).stdout)
    assert ran == ["source", "filter", "normalize", "split", "perturbations", "crossval", "audit", "train", "evaluate"]
    diff = json.loads(dvc(project, "params", "diff", "--json").stdout)
    assert diff == {"params.yaml": {"filter.exclude": {"old": "[]", "new": str([path])}}}  # DVC shows lists as text
    assert json.loads((project / "reports/label_audit.json").read_text())["audited_photos"] == audited - 1 == 15
    assert path not in np.load(project / "data/split/sources_train.npy").tolist()
