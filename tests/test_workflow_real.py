"""The user's loop on the real data, as the README tells it: repro, edit a param, repro, diff, plots,
experiments. Runs in a temporary git copy whose last commit holds a default run (the baseline)."""

import json

import pytest


def test_edit_rerun_and_diff(built_copy, real_data, dvc, stages_run, set_params):
    project = built_copy
    set_params(project, train={"learning_rate": 0.05})
    result = dvc(project, "repro", SIGN_DIGITS_DATA=real_data)
    assert stages_run(result.stdout) == ["source", "crossval", "audit", "train", "evaluate"]  # not the data stages

    params_diff = dvc(project, "params", "diff", "--json").stdout
    change = json.loads(params_diff)["params.yaml"]["train.learning_rate"]
    assert (change["old"], change["new"]) == (0.01, 0.05)

    metrics_diff = json.loads(dvc(project, "metrics", "diff", "--json").stdout)["reports/metrics.json"]
    loss = metrics_diff["test_loss"]
    assert loss["old"] != loss["new"] and loss["diff"] == pytest.approx(loss["new"] - loss["old"], abs=1e-9)
    assert "baseline_test_accuracy" not in metrics_diff  # unchanged, so not listed

    text = dvc(project, "metrics", "diff").stdout
    assert "test_loss" in text and "HEAD" in text and "workspace" in text

    out = project / "plots_diff"
    dvc(project, "plots", "diff", "-o", str(out))
    page = (out / "index.html").read_text()
    assert "Loss per epoch" in page and "Confusion matrix" in page and "loss_curve.png" in page
    assert all(f'"{title}"' in page for title in ("cross-entropy loss", "predicted digit", "true digit"))
    shown = project / "plots_show"
    dvc(project, "plots", "show", "-o", str(shown))
    assert (shown / "index.html").stat().st_size > 1000


def changed_lines(git, project, path):
    """The lines `git diff` shows removed or added in ``path``."""
    diff = git(project, "diff", "--unified=0", "--", path).splitlines()
    return [line for line in diff if line[:1] in "+-" and line[:3] not in ("+++", "---")]


def test_experiment_run_and_show(built_copy, real_data, dvc, git):
    project = built_copy
    dvc(project, "exp", "run", "-n", "lr-high", "-S", "train.learning_rate=0.1", SIGN_DIGITS_DATA=real_data)
    # DVC rewrote params.yaml with the new value; the layout makes that the only line it changed
    assert changed_lines(git, project, "params.yaml") == ["-  learning_rate: 0.01", "+  learning_rate: 0.1"]
    table = json.loads(dvc(project, "exp", "show", "--json").stdout)
    experiments = [exp for commit in table for exp in (commit.get("experiments") or [])]
    names = [exp.get("name") for exp in experiments]
    assert "lr-high" in names
    run = next(exp for exp in experiments if exp.get("name") == "lr-high")["revs"][0]["data"]
    assert run["params"]["params.yaml"]["data"]["train"]["learning_rate"] == 0.1
    assert "test_loss" in run["metrics"]["reports/metrics.json"]["data"]
    assert "lr-high" in dvc(project, "exp", "show", "--no-pager", "--csv").stdout
