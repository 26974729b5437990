"""Building and training the network from the ``train`` params, with progress on stderr."""

import sys
import time

import numpy as np

from signdigits.augment import augmenter
from signdigits.cnn import CNN
from signdigits.mlp import MLP

HISTORY_COLUMNS = ("epoch", "train_loss", "train_accuracy", "val_loss", "val_accuracy")


class EpochProgress:
    """A progress line on stderr — epoch, bar, train and held-out loss and accuracy, time spent and left —
    at most once a second, once the run has lasted two seconds (short runs stay quiet)."""

    def __init__(self, epochs, stream=sys.stderr, quiet_for=2.0, every=1.0):
        self.epochs, self.stream, self.quiet_for, self.every = epochs, stream, quiet_for, every
        self.start = self.last = time.perf_counter()

    def __call__(self, row):
        now = time.perf_counter()
        final = row["epoch"] == self.epochs
        if now - self.start < self.quiet_for or (now - self.last < self.every and not final):
            return
        self.last = now
        done = row["epoch"] / self.epochs
        bar = "#" * int(20 * done) + "." * (20 - int(20 * done))
        held_out = ""
        if "val_loss" in row:
            held_out = f"  val loss {row['val_loss']:.4f} acc {row['val_accuracy']:.3f}"
        spent = now - self.start
        print(
            f"epoch {row['epoch']:>{len(str(self.epochs))}}/{self.epochs} [{bar}]  loss {row['train_loss']:.4f} "
            f"acc {row['train_accuracy']:.3f}{held_out}  {spent:.0f} s, ~{spent / done - spent:.0f} s left",
            file=self.stream,
            flush=True,
        )


def build_model(params, n_inputs, n_classes):
    """The network the params describe (train.model: mlp or cnn): one sigmoid output for two classes, K softmax
    outputs for K > 2. hidden_units is the MLP's hidden layer, or the CNN's dense layer."""
    n_outputs = 1 if n_classes == 2 else n_classes
    if params["model"] == "cnn":
        return CNN(
            n_inputs,
            n_outputs,
            channels=params["conv_channels"],
            kernel_size=params["kernel_size"],
            n_hidden=params["hidden_units"],
            activation=params["activation"],
            seed=params["seed"],
            standardize=params["standardize"],
        )
    return MLP(
        n_inputs,
        params["hidden_units"],
        n_outputs,
        params["activation"],
        params["seed"],
        standardize=params["standardize"],
    )


def train(params, X_train, y_train, X_test=None, y_test=None, n_classes=2, progress=True):
    """Train a fresh model on the train split; the test split is only observed, for the history."""
    net = build_model(params, X_train.shape[1], n_classes)
    history = net.fit(
        X_train,
        y_train,
        epochs=params["epochs"],
        batch_size=params["batch_size"],
        learning_rate=params["learning_rate"],
        X_val=X_test,
        y_val=y_test,
        optimizer=params["optimizer"],
        momentum=params["momentum"],
        weight_decay=params["weight_decay"],
        lr_decay=params["lr_decay"],
        augment=augmenter(params["augment_shift"]),
        on_epoch=EpochProgress(params["epochs"]) if progress else None,
    )
    return net, history


def history_tsv(history) -> str:
    columns = [c for c in HISTORY_COLUMNS if c in history[0]]
    lines = ["\t".join(columns)]
    for row in history:
        lines.append("\t".join(str(row[c]) if c == "epoch" else f"{row[c]:.6f}" for c in columns))
    return "\n".join(lines) + "\n"


def read_history_tsv(text: str) -> dict:
    """The history TSV back as columns: {name: array}."""
    header, *rows = [line.split("\t") for line in text.strip().splitlines()]
    values = np.array(rows, dtype=float).reshape(len(rows), len(header))
    return {name: values[:, i] for i, name in enumerate(header)}
