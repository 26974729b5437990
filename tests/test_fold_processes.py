"""fold_processes: networks trained in processes of their own against the plain path (Network.fit in this process),
bit for bit; each epoch's rows passed on in order; a failure in one worker (training that diverged, a process that
died, the caller's own on_epoch) raised in the caller, the others told to stop."""

import multiprocessing
import os
import signal

import numpy as np
import pytest
from threadpoolctl import threadpool_limits

from signdigits import fold_processes
from signdigits.network import Network, TrainingDiverged
from signdigits.params import load_params
from signdigits.training import build_model, training_config


def _jobs(params, n_jobs=2, rows=24, side=8):
    rng = np.random.default_rng(5)
    jobs = []
    for number in range(n_jobs):
        y = np.arange(rows) % 2
        X = np.clip(rng.normal(0.4 + 0.2 * y[:, None], 0.15, size=(rows, side * side)), 0, 1).astype(np.float32)
        validation = (X[: rows // 4] * 0.9, y[: rows // 4])
        jobs.append({"params": params, "n_classes": 2, "X": X, "y": y, "validation": validation, "others": None})
        params = params | {"seed": params["seed"] + 1 + number}  # and the next job another network
    return jobs


@pytest.fixture
def small_params(root):
    return load_params("train", root / "params.yaml") | {"epochs": 3, "hidden_units": 8}


@pytest.mark.parametrize("model", ["mlp", "cnn"])
def test_each_network_is_the_plain_fit_bit_for_bit_and_each_epochs_rows_come_in_order(small_params, model):
    params = small_params | {"model": model, "conv_channels": [4], "kernel_size": 3}
    jobs = _jobs(params)
    epochs = []
    nets = fold_processes.train_folds(jobs, epochs.append)
    assert [[row["epoch"] for row in rows] for rows in epochs] == [[1, 1], [2, 2], [3, 3]]
    for number, (job, net) in enumerate(zip(jobs, nets)):
        alone = build_model(job["params"], 64, 2)
        with threadpool_limits(limits=1, user_api="blas"):  # as each worker trains
            history = alone.fit(job["X"], job["y"], training_config(job["params"]), validation=job["validation"])
        assert [rows[number] for rows in epochs] == history  # every figure of every epoch, exactly
        assert alone.params.keys() == net.params.keys() and alone.running.keys() == net.running.keys()
        for name in alone.params:
            np.testing.assert_array_equal(alone.params[name], net.params[name])
        for name in alone.running:
            np.testing.assert_array_equal(alone.running[name], net.running[name])
    assert multiprocessing.active_children() == []  # the workers are gone


def _long_and_other(params, other: dict):
    """Two jobs: the first trains for 100,000 epochs (it would take hours), the second has params ``other``."""
    jobs = _jobs(params | {"epochs": 100_000})
    jobs[1]["params"] = params | {"epochs": 3} | other
    return jobs


def test_training_that_diverges_in_one_process_is_raised_and_the_others_are_ended(small_params):
    jobs = _long_and_other(small_params, {"learning_rate": 1e6, "optimizer": "sgd", "seed": 9})
    epochs = []
    with pytest.raises(TrainingDiverged, match="training diverged at epoch 1"):
        fold_processes.train_folds(jobs, epochs.append)
    assert epochs == []  # no epoch that every job trained
    assert multiprocessing.active_children() == []  # the long one was ended, not waited for


def test_a_process_killed_mid_training_is_raised_and_the_others_are_ended(small_params, monkeypatch):
    real_training = Network.training

    def killed_if_seed_9(net, *args):  # the processes are forked from this one, so they inherit the patch
        if net.seed == 9:
            os.kill(os.getpid(), signal.SIGKILL)  # as the out-of-memory killer would
        return real_training(net, *args)

    monkeypatch.setattr(Network, "training", killed_if_seed_9)
    with pytest.raises(fold_processes.FoldProcessDied, match="fold 1 ended \\(killed by SIGKILL\\)"):
        fold_processes.train_folds(_long_and_other(small_params, {"seed": 9}), lambda rows: None)
    assert multiprocessing.active_children() == []


def test_an_error_in_a_process_keeps_its_traceback_as_a_note(small_params, monkeypatch):
    real_training = Network.training

    def broken_if_seed_9(net, *args):
        if net.seed == 9:
            raise ValueError("a bug in the training")
        return real_training(net, *args)

    monkeypatch.setattr(Network, "training", broken_if_seed_9)
    with pytest.raises(ValueError, match="a bug in the training") as raised:
        fold_processes.train_folds(_long_and_other(small_params, {"seed": 9}), lambda rows: None)
    (note,) = raised.value.__notes__
    assert note.startswith("in the process training fold 1:\nTraceback") and "in broken_if_seed_9" in note
    assert multiprocessing.active_children() == []


def test_rows_come_live_and_an_error_in_on_epoch_ends_the_processes(small_params):
    def on_epoch(rows):  # at the first epoch of a job that trains for hours: rows must come as epochs end
        raise RuntimeError("the history could not be logged")

    with pytest.raises(RuntimeError, match="could not be logged"):
        fold_processes.train_folds(_long_and_other(small_params, {}), on_epoch)
    assert multiprocessing.active_children() == []


def test_more_jobs_than_processes_at_once_give_the_same_networks_and_rows(small_params, monkeypatch):
    jobs = _jobs(small_params, n_jobs=3)
    together_rows = []
    together = fold_processes.train_folds(jobs, together_rows.append)
    monkeypatch.setattr(fold_processes, "PROCESSES_PER_CORE", 1)
    monkeypatch.setattr(fold_processes.os, "sched_getaffinity", lambda pid: {0})  # one at a time
    in_turn_rows = []
    in_turn = fold_processes.train_folds(jobs, in_turn_rows.append)
    assert in_turn_rows == together_rows and len(in_turn_rows) == 3
    for a, b in zip(together, in_turn):
        for name in a.params:
            np.testing.assert_array_equal(a.params[name], b.params[name])


class _Pipe(list):
    """What ``_train`` sends, kept in this process (a fold's process sends it on a pipe to its caller)."""

    send = list.append


def test_a_process_whose_caller_died_stops_after_its_current_epoch(small_params, monkeypatch):
    callers = iter([1, 1, 1])  # the caller's pid at the start and after epochs 1 and 2; then the process was adopted
    monkeypatch.setattr(fold_processes.os, "getppid", lambda: next(callers, 4242))
    monkeypatch.setattr(fold_processes.signal, "signal", lambda *args: None)  # leave pytest's handlers alone
    pipe = _Pipe()
    fold_processes._train(7, _jobs(small_params | {"epochs": 50}, n_jobs=1)[0], pipe)
    assert [kind for kind, _ in pipe] == ["row", "row"]  # and no network: it stopped at epoch 3
