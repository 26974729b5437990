"""Cross-validation's networks trained in processes of their own, side by side: a speed-up, not a second method.

Each fold's network is what the plain path makes, ``Network.training`` in the calling process with one BLAS thread
(tests/test_fold_processes.py checks the two agree bit for bit), but the k trainings run on every core at once. Threads
could not do that: the augmentation's many small NumPy and SciPy calls hold the GIL, so two threads trained the
default's five folds only about a fifth faster than one (docs/benchmarks.md, "The folds in processes"). The processes
start together (up to PROCESSES_PER_CORE per core) and the system shares the cores between them, so that every fold
reaches epoch e at about the same time: each epoch's rows reach the caller as soon as every fold has trained that epoch,
and the live history (DVCLive) and the progress bar go on as before.

How: one ``multiprocessing`` process per fold, forked from the caller (the ``fork`` start method: it starts with the
caller's imports and the fold's rows, where ``spawn`` and ``forkserver`` would import the training code again, send the
rows over a pipe and run the calling script's module once more in each). It trains with one BLAS thread: the processes
keep the cores busy, and a fold's network then does not depend on how many cores the machine has (BLAS on more threads
may sum its products in another order). It sends every epoch's history row on a pipe of its own, then the trained
network (or its error), and ends; a pipe that ends before the network came is a process that died. The caller alone
answers Ctrl-C and SIGTERM: if anything fails (a fold's training diverged, a process died, the caller's own
``on_epoch``, a signal), it ends every process still training before the error goes on; and a process whose caller died
without that stops after its current epoch.
"""

import multiprocessing
import multiprocessing.connection
import os
import signal
import traceback

from threadpoolctl import threadpool_limits

from signdigits.training import build_model, training_config

PROCESSES_PER_CORE = 4  # at once: the usual 5–10 folds together on two cores, not 100 folds' memory at once


class FoldProcessDied(RuntimeError):
    """A fold's process ended without sending its network: killed (the OOM killer, a `kill -9`) or crashed."""


def train_folds(jobs: list[dict], on_epoch) -> list:
    """Train one network per job, each in a process of its own. A job is a dict: ``params`` (the ``train`` params),
    ``n_classes``, ``X``, ``y`` (the rows it trains on), ``validation`` ((X_val, y_val)) and ``others`` (the other
    hands it learns as "other", or None), as ``Network.training`` takes them. ``on_epoch(rows)`` receives each
    epoch's history rows, one per job in the jobs' order, as soon as every job has trained that epoch. Returns the
    trained networks in the jobs' order."""
    context = multiprocessing.get_context("fork")
    limit = PROCESSES_PER_CORE * (len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else 1)
    waiting, running, readers = list(range(len(jobs))), {}, {}
    nets, received, shown = [None] * len(jobs), [[] for _ in jobs], 0
    try:
        while waiting or running:
            while waiting and len(running) < limit:
                number = waiting.pop(0)
                reader, writer = context.Pipe(duplex=False)
                running[number] = context.Process(
                    target=_train, args=(number, jobs[number], writer), name=f"fold {number}", daemon=True
                )
                running[number].start()
                writer.close()  # the process holds the only write end: when it ends, its pipe ends here
                readers[reader] = number
            for reader in multiprocessing.connection.wait(list(readers)):
                number = readers[reader]
                try:
                    kind, content = reader.recv()
                except EOFError:  # the process has ended, and everything it sent was read
                    del readers[reader]
                    process = running.pop(number)
                    process.join()
                    if nets[number] is None:
                        raise FoldProcessDied(_death(number, process.exitcode)) from None
                    continue
                if kind == "error":
                    raise content
                if kind == "network":
                    nets[number] = content
                    continue
                received[number].append(content)
                while all(len(rows) > shown for rows in received):
                    on_epoch([rows[shown] for rows in received])
                    shown += 1
        return nets
    finally:  # after an error or a signal: the folds still training are of no use
        for process in running.values():
            process.kill()
        for process in running.values():
            process.join()
        for reader in readers:
            reader.close()


def _death(number, code) -> str:
    how = f"killed by {signal.Signals(-code).name}" if code < 0 else f"exit code {code}"
    return (
        f"the process training fold {number} ended ({how}) without sending its network; the out-of-memory killer "
        "sends SIGKILL (fewer split.folds train fewer folds at once)"
    )


def _train(number, job, pipe):
    """In a fold's process: job ``number`` trained epoch by epoch, each epoch's ("row", row) sent on ``pipe``, then
    ("network", the network), or ("error", the exception with its traceback as a note) if the training failed."""
    # A terminal's Ctrl-C, or a SIGTERM to the process group, reaches every process: the caller alone answers it,
    # and ends this one with SIGKILL (it holds nothing to clean up).
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    caller = os.getppid()
    try:
        others = job["others"]
        net = build_model(job["params"], job["X"].shape[1], job["n_classes"], other_output=others is not None)
        with threadpool_limits(limits=1, user_api="blas"):
            for row in net.training(job["X"], job["y"], training_config(job["params"]), job["validation"], others):
                if os.getppid() != caller:  # the caller died without ending this process: no one is listening
                    return
                pipe.send(("row", row))
        pipe.send(("network", net))
    except Exception as error:
        error.add_note(f"in the process training fold {number}:\n{traceback.format_exc()}")
        pipe.send(("error", error))
