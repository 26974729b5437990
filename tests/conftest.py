"""Shared fixtures: the project root, tiny photo trees made on the fly, stage runners, and temporary git copies
of the project for end-to-end `dvc repro` runs on the real dataset (SIGN_DIGITS_DATA)."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PROJECT_FILES = ("dvc.yaml", "params.yaml", "pyproject.toml", ".dvcignore", ".gitignore", "stages", "signdigits")


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


def child_env(project: Path, **extra) -> dict:
    """Environment for running stages/dvc in ``project``: this interpreter first on PATH (stage commands
    call `python`), the copy's own package importable, no dataset variable unless given."""
    env = {k: v for k, v in os.environ.items() if k != "SIGN_DIGITS_DATA"}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env["PYTHONPATH"] = str(project)
    env["DVC_NO_ANALYTICS"] = "1"
    env.update({k: str(v) for k, v in extra.items()})
    return env


def run_stage(project: Path, stage: str, **env) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(project / "stages" / f"{stage}.py")],
        cwd=project,
        env=child_env(project, **env),
        capture_output=True,
        text=True,
        timeout=600,
    )


def copy_project(target: Path) -> Path:
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


def git(project: Path, *args) -> str:
    result = subprocess.run(["git", *args], cwd=project, capture_output=True, text=True, check=True)
    return result.stdout


def dvc(project: Path, *args, check=True, **env) -> subprocess.CompletedProcess:
    result = subprocess.run(
        [sys.executable, "-m", "dvc", *args],
        cwd=project,
        env=child_env(project, **env),
        capture_output=True,
        text=True,
        timeout=1200,
    )
    if check and result.returncode != 0:
        raise AssertionError(f"dvc {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}")
    return result


def git_project(target: Path) -> Path:
    """A copy of the project as a fresh git repository with one commit."""
    project = copy_project(target)
    git(project, "init", "-q", "-b", "main")
    git(project, "config", "user.email", "test@example.com")
    git(project, "config", "user.name", "test")
    git(project, "add", "-A")
    git(project, "commit", "-q", "-m", "project")
    return project


def stages_run(output: str) -> list[str]:
    """Names of the stages a `dvc repro` output says it ran."""
    return [line.split("'")[1] for line in output.splitlines() if line.startswith("Running stage '")]


@pytest.fixture(scope="session")
def built_project(tmp_path_factory):
    """A temporary git copy of the project after a full `dvc repro` on the real data, committed."""
    data = real_data_path()
    if data is None:
        pytest.skip("real dataset absent: set SIGN_DIGITS_DATA to a copy of the Sign Language Digits Dataset")
    project = git_project(tmp_path_factory.mktemp("built") / "project")
    result = dvc(project, "repro", SIGN_DIGITS_DATA=data)
    git(project, "add", "-A")
    git(project, "commit", "-q", "-m", "baseline run")
    return project, result


@pytest.fixture
def built_copy(built_project, tmp_path):
    """A private copy of the built project (with its git history, DVC cache and data) to change freely."""
    project, _ = built_project
    copy = tmp_path / "project"
    shutil.copytree(project, copy, symlinks=True)
    return copy
