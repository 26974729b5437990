"""How long the edit → rerun → diff loop takes, in a temporary git copy of the project on the real data.

    SIGN_DIGITS_DATA=/path/to/dataset python benchmarks/pipeline_speed.py

Measures, each as the median of several runs, with the default params (cross-validation on, 5 folds): a full
`dvc repro` from an empty data/ and an empty DVC cache, a no-op `dvc repro`, and a `dvc repro` after editing
train.learning_rate (crossval, train and evaluate rerun); and, as references in the same run, DVC's own floor
(`dvc status` on the up-to-date pipeline), the start-up of a stage's imports, and DVCLive's start-up in the
project (import, then `Live(...)` as stage crossval opens it). Targets (issue 10): full ≤ 7 s, learning-rate
edit ≤ 3.5 s, no-op ≤ 1 s.
"""

import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from common import copy_of_project, run

TARGETS = {
    "full dvc repro (empty data/ and cache)": 7.0,
    "train.learning_rate edit, dvc repro": 3.5,
    "no-op dvc repro": 1.0,
}
DVCLIVE = "import numpy\nfrom signdigits.history import open_log\nwith open_log('reports/speed_live'):\n    pass"
STAGES = ("crossval", "train", "evaluate")  # what a train.learning_rate edit reruns


def set_learning_rate(project: Path, value: float):
    path = project / "params.yaml"
    lines = [
        f"  learning_rate: {value}" if line.startswith("  learning_rate:") else line
        for line in path.read_text().splitlines()
    ]
    path.write_text("\n".join(lines) + "\n")


def main():
    dvc = [sys.executable, "-m", "dvc"]
    times = {name: [] for name in TARGETS}
    with tempfile.TemporaryDirectory() as folder:
        project = copy_of_project(Path(folder))
        for _ in range(2):
            shutil.rmtree(project / "data", ignore_errors=True)
            shutil.rmtree(project / ".dvc" / "cache", ignore_errors=True)
            subprocess.run(["git", "checkout", "-q", "--", "data"], cwd=project, check=True)
            times["full dvc repro (empty data/ and cache)"].append(run(project, *dvc, "repro", "--no-run-cache"))
        for _ in range(3):
            times["no-op dvc repro"].append(run(project, *dvc, "repro"))
        for value in (0.02, 0.03, 0.04):
            set_learning_rate(project, value)
            times["train.learning_rate edit, dvc repro"].append(run(project, *dvc, "repro"))
        floor = statistics.median(run(project, *dvc, "status") for _ in range(3))
        imports = statistics.median(
            run(project, sys.executable, "-c", "import numpy, sklearn.metrics, matplotlib.pyplot") for _ in range(3)
        )
        python = statistics.median(run(project, sys.executable, "-c", "import numpy") for _ in range(3))
        live = statistics.median(run(project, sys.executable, "-c", DVCLIVE) for _ in range(3))
        stages = {name: [run(project, sys.executable, f"stages/{name}.py") for _ in range(3)] for name in STAGES}
    print(f"{'':42}{'median s':>9}{'target s':>9}{'ratio':>7}")
    for name, target in TARGETS.items():
        median = statistics.median(times[name])
        print(f"{name:42}{median:9.2f}{target:9.1f}{median / target:7.2f}")
    print(f"{'reference: dvc status (DVC start-up floor)':42}{floor:9.2f}")
    print(f"{'reference: import numpy, sklearn, mpl':42}{imports:9.2f}")
    print(f"{'reference: DVCLive start-up (import + Live)':42}{live - python:9.2f}")
    for name, seconds in stages.items():
        print(f"{f'reference: stage {name} alone':42}{statistics.median(seconds):9.2f}")


if __name__ == "__main__":
    main()
