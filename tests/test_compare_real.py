"""`signdigits compare A B` on real experiments: paired out-of-fold predictions, read by experiment name."""

import subprocess
import sys

import numpy as np
import pytest
from scipy.stats import binomtest

from signdigits.compare import verdict


@pytest.fixture
def compare(child_env):
    """compare(project, A, B): `signdigits compare A B` run in ``project``."""
    return lambda project, *runs: subprocess.run(
        [sys.executable, "-m", "signdigits", "compare", *runs],
        cwd=project,
        env=child_env(project),
        capture_output=True,
        text=True,
    )


def out_of_fold(project):
    rows = [line.split(",") for line in (project / "reports/crossval_predictions.csv").read_text().splitlines()[1:]]
    return np.array([r[2] for r in rows]), np.array([r[3] for r in rows])


def test_compare_two_experiments_and_refuse_other_splits(built_copy, real_data, dvc, compare):
    project = built_copy
    dvc(project, "exp", "run", "-n", "fast", "-S", "train.learning_rate=0.01", SIGN_DIGITS_DATA=real_data)
    true, fast = out_of_fold(project)
    dvc(project, "exp", "run", "-n", "small", "-S", "train.hidden_units=4", SIGN_DIGITS_DATA=real_data)
    _, small = out_of_fold(project)
    result = compare(project, "fast", "small")
    assert result.returncode == 0, result.stderr
    b, c = int(np.sum((fast == true) & (small != true))), int(np.sum((fast != true) & (small == true)))
    lines = result.stdout.splitlines()
    assert lines[0] == "out-of-fold predictions of the same 329 training photos:"
    assert f"accuracy {np.mean(fast == true):.4f}" in lines[1] and f"accuracy {np.mean(small == true):.4f}" in lines[2]
    assert lines[3] == f"  right in fast only: {b}, right in small only: {c}"
    p = binomtest(b, b + c).pvalue if b + c else 1.0
    assert lines[4].startswith(f"  exact McNemar p = {p:.4g} ")
    assert lines[5:] == [verdict("fast", "small", {"a_right_b_wrong": b, "b_right_a_wrong": c, "p": p})]
    assert compare(project, "HEAD", "workspace").returncode == 0  # a git revision, and the workspace (= small)

    dvc(project, "exp", "run", "-n", "other-split", "-S", "split.seed=7", SIGN_DIGITS_DATA=real_data)
    refused = compare(project, "fast", "other-split")
    assert refused.returncode == 1 and refused.stdout == ""
    assert refused.stderr.count("\n") == 1
    assert refused.stderr.startswith("error: 'fast' and 'other-split' were cross-validated on different photos")
    unknown = compare(project, "fast", "no-such-run")
    assert unknown.returncode == 1 and "cannot read reports/crossval_predictions.csv of 'no-such-run'" in unknown.stderr
