"""What the benchmarks share: the real dataset's split, built in-process from SIGN_DIGITS_DATA."""

import os
import re
import resource
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from functools import lru_cache
from pathlib import Path

import numpy as np
import yaml
from threadpoolctl import threadpool_info

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from signdigits.choices import DIGITS  # noqa: E402
from signdigits.dataset import ingest, resolve_source  # noqa: E402
from signdigits.params import load_params  # noqa: E402
from signdigits.preprocess import normalize, select_classes, shuffled_split, stratified_split  # noqa: E402


def dataset_path() -> str:
    location = os.environ.get("SIGN_DIGITS_DATA")
    if not location:
        sys.exit("set SIGN_DIGITS_DATA to a local copy of the Sign Language Digits Dataset")
    return location


PARAMS = {section: load_params(section, ROOT / "params.yaml") for section in ("ingest", "filter", "split", "train")}


@lru_cache(maxsize=4)
def real_photos(classes: tuple, image_size: int):
    """(X, y) of the real photos of ``classes``, normalized as the pipeline does (ingested once per run)."""
    images, labels, _, _ = ingest(resolve_source(dataset_path()), image_size)
    images, y = select_classes(images, labels, list(classes))
    return normalize(images), y


def real_split(classes=None, seed=None, image_size=None):
    """(X_train, X_test, y_train, y_test) of the real photos, with params.yaml's values unless given."""
    classes = tuple(classes or PARAMS["filter"]["classes"])
    X, y = real_photos(classes, image_size or PARAMS["ingest"]["image_size"])
    seed = PARAMS["split"]["seed"] if seed is None else seed
    return stratified_split(X, y, PARAMS["split"]["test_size"], seed)


def real_other_hands(classes, seed=None, image_size=None):
    """(X_others_train, X_others_test, folds_others): the real photos of the digits outside ``classes``, split as
    stage split splits them (preprocess.shuffled_split), with params.yaml's values unless given."""
    others = tuple(d for d in DIGITS if d not in classes)
    if not others:
        empty = np.zeros((0, (image_size or PARAMS["ingest"]["image_size"]) ** 2), np.float32)
        return empty, empty, np.zeros(0, np.int64)
    X, _ = real_photos(others, image_size or PARAMS["ingest"]["image_size"])
    seed = PARAMS["split"]["seed"] if seed is None else seed
    test, folds = shuffled_split(len(X), PARAMS["split"]["test_size"], PARAMS["split"]["folds"], seed)
    return X[~test], X[test], folds


def timed(function, repeats=3):
    """(result of the last call, median seconds over ``repeats`` calls)."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        result = function()
        times.append(time.perf_counter() - start)
    return result, sorted(times)[len(times) // 2]


def environment(project) -> dict:
    """The environment a command in the copy ``project`` runs in: this Python's venv first on PATH, the copy's
    own signdigits, and the dataset."""
    return dict(
        os.environ,
        PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
        PYTHONPATH=str(project),
        SIGN_DIGITS_DATA=dataset_path(),
    )


def run(project, *command):
    start = time.perf_counter()
    result = subprocess.run(command, cwd=project, env=environment(project), capture_output=True, text=True)
    if result.returncode != 0:
        sys.exit(f"{' '.join(command)} failed:\n{result.stdout}{result.stderr}")
    return time.perf_counter() - start


def blas_kernel() -> str:
    """The BLAS libraries loaded in this process, each with its version and the kernel it chose (threadpoolctl)."""
    blas = [f"{i['internal_api']} {i['version']} ({i.get('architecture')} kernel)" for i in threadpool_info()]
    return ", ".join(i for i in blas if "blas" in i) or "unknown"


def require_commit(commit: str) -> None:
    """Exit with a one-line message unless this repository holds ``commit`` (a shallow clone may not)."""
    found = subprocess.run(["git", "cat-file", "-e", f"{commit}^{{commit}}"], cwd=ROOT, capture_output=True)
    if found.returncode != 0:
        sys.exit(f"commit {commit} is not in this repository (a shallow clone?): git fetch --unshallow, then again")


def copy_of_project(folder: Path, commit: str | None = None) -> Path:
    """The project's tracked files (git ls-files) as they are in the working tree, or the project at ``commit``, as
    a new git repository in ``folder``."""
    if commit is None:
        files = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True).stdout.split()
        for name in files:
            (folder / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, folder / name)
    else:
        require_commit(commit)
        archive = subprocess.run(["git", "archive", commit], cwd=ROOT, capture_output=True, check=True)
        subprocess.run(["tar", "-x", "-C", str(folder)], input=archive.stdout, check=True)
    for command in (
        ["git", "init", "-q"],
        ["git", "add", "-A"],
        ["git", "-c", "user.name=b", "-c", "user.email=b@b", "commit", "-qm", "copy"],
    ):
        subprocess.run(command, cwd=folder, check=True)
    return folder


def emptied(project: Path) -> Path:
    """``project`` with an empty data/ (but its committed files) and an empty DVC cache, as in a fresh clone."""
    shutil.rmtree(project / "data", ignore_errors=True)
    shutil.rmtree(project / ".dvc" / "cache", ignore_errors=True)
    subprocess.run(["git", "checkout", "-q", "--", "data"], cwd=project, check=True)
    return project


def set_learning_rate(project: Path, value: float):
    path = project / "params.yaml"
    lines = [
        f"  learning_rate: {value}" if line.startswith("  learning_rate:") else line
        for line in path.read_text().splitlines()
    ]
    path.write_text("\n".join(lines) + "\n")


STAGE_LINE = re.compile(r"(?:Running stage|Stage) '([\w-]+)'")  # DVC's line as it reaches a stage
LOCK_LINE = re.compile(r"^Updating lock file")  # DVC's line once a stage's command is through


def repro(project: Path, *options) -> dict:
    """One `dvc repro`, in seconds: "total" (wall clock), "cpu" (of DVC and every stage, user + system), and the
    wall clock cut into segments at DVC's lines: each stage's own from "Running stage 'X'" to DVC's next line
    "Updating lock file" (its command, and DVC recording its outputs), "dvc start-up" before DVC's first stage line,
    and "dvc: checks, lock" for the rest of DVC's time (checking each stage's inputs, writing dvc.lock, closing)."""
    command = [sys.executable, "-m", "dvc", "repro", *options]
    cpu_before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    process = subprocess.Popen(
        command, cwd=project, env=environment(project), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    segments, current, since, output = defaultdict(float), "dvc start-up", start, []
    for line in process.stdout:
        output.append(line)
        reached = STAGE_LINE.search(line)
        if reached or LOCK_LINE.search(line):
            now = time.perf_counter()
            segments[current] += now - since
            running = reached and reached[0].startswith("Running")
            current, since = reached[1] if running else "dvc: checks, lock", now
    if process.wait() != 0:
        sys.exit(f"{' '.join(command)} failed:\n{''.join(output)}")
    end = time.perf_counter()
    cpu_after = resource.getrusage(resource.RUSAGE_CHILDREN)
    segments[current] += end - since
    cpu = sum(getattr(cpu_after, f) - getattr(cpu_before, f) for f in ("ru_utime", "ru_stime"))
    return dict(segments) | {"total": end - start, "cpu": cpu}


def readme_command(start: str) -> list[str]:
    """The README's command line that starts with ``start``, split as the shell splits it."""
    for line in (ROOT / "README.md").read_text().splitlines():
        if line.startswith(start):
            return shlex.split(line)
    sys.exit(f"README.md has no line starting with {start!r}")


def readme_configuration(start: str | None) -> dict:
    """params.yaml's sections as the README's line that starts with ``start`` sets them (None: the params as they
    are): its -S overrides (a named configuration, +config=NAME, and key=value) composed by DVC's own Hydra
    composition, as `dvc exp run` composes them (.dvc/config: hydra)."""
    from dvc.utils.hydra import compose_and_dump

    command = readme_command(start) if start else []
    overrides = [value for flag, value in zip(command, command[1:]) if flag == "-S"]
    with tempfile.TemporaryDirectory() as folder:
        composed = Path(folder) / "params.yaml"
        compose_and_dump(composed, str(ROOT), None, "params", str(ROOT), overrides)
        return yaml.safe_load(composed.read_text())
