"""The per-epoch history of cross-validation, logged with DVCLive the way DVC's example projects do.

``reports/history/`` is a DVCLive folder: ``plots/metrics/<name>.tsv`` holds one row per epoch (columns step and
<name>; the step is the epoch, from 1), which `dvc plots` draws (also while a run goes on), and ``metrics.json``
the last epoch's values, which DVCLive always writes but dvc.yaml does not declare: reports/crossval.json holds the
same means as the headline metrics (docs/model.md, "Which figures are metrics"). The names are the history's
columns: train_loss and train_accuracy (the mean over folds of each fold's training rows), val_loss and val_accuracy
(the mean over the validation folds), val_loss_std and val_accuracy_std (their standard deviation over folds), and
batch_loss (the mean over folds of the loss of each epoch's batches as they were trained: augmented photos, the
non-hands of outlier exposure, the other hands of train.other_hands, dropout; with the "other" output, over all its
units, while the other losses are those of the classes' probabilities, Network._scores).
"""

import shutil
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from signdigits.errors import UsageError
from signdigits.files import hold_signals, release_signals

FOLDER = "reports/history"
DECIMALS = 6


@contextmanager
def open_log(folder: str = FOLDER):
    """A DVCLive logger writing into ``folder`` from a DVC stage: it neither makes a DVC experiment of its own
    nor writes a dvc.yaml (the project's dvc.yaml declares the folder's metrics and plots).

    DVCLive empties the folder and then writes it epoch by epoch, which is what lets `dvc exp show` follow a run
    live, but is not all-or-nothing: if the block fails or is interrupted (Ctrl-C, SIGTERM), the folder gets back
    the files it held before, so a failed run keeps the previous history as it keeps every other output. The
    block should end with the stage's ``write_outputs``, so that the history and those outputs change together."""
    from dvclive import Live

    previous = {path: path.read_bytes() for path in sorted(Path(folder).rglob("*")) if path.is_file()}
    # The block ends by writing the stage's other outputs, so once it is through, the new history belongs with
    # them: a failure or an interrupt after that (DVCLive's last sync) must not put the old history back.
    finished = False
    try:
        with Live(folder, save_dvc_exp=False, dvcyaml=False) as live:
            yield live
            finished = True
    except OSError as error:  # a full disk, a read-only folder, a file where a folder should be
        if not finished:
            _restore(folder, previous)
        raise UsageError(
            f"cannot write {folder}/ ({error.strerror or error}); make it writable or free some space"
        ) from None
    except BaseException:  # any failure, Ctrl-C, SIGTERM (errors.Terminated)
        if not finished:
            _restore(folder, previous)
        raise


def _restore(folder: str, previous: dict) -> None:
    """Put back the files ``folder`` held before (as far as the file system lets us: it may be what failed)."""
    shutil.rmtree(folder, ignore_errors=True)
    try:
        for path, content in previous.items():
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(content)
    except OSError:
        pass


def log_epoch(live, row: dict) -> None:
    """Log one history row (its "epoch" and metric values) as DVCLive step ``epoch``. A Ctrl-C or SIGTERM meanwhile
    takes effect once the step is logged: DVCLive hands each step to a thread of its own through a queue, and an
    interrupt in the middle of that hand-over left the queue waiting for a step that never came, so that the
    logger's exit (which waits for the queue) never returned."""
    held = hold_signals()
    try:
        live.step = row["epoch"]
        for name, value in row.items():
            if name != "epoch":
                live.log_metric(name, round(float(value), DECIMALS))
        live.next_step()
    finally:
        release_signals(held)


def read_history(folder: str | Path = FOLDER) -> dict:
    """The logged history as columns {"epoch": array, name: array, …}; {} when nothing was logged
    (cross-validation off)."""
    if not Path(folder).is_dir():
        raise UsageError(f"{folder} not found; run `dvc repro` to build it")
    columns = {}
    files = sorted((Path(folder) / "plots" / "metrics").glob("*.tsv"))
    for path in files:
        header, *rows = [line.split("\t") for line in path.read_text().splitlines() if line]
        values = np.array(rows, dtype=float).reshape(len(rows), len(header))
        columns["epoch"] = values[:, header.index("step")].astype(int)
        columns[path.stem] = values[:, header.index(path.stem)]
    return columns
