"""fold_processes: networks trained in processes of their own against the plain path (Network.fit in this process),
bit for bit; each epoch's rows passed on in order; a failure in one worker (training that diverged, a process that
died, the caller's own on_epoch) raised in the caller, the others told to stop."""

import multiprocessing
import os
import queue
import signal
import threading
from concurrent.futures.process import BrokenProcessPool

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


def test_training_that_diverges_in_one_worker_is_raised_in_the_caller(small_params):
    jobs = _jobs(small_params | {"epochs": 400})
    jobs[1]["params"] = jobs[1]["params"] | {"learning_rate": 1e6, "optimizer": "sgd"}
    epochs = []
    with pytest.raises(TrainingDiverged, match="training diverged at epoch"):
        fold_processes.train_folds(jobs, epochs.append)
    assert len(epochs) < 400  # the other worker was stopped, and no epoch was passed on after the failure
    assert multiprocessing.active_children() == []


def test_a_worker_killed_mid_training_is_raised_in_the_caller_not_waited_for(small_params, monkeypatch):
    # the workers are forked from this process, so they inherit the patch: each kills itself as the OOM killer would
    monkeypatch.setattr(Network, "training", lambda *args: os.kill(os.getpid(), signal.SIGKILL))
    with pytest.raises(BrokenProcessPool):
        fold_processes.train_folds(_jobs(small_params), lambda rows: None)
    assert multiprocessing.active_children() == []


def test_an_error_in_on_epoch_stops_the_workers_and_is_raised(small_params):
    def on_epoch(rows):
        raise RuntimeError("the history could not be logged")

    with pytest.raises(RuntimeError, match="could not be logged"):
        fold_processes.train_folds(_jobs(small_params | {"epochs": 400}), on_epoch)
    assert multiprocessing.active_children() == []


def test_a_worker_told_to_stop_ends_after_its_current_epoch_and_says_so(small_params, monkeypatch):
    rows, stop = queue.Queue(), threading.Event()
    monkeypatch.setattr(fold_processes, "_rows", rows)
    monkeypatch.setattr(fold_processes, "_stop", stop)
    stop.set()
    assert fold_processes._train(7, _jobs(small_params | {"epochs": 50}, n_jobs=1)[0]) is None
    sent = [rows.get_nowait() for _ in range(rows.qsize())]
    assert [(number, row if row is None else row["epoch"]) for number, row in sent] == [(7, 1), (7, None)]
