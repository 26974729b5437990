"""Cross-validation's networks trained in processes of their own, all at once: a speed-up, not a second method.

Each fold's network is what the plain path makes, ``Network.training`` in the calling process with one BLAS thread
(tests/test_fold_processes.py checks the two agree bit for bit), but the k trainings run side by side on every core.
Threads could not do that: the augmentation's many small NumPy and SciPy calls hold the GIL, so two threads trained
the default's five folds only about a fifth faster than one (docs/benchmarks.md, "The pipeline: edit, rerun"). All k
processes start at once and the system shares the cores between them, so that every fold reaches epoch e at about
the same time: each epoch's rows reach the caller as soon as every fold has trained that epoch, and the live history
(DVCLive) and the progress bar go on as before.

How: a pool of k workers forked from the caller (concurrent.futures with the ``fork`` start method: a worker starts
with the caller's imports and data in a few milliseconds, where ``spawn`` and ``forkserver`` would import the
training code again and run the calling script's module once more in each). Each worker trains its fold with one
BLAS thread: the k processes keep the cores busy, and a fold's network then does not depend on how many cores the
machine has (BLAS on more threads may sum its products in another order). It sends every epoch's history row back
on a queue, then returns the trained network (concurrent.futures carries it back). A failure in any fold (training
that diverged, a process that died) stops the others after their current epoch and is raised in the caller.
"""

import multiprocessing
import queue
from concurrent.futures import ProcessPoolExecutor

from threadpoolctl import threadpool_limits

from signdigits.training import build_model, training_config

POLL_SECONDS = 1.0  # how often the caller, waiting for a row, checks that no worker died without a word

_rows = _stop = None  # in a worker: the queue its rows go back on and the event that tells it to stop


def train_folds(jobs: list[dict], on_epoch) -> list:
    """Train one network per job, each in a process of its own, all at once. A job is a dict: ``params`` (the
    ``train`` params), ``n_classes``, ``X``, ``y`` (the rows it trains on), ``validation`` ((X_val, y_val)) and
    ``others`` (the other hands it learns as "other", or None), as ``Network.training`` takes them.
    ``on_epoch(rows)`` receives each epoch's history rows, one per job in the jobs' order, as soon as every job has
    trained that epoch. Returns the trained networks in the jobs' order."""
    context = multiprocessing.get_context("fork")
    rows, stop = context.Queue(), context.Event()
    received, shown, running = [[] for _ in jobs], 0, len(jobs)
    with ProcessPoolExecutor(len(jobs), mp_context=context, initializer=_listen, initargs=(rows, stop)) as pool:
        futures = [pool.submit(_train, number, job) for number, job in enumerate(jobs)]
        try:
            while running:
                number, row = _next_row(rows, futures)
                if row is None:  # that job's training is over: its network, or its error, is in its future
                    running -= 1
                    if futures[number].exception() is not None:
                        raise futures[number].exception()
                    continue
                received[number].append(row)
                while all(len(job_rows) > shown for job_rows in received):
                    on_epoch([job_rows[shown] for job_rows in received])
                    shown += 1
            return [future.result() for future in futures]
        except BaseException:  # a fold failed, on_epoch failed, Ctrl-C, SIGTERM: the others stop after this epoch
            stop.set()
            raise


def _next_row(rows, futures):
    """The next (job number, history row or None) from the workers; raises the error of a worker that stopped
    without sending its None (a process killed: concurrent.futures.process.BrokenProcessPool)."""
    while True:
        try:
            return rows.get(timeout=POLL_SECONDS)
        except queue.Empty:
            for future in futures:
                if future.done() and future.exception() is not None:
                    raise future.exception() from None


def _listen(rows, stop):
    """The pool's initializer: keep the queue and the stop event, which a worker inherits rather than receives.
    A worker's rows matter only while the caller reads them: if the caller stopped reading (it failed), the worker
    exits without waiting for its last rows to reach it."""
    global _rows, _stop
    _rows, _stop = rows, stop
    rows.cancel_join_thread()


def _train(number, job):
    """In a worker: job ``number`` trained epoch by epoch, each epoch's row sent back, None when it ends (however it
    ends); returns the network (or None if told to stop)."""
    others = job["others"]
    net = build_model(job["params"], job["X"].shape[1], job["n_classes"], other_output=others is not None)
    config = training_config(job["params"])
    try:
        with threadpool_limits(limits=1, user_api="blas"):
            for row in net.training(job["X"], job["y"], config, job["validation"], others):
                _rows.put((number, row))
                if _stop.is_set():
                    return None
    finally:
        _rows.put((number, None))
    return net
