"""Shared fixtures: the project root, tiny photos and photo trees made on the fly, finite differences, stage
runners, and temporary git copies of the project for end-to-end `dvc repro` runs on the real dataset
(SIGN_DIGITS_DATA). Test modules get every shared helper from here as a fixture, never by importing each other.

A test is ``slow`` (`python -m pytest -m "not slow"` leaves it out) when it needs the real dataset, or runs a
stage, `dvc` or `signdigits` in a subprocess: those that use a fixture of SLOW_FIXTURES are marked here, the
others carry the mark themselves. The rest are the unit tests, in-process on data they make."""

import io
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest
import yaml
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
# config/: the named configurations (Hydra config groups) `dvc exp run -S +config=NAME` composes params.yaml from
PROJECT_FILES = (
    "dvc.yaml",
    "params.yaml",
    "pyproject.toml",
    ".dvcignore",
    ".gitignore",
    "stages",
    "signdigits",
    "config",
)


# Fixtures that need the real dataset, or that build or copy a project to run its stages in: a test using one is slow.
SLOW_FIXTURES = {
    *("real_data", "built_project", "built_copy", "tiny_built", "tiny_copy", "tiny_tree"),
    *("copy_project", "run_stage", "write_split", "dvc", "child_env"),
}


def pytest_collection_modifyitems(items):
    for item in items:
        if SLOW_FIXTURES & set(item.fixturenames):
            item.add_marker(pytest.mark.slow)


@pytest.fixture(scope="session")
def root() -> Path:
    """The project's root folder (this checkout)."""
    return ROOT


def real_data_path() -> Path | None:
    location = os.environ.get("SIGN_DIGITS_DATA")
    if location and (Path(location) / "Dataset").is_dir():
        return Path(location)
    return None


@pytest.fixture
def real_data():
    path = real_data_path()
    if path is None:
        pytest.skip("real dataset absent: set SIGN_DIGITS_DATA to a copy of the Sign Language Digits Dataset")
    return path


def _child_env(project: Path, **extra) -> dict:
    """Environment for running stages/dvc in ``project``: this interpreter first on PATH (stage commands
    call `python`), the copy's own package importable, no dataset variable unless given."""
    env = {k: v for k, v in os.environ.items() if k != "SIGN_DIGITS_DATA"}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env["PYTHONPATH"] = str(project)
    env["DVC_NO_ANALYTICS"] = "1"
    env.update({k: str(v) for k, v in extra.items()})
    return env


def _run_stage(project: Path, stage: str, **env) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(project / "stages" / f"{stage}.py")],
        cwd=project,
        env=_child_env(project, **env),
        capture_output=True,
        text=True,
        timeout=600,
    )


def _copy_project(target: Path) -> Path:
    """The project's code and config (no data, no results) in ``target``."""
    target.mkdir(parents=True, exist_ok=True)
    for name in PROJECT_FILES:
        source = ROOT / name
        if source.is_dir():
            shutil.copytree(source, target / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(source, target / name)
    (target / ".dvc").mkdir()
    shutil.copy2(ROOT / ".dvc" / "config", target / ".dvc" / "config")
    shutil.copy2(ROOT / ".dvc" / ".gitignore", target / ".dvc" / ".gitignore")
    return target


def _git(project: Path, *args) -> str:
    result = subprocess.run(["git", *args], cwd=project, capture_output=True, text=True, check=True)
    return result.stdout


def _dvc(project: Path, *args, check=True, **env) -> subprocess.CompletedProcess:
    result = subprocess.run(
        [sys.executable, "-m", "dvc", *args],
        cwd=project,
        env=_child_env(project, **env),
        capture_output=True,
        text=True,
        timeout=2700,  # a guard against a hang, not a speed test: the robust CNN's training alone takes minutes
    )
    if check and result.returncode != 0:
        raise AssertionError(f"dvc {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}")
    return result


def _git_project(target: Path) -> Path:
    """A copy of the project as a fresh git repository with one commit."""
    project = _copy_project(target)
    _git(project, "init", "-q", "-b", "main")
    _git(project, "config", "user.email", "test@example.com")
    _git(project, "config", "user.name", "test")
    _git(project, "add", "-A")
    _git(project, "commit", "-q", "-m", "project")
    return project


def _stages_run(output: str) -> list[str]:
    """Names of the stages a `dvc repro` output says it ran."""
    return [line.split("'")[1] for line in output.splitlines() if line.startswith("Running stage '")]


@pytest.fixture(scope="session")
def built_project(tmp_path_factory):
    """A temporary git copy of the project after a full `dvc repro` on the real data, committed."""
    data = real_data_path()
    if data is None:
        pytest.skip("real dataset absent: set SIGN_DIGITS_DATA to a copy of the Sign Language Digits Dataset")
    project = _git_project(tmp_path_factory.mktemp("built") / "project")
    result = _dvc(project, "repro", SIGN_DIGITS_DATA=data)
    _git(project, "add", "-A")
    _git(project, "commit", "-q", "-m", "baseline run")
    return project, result


@pytest.fixture
def built_copy(built_project, tmp_path):
    """A private copy of the built project (with its git history, DVC cache and data) to change freely."""
    project, _ = built_project
    copy = tmp_path / "project"
    shutil.copytree(project, copy, symlinks=True)
    return copy


def _set_params(project: Path, **sections):
    """Update params.yaml in ``project``: set_params(project, train={"learning_rate": 0.05})."""
    path = project / "params.yaml"
    params = yaml.safe_load(path.read_text())
    for section, values in sections.items():
        params[section].update(values)
    path.write_text(yaml.safe_dump(params, sort_keys=False))


# Project helpers, as fixtures: the function itself, to call with a project folder.
@pytest.fixture(scope="session")
def run_stage():
    """run_stage(project, stage, **env): stages/<stage>.py run as DVC runs it; the CompletedProcess."""
    return _run_stage


@pytest.fixture(scope="session")
def copy_project():
    """copy_project(target): the project's code and config (no data, no results) in ``target``."""
    return _copy_project


@pytest.fixture(scope="session")
def git():
    """git(project, *args): the command's stdout; a failure raises."""
    return _git


@pytest.fixture(scope="session")
def dvc():
    """dvc(project, *args, check=True, **env): the CompletedProcess; with check, a failure raises with its output."""
    return _dvc


@pytest.fixture(scope="session")
def stages_run():
    """stages_run(output): the names of the stages a `dvc repro` output says it ran."""
    return _stages_run


@pytest.fixture(scope="session")
def set_params():
    return _set_params


# --- photos made by the tests ------------------------------------------------------------------------------------
def _luma(rgb) -> float:
    """ITU-R 601-2 luma, the grayscale a viewer's 'L' conversion gives."""
    r, g, b = rgb
    return 0.299 * r + 0.587 * g + 0.114 * b


def _half_image(size, bright_side: str, mode="RGB", bright=230, dark=20):
    """An image bright on one side ('left', 'right', 'top' or 'bottom') and dark on the other."""
    width, height = size
    pixels = np.full((height, width), dark, dtype=np.uint8)
    if bright_side == "left":
        pixels[:, : width // 2] = bright
    elif bright_side == "right":
        pixels[:, width // 2 :] = bright
    elif bright_side == "top":
        pixels[: height // 2] = bright
    else:
        pixels[height // 2 :] = bright
    image = Image.fromarray(pixels, "L")
    return image.convert(mode) if mode != "L" else image


# The tiny photos are half-bright images, the very kind of synthetic non-hands outlier exposure teaches the default to
# refuse: a tiny project trains without it, and so without the share of them that are natural images
TINY_TRAIN = {"outlier_exposure": 0, "natural_images": 0}

# digit → which side is bright: easy to tell apart, also mirrored (the default trains on mirrored photos), and each
# ingested row can be checked
BRIGHT_SIDE = {"0": "top", "5": "bottom", "3": "left"}
SIZES = [(100, 100), (64, 64), (120, 90), (50, 50)]


def _make_tree(root: Path, digits=("0", "5", "3"), per_digit=6, nested=True) -> Path:
    """A dataset tree (root/Dataset/<digit>/...) mixing RGB JPEG, L / RGBA / P PNG of several sizes."""
    base = root / "Dataset" if nested else root
    for digit in digits:
        folder = base / digit
        folder.mkdir(parents=True, exist_ok=True)
        for i in range(per_digit):
            size = SIZES[i % len(SIZES)]
            kind = i % 4
            image = _half_image(size, BRIGHT_SIDE[digit])
            if kind == 0:
                image.save(folder / f"IMG_{i}.JPG", quality=95)
            elif kind == 1:
                image.convert("L").save(folder / f"img_{i}.png")
            elif kind == 2:
                image.convert("RGBA").save(folder / f"img_{i}.png")
            else:
                image.convert("P").save(folder / f"img_{i}.png")
    (base / ".DS_Store").write_bytes(b"\0\1junk")  # hidden files are not photos
    return root


def _zip_tree(root: Path, archive: Path, top="Sign-Language-Digits-Dataset-x") -> Path:
    with zipfile.ZipFile(archive, "w") as out:
        for path in sorted(root.rglob("*")):
            out.write(path, f"{top}/{path.relative_to(root).as_posix()}")
    return archive


def _jpeg_bytes(image, **save) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=95, **save)
    return buffer.getvalue()


@pytest.fixture(scope="session")
def luma():
    return _luma


@pytest.fixture(scope="session")
def half_image():
    """half_image(size, bright_side, mode="RGB", bright=230, dark=20): a PIL image, one side bright."""
    return _half_image


@pytest.fixture(scope="session")
def tiny_train():
    """The train params a project on the tiny photo tree sets (TINY_TRAIN)."""
    return TINY_TRAIN


@pytest.fixture(scope="session")
def bright_side():
    """The bright side of each digit's photos in make_tree's trees."""
    return BRIGHT_SIDE


@pytest.fixture(scope="session")
def make_tree():
    """make_tree(root, digits=("0", "5", "3"), per_digit=6, nested=True): a dataset tree of mixed photos."""
    return _make_tree


@pytest.fixture(scope="session")
def zip_tree():
    """zip_tree(root, archive): the tree zipped under one top folder, as GitHub's archives are."""
    return _zip_tree


@pytest.fixture(scope="session")
def jpeg_bytes():
    """jpeg_bytes(image, **save): the image as JPEG file content."""
    return _jpeg_bytes


# --- the networks' reference ---------------------------------------------------------------------------------------
def _numeric_gradient(net, X, y, name, weight_decay, h=1e-6, keep=None):
    """Central differences: (L(θ + h) − L(θ − h)) / 2h, one coordinate at a time, of the loss a training step
    sees (batch normalisation with the batch's statistics); with ``keep``, of the network thinned by that dropout
    mask."""
    theta = net.params[name]
    grad = np.zeros_like(theta)

    def loss():
        return net.loss(X, y, weight_decay, keep, training=True)

    for index in np.ndindex(theta.shape):
        saved = theta[index]
        theta[index] = saved + h
        plus = loss()
        theta[index] = saved - h
        minus = loss()
        theta[index] = saved
        grad[index] = (plus - minus) / (2 * h)
    return grad


@pytest.fixture(scope="session")
def numeric_gradient():
    """numeric_gradient(net, X, y, name, weight_decay, h=1e-6, keep=None): dLoss/d params[name] by central
    differences (of the network thinned by the dropout mask ``keep``, if given)."""
    return _numeric_gradient


# --- hostile input: a tiny built project, and what a clean failure leaves -------------------------------------------
def _artifacts(project: Path) -> dict:
    """{path: bytes} of everything a run writes or records: data/, models/, reports/ and dvc.lock."""
    found = {}
    for folder in ("data", "models", "reports"):
        for path in sorted((project / folder).rglob("*")):
            if path.is_file():
                found[path.relative_to(project).as_posix()] = path.read_bytes()
    if (project / "dvc.lock").exists():
        found["dvc.lock"] = (project / "dvc.lock").read_bytes()
    return found


@pytest.fixture(scope="session")
def tiny_built(tmp_path_factory):
    """(project, tree): a git copy of the project built by `dvc repro` on a tiny photo tree (digits 0, 5 and 3,
    ten photos each, 8 × 8 pixels, classes 0 and 5) given through SIGN_DIGITS_DATA, as the real baseline is, and
    committed, so that every artifact exists. Its params.yaml keeps `ingest.source: upstream`: a command that
    reads the data must pass SIGN_DIGITS_DATA. Tests must not change either: they take ``tiny_copy``."""
    base = tmp_path_factory.mktemp("tiny")
    tree = _make_tree(base / "tree", per_digit=10)
    project = _copy_project(base / "project")
    _set_params(project, ingest={"image_size": 8}, filter={"classes": ["0", "5"]}, train=TINY_TRAIN)
    _git(project, "init", "-q", "-b", "main")
    _git(project, "config", "user.email", "test@example.com")
    _git(project, "config", "user.name", "test")
    _git(project, "add", "-A")
    _git(project, "commit", "-q", "-m", "tiny project")  # as a clone has (DVCLive fails in a repo with no commit)
    _dvc(project, "repro", SIGN_DIGITS_DATA=tree)
    _git(project, "add", "-A")
    _git(project, "commit", "-q", "-m", "tiny baseline")
    return project, tree


@pytest.fixture
def tiny_copy(tiny_built, tmp_path):
    """A private copy of the tiny built project (git history, DVC cache, artifacts) to break freely."""
    copy = tmp_path / "project"
    shutil.copytree(tiny_built[0], copy, symlinks=True)
    return copy


@pytest.fixture
def tiny_tree(tiny_built, tmp_path):
    """A private copy of the tiny project's photo tree, to break and hand over through SIGN_DIGITS_DATA."""
    copy = tmp_path / "tree"
    shutil.copytree(tiny_built[1], copy, symlinks=True)
    return copy


@pytest.fixture(scope="session")
def artifacts():
    """artifacts(project): {path: bytes} of data/, models/, reports/ and dvc.lock."""
    return _artifacts


def _is_dvc(result) -> bool:
    return "dvc" in result.args[:3]


def _one_error_line(result, message):
    """The stderr of a failed command holds exactly one ``error: …`` line, containing ``message``, and no
    traceback. The exit status is 1 (`dvc repro` exits 255 when a stage fails)."""
    assert result.returncode == (255 if _is_dvc(result) else 1), (result.returncode, result.stdout, result.stderr)
    errors = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1 and message in errors[0], result.stderr
    assert "Traceback" not in result.stderr, result.stderr
    return errors[0]


@pytest.fixture(scope="session")
def failed_cleanly():
    """failed_cleanly(result, message, project=None, before=None, changed=()): ``result`` exited with status 1 and
    printed one ``error:`` line holding ``message`` and nothing else (DVC's own ERROR lines aside, for a
    `dvc` run); the project's artifacts are byte for byte ``before``, apart from ``changed``; no temporary file."""

    def failed_cleanly(result, message, project=None, before=None, changed=()):
        line = _one_error_line(result, message)
        if not _is_dvc(result):
            assert result.stderr.strip() == line, result.stderr  # a stage or the CLI: that line alone
        if project is not None:
            after = _artifacts(project)
            kept = {path: content for path, content in before.items() if path not in changed}
            assert {path: after.get(path) for path in kept} == kept, [p for p in kept if after.get(p) != kept[p]]
            leftovers = [p for p in project.rglob("*") if p.name.endswith((".tmp", ".part")) and ".dvc" not in p.parts]
            assert not leftovers, leftovers
        return line

    return failed_cleanly


def _write_split(project: Path, n_train=40, n_test=10, folds=4, size=8, seed=0) -> Path:
    """A hand-made data/split/ in ``project``: two classes of noisy grey levels (class 1 brighter), alternating
    labels, ``folds`` validation folds that each hold both classes (≤ 1: all −1, cross-validation off), and
    meta.json and each row's source (sources_train.npy, sources_test.npy: "Dataset/<digit>/<part>_<i>.png") as the
    split stage writes them; and eight photos of a digit "3", the other hands, six for training (in folds of their
    own) and two for the test (what evaluate's refusal report reads). Returns the split folder."""
    import json

    rng = np.random.default_rng(seed)
    split = project / "data" / "split"
    split.mkdir(parents=True, exist_ok=True)
    for part, n in (("train", n_train), ("test", n_test)):
        y = np.arange(n) % 2
        X = np.clip(rng.normal(0.3 + 0.4 * y[:, None], 0.1, size=(n, size * size)), 0, 1).astype(np.float32)
        np.save(split / f"X_{part}.npy", X)
        np.save(split / f"y_{part}.npy", y)
        np.save(split / f"sources_{part}.npy", np.array([f"Dataset/{'05'[c]}/{part}_{i}.png" for i, c in enumerate(y)]))
    for part, n in (("train", 6), ("test", 2)):
        np.save(split / f"X_others_{part}.npy", rng.uniform(0, 1, size=(n, size * size)).astype(np.float32))
        np.save(split / f"sources_others_{part}.npy", np.array([f"Dataset/3/{part}_{i}.png" for i in range(n)]))
    np.save(split / "folds.npy", (np.arange(n_train) // 2) % folds if folds > 1 else np.full(n_train, -1))
    np.save(split / "folds_others.npy", np.arange(6) % folds if folds > 1 else np.full(6, -1))
    (split / "meta.json").write_text(json.dumps({"classes": ["0", "5"], "image_size": size, "pixel_scale": 255.0}))
    return split


@pytest.fixture(scope="session")
def write_split():
    """write_split(project, n_train=40, n_test=10, folds=4): a hand-made data/split/ with folds.npy."""
    return _write_split


@pytest.fixture(scope="session")
def child_env():
    """child_env(project, **env): the environment stages, dvc and the CLI run with in ``project``."""
    return _child_env


# --- ONNX export: the exported graph against the network ------------------------------------------------------------
PHOTO_NORM_EPSILON = 1e-4  # train.photo_norm: (x − mean) / √(var + ε), as docs/model.md states it


def _our_outputs(net, X):
    """(classes (N,), probabilities (N, K)) from the network, the probabilities as the columns (1 − p, p) for one
    output. The two steps around the network's layers are written out here as docs/model.md states them: each row
    x replaced by (x − mean(x)) / √(var(x) + 1e-4) when ``net.photo_norm`` (then turned off in the network), and
    the probabilities the sigmoid or softmax of the logits divided by ``net.temperature``."""
    from scipy.special import expit, softmax

    photo_norm = net.photo_norm
    X = np.asarray(X, net.dtype)
    if photo_norm:
        X = (X - X.mean(axis=1, keepdims=True)) / np.sqrt(X.var(axis=1, keepdims=True) + PHOTO_NORM_EPSILON)
    net.photo_norm = False
    try:
        classes, Z = net.predict(X), net.logits(X) / net.dtype.type(net.temperature)
    finally:
        net.photo_norm = photo_norm
    if net.binary:
        return classes, np.column_stack([1 - expit(Z[:, 0]), expit(Z[:, 0])])
    return classes, softmax(Z, axis=1)


def _onnx_parity(net, model, X, tolerance=1e-5):
    """Run the exported ``model`` (bytes of an .onnx file) on the rows X (N, side²), reshaped to the graph's
    (N, 1, side, side) pixels, with onnxruntime and with onnx's reference evaluator; assert that both give the
    network's probabilities within ``tolerance`` (max abs) and its predicted classes, and each further output the
    graph has within it too: ``other``, P(other) (refusal.other_probability), and ``energy``, the refusal's energy
    score (refusal.ood_score), relative to its size where that is over 1. {runtime: max difference over every
    output}."""
    import onnx
    import onnxruntime
    from onnx.reference import ReferenceEvaluator

    from signdigits.refusal import ood_score, other_probability

    side = int(np.sqrt(net.n_inputs))
    pixels = np.ascontiguousarray(X, np.float32).reshape(-1, 1, side, side)
    classes, expected = _our_outputs(net, X)
    further = {
        "other": lambda: other_probability(net, X, net.temperature),
        "energy": lambda: ood_score(net, X, "energy", {}, net.temperature),
    }
    session = onnxruntime.InferenceSession(model, providers=["CPUExecutionProvider"])
    names = [output.name for output in session.get_outputs()]
    assert names[0] == "probabilities" and set(names[1:]) <= set(further), names
    outputs = {
        "onnxruntime": session.run(names, {"pixels": pixels}),
        "reference": ReferenceEvaluator(onnx.load_from_string(model)).run(names, {"pixels": pixels}),
    }
    differences = {}
    for runtime, (P, *rest) in outputs.items():
        assert P.shape == expected.shape and P.dtype == np.float32, (runtime, P.shape, P.dtype)
        differences[runtime] = float(np.abs(P - expected).max())
        assert np.array_equal(P.argmax(axis=1), classes), runtime
        for name, values in zip(names[1:], rest):
            assert values.shape == (len(X), 1) and values.dtype == np.float32, (runtime, name, values.shape)
            ours = further[name]()  # an energy may be far from 1: its difference is taken relative to |ours| there
            difference = float((np.abs(values[:, 0] - ours) / np.maximum(1.0, np.abs(ours))).max())
            differences[runtime] = max(differences[runtime], difference)
        assert differences[runtime] <= tolerance, (runtime, differences[runtime])
    return differences


@pytest.fixture(scope="session")
def onnx_parity():
    """onnx_parity(net, model_bytes, X, tolerance=1e-5): the exported graph, run by onnxruntime and by onnx's
    reference evaluator, gives the network's probabilities (within tolerance) and classes, photo_norm and the
    temperature included, and its P(other) and energy outputs if it has them; returns {runtime: max difference}."""
    return _onnx_parity


def _exported_parity(project: Path) -> dict:
    """The run's model ``project``/models/model.npz exported by `signdigits export` and checked by ``onnx_parity``
    on every photo of its test split (issue 23's goal); prints and returns the max abs differences."""
    from signdigits.cli import main
    from signdigits.modelfile import load_model

    model, out = project / "models/model.npz", project / "model.onnx"
    assert main(["export", str(model), str(out)]) == 0
    differences = _onnx_parity(load_model(model), out.read_bytes(), np.load(project / "data/split/X_test.npy"))
    print(f"{model}: max abs difference {differences}, {out.stat().st_size} bytes of ONNX")
    return differences


@pytest.fixture(scope="session")
def exported_parity():
    """exported_parity(project): a built project's model, exported to ONNX, gives its probabilities and classes on
    every test photo (onnxruntime and onnx's reference evaluator); {runtime: max abs difference}."""
    return _exported_parity
