"""How long the edit → rerun → diff loop takes, and where the time goes, in a temporary git copy of the project on
the real data.

    SIGN_DIGITS_DATA=/path/to/dataset python benchmarks/pipeline_speed.py [--repeats 5]

Measures, each as the median of several runs, with the default params (cross-validation on, 5 folds): a full
`dvc repro` from an empty data/ and an empty DVC cache (as in a fresh clone: the stages whose outputs are all
committed, e.g. crossval, are checked, not rerun), a no-op `dvc repro`, and a `dvc repro` after editing
train.learning_rate (crossval, audit, train and evaluate rerun), each with its CPU time (user + system, DVC and
every stage). Each run's wall clock is cut at the lines DVC prints: a stage's own segment runs from "Running stage
'X'" to DVC's next line (its command, and DVC recording its outputs); "dvc start-up" is the time before DVC's first
stage line, and "dvc: checks, lock" the rest of DVC's time (checking each stage's inputs, writing dvc.lock).

For each stage an edit reruns, its command is also timed alone (outside DVC) under `python -X importtime`, which
tells how much of it went to importing modules (the interpreter's own, the script's, and those made later inside
functions); the rest is the stage's own work. References in the same run: the interpreter's start-up, DVC's floor
(`dvc status` on the up-to-date pipeline), and DVCLive in the project (its import; and import, `Live(...)` as
stage crossval opens it, and one logged step per epoch of train.epochs).

Goals (issue 20): a train.learning_rate edit reruns in ≤ 6 s, a no-op in ≤ 1.5 s, on 2 cores with 5-fold
cross-validation; a full run ≤ 7 s (issue 10). The load average is printed before and after: the machine is shared.

OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE, where set, are unset for this command and the pipeline it runs (never in
tests or CI), so that OpenBLAS picks this CPU's kernel; the kernel the stages load is printed.
"""

import os
import sys

BLAS_VARIABLES = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")
for _name in BLAS_VARIABLES:  # before NumPy loads OpenBLAS here, and for every command this script starts
    if _name in os.environ:
        print(f"unsetting {_name}={os.environ.pop(_name)} for this benchmark", flush=True)

import argparse  # noqa: E402
import statistics  # noqa: E402
import subprocess  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

from common import PARAMS, copy_of_project, emptied, environment, repro, run, set_learning_rate  # noqa: E402

TARGETS = {
    "train.learning_rate edit, dvc repro": 6.0,
    "no-op dvc repro": 1.5,
    "full dvc repro (empty data/ and cache)": 7.0,
}
RERUN = ("source", "crossval", "audit", "train", "evaluate")  # what a train.learning_rate edit reruns
DVCLIVE = (
    "from signdigits.history import log_epoch, open_log\n"
    "with open_log('reports/speed_live') as live:\n"
    "    for epoch in range({epochs}):\n"
    "        log_epoch(live, {{'epoch': epoch + 1, 'train_loss': 0.5, 'val_loss': 0.5}})"
)


def blas_kernels() -> str:
    import scipy.linalg  # noqa: F401  (SciPy's OpenBLAS beside NumPy's, as in the stages)
    from threadpoolctl import threadpool_info

    blas = [i for i in threadpool_info() if i["user_api"] == "blas"]
    return "; ".join(f"{i['internal_api']} {i['version']} ({i.get('architecture')} kernel)" for i in blas)


def medians(runs: list[dict]) -> dict:
    """Each segment's median over the runs, DVC's own time between the stages last."""
    names = sorted(dict.fromkeys(name for run in runs for name in run), key=lambda name: name == "dvc: checks, lock")
    return {name: statistics.median(run.get(name, 0.0) for run in runs) for name in names}


def show(name: str, runs: list[dict], alone: dict | None = None, imports: dict | None = None):
    typical = medians(runs)
    target = TARGETS[name]
    each = ", ".join(f"{run['total']:.2f}" for run in runs)
    print(
        f"\n{name}: median {typical['total']:.2f} s of {len(runs)} runs (goal ≤ {target:.1f} s, ratio "
        f"{typical['total'] / target:.2f}); each run {each}; CPU time {typical['cpu']:.2f} s"
    )
    header = f"  {'segment (median s)':24}{'in repro':>9}"
    if alone:
        header += f"{'alone':>8}{'importing':>11}{'own work':>10}"
    print(header)
    for segment, seconds in typical.items():
        if segment in ("total", "cpu"):
            continue
        line = f"  {segment:24}{seconds:9.2f}"
        if alone and segment in alone:
            line += f"{alone[segment]:8.2f}{imports[segment]:11.2f}{alone[segment] - imports[segment]:10.2f}"
        print(line)


def stage_alone(project: Path, name: str) -> tuple[float, float]:
    """(seconds, of which importing) of `python -X importtime stages/<name>.py`: the importing is the sum of the
    cumulative times of the outermost imports it logs (nested ones are inside their parent's)."""
    start = time.perf_counter()
    command = [sys.executable, "-X", "importtime", f"stages/{name}.py"]
    result = subprocess.run(command, cwd=project, env=environment(project), capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if result.returncode != 0:
        sys.exit(f"{' '.join(command)} failed:\n{result.stderr}")
    outermost = [line.split("|") for line in result.stderr.splitlines() if line.startswith("import time:")]
    importing = sum(int(cells[1]) for cells in outermost[1:] if not cells[2].startswith("  "))  # [0]: the header
    return seconds, importing / 1e6


def median_of(repeats: int, project: Path, *command) -> float:
    return statistics.median(run(project, *command) for _ in range(repeats))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5, help="runs of each measurement (default 5; full: 2)")
    repeats = parser.parse_args().repeats
    python = sys.executable
    print(f"load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())}; {os.cpu_count()} cores")
    print(f"BLAS the stages load (threadpoolctl, in this process's environment): {blas_kernels()}")
    with tempfile.TemporaryDirectory() as folder:
        project = copy_of_project(Path(folder))
        full = []
        for _ in range(2):
            full.append(repro(emptied(project), "--no-run-cache"))
        noop = [repro(project) for _ in range(repeats)]
        edit = []
        for run_number in range(repeats):
            set_learning_rate(project, round(0.0005 * (3 + run_number), 4))  # 0.002, 0.0025, …: Adam's scale
            edit.append(repro(project))
        timings = {name: [stage_alone(project, name) for _ in range(3)] for name in RERUN}
        alone = {name: statistics.median(seconds for seconds, _ in runs) for name, runs in timings.items()}
        imports = {name: statistics.median(importing for _, importing in runs) for name, runs in timings.items()}
        floor = median_of(3, project, python, "-m", "dvc", "status")
        bare = median_of(3, project, python, "-c", "pass")
        live = median_of(3, project, python, "-c", DVCLIVE.format(epochs=PARAMS["train"]["epochs"]))
        live_import = median_of(3, project, python, "-c", "import signdigits.history, dvclive")
    show("train.learning_rate edit, dvc repro", edit, alone, imports)
    show("no-op dvc repro", noop)
    show("full dvc repro (empty data/ and cache)", full)
    print("\nreferences (median s)")
    print(f"  {'python -c pass (interpreter start-up)':48}{bare:6.2f}")
    print(f"  {'dvc status (DVC start-up floor)':48}{floor:6.2f}")
    print(f"  {'DVCLive import (in a stage, beyond start-up)':48}{live_import - bare:6.2f}")
    print(f"  {'DVCLive: import, Live(...), ' + str(PARAMS['train']['epochs']) + ' steps logged':48}{live - bare:6.2f}")
    print(f"load average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
