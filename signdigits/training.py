"""Building and training the network from the ``train`` params, with a tqdm progress bar on stderr."""

from dataclasses import fields

import numpy as np

from signdigits import perturbations
from signdigits.augment import random_transforms, transform_images
from signdigits.cnn import CNN
from signdigits.layout import architecture
from signdigits.mlp import MLP
from signdigits.network import TrainingConfig


def build_model(params, n_inputs, n_classes):
    """The network the ``train`` params describe (layout.architecture: train.model, its sizes and options)."""
    kind = {network.MODEL: network for network in (MLP, CNN)}[params["model"]]
    return kind(**architecture(params, n_inputs, n_classes))


def augmenter(
    max_shift: int,
    max_rotate: float = 0.0,
    max_zoom: float = 0.0,
    mirror: bool = False,
    background: bool = False,
    families: tuple[str, ...] = (),
    severity: int = 3,
):
    """The ``augment`` argument of Network.fit for the train.augment_* params (None when there is nothing to do):
    the images moved, turned and zoomed (``random_transforms``); then each mirrored with probability 1/2 if
    ``mirror``; then, if ``background``, each with probability 1/2 given another background
    (perturbations.background) at a strength drawn uniformly in [0, 1]; then each altered by
    perturbations.random_perturbations with ``families`` up to ``severity``."""
    geometric = bool(max_shift or max_rotate or max_zoom)
    if not (geometric or mirror or background or families):
        return None

    def augment(X, rng):
        if geometric:
            X = transform_images(X, *random_transforms(len(X), max_shift, max_rotate, max_zoom, rng))
        if mirror:
            flipped = rng.random(len(X)) < 0.5
            X = np.where(flipped[:, None], perturbations.mirror(X), X)
        if background:
            rows = np.flatnonzero(rng.random(len(X)) < 0.5)
            X = X.copy()
            X[rows] = perturbations.background(X[rows], rng.random(len(rows)), rng)
        if families:
            X = perturbations.random_perturbations(X, rng, families, severity)
        return X

    return augment


def training_config(params) -> TrainingConfig:
    """The TrainingConfig of the ``train`` params: each of its fields from the param of the same name, and its two
    functions built from params: ``augment`` from the augment_* params, ``outliers`` if outlier_exposure > 0."""
    functions = {
        "augment": augmenter(
            params["augment_shift"],
            params["augment_rotate"],
            params["augment_zoom"],
            params["augment_mirror"],
            params["augment_background"],
            tuple(params["augment_perturb"]),
            params["augment_severity"],
        ),
        "outliers": synthetic_outliers if params["outlier_exposure"] else None,
    }
    named = {field.name: params[field.name] for field in fields(TrainingConfig) if field.name not in functions}
    return TrainingConfig(**named, **functions)


def synthetic_outliers(n, side, rng):
    """``n`` synthetic non-hands (perturbations.non_hands) of side² pixels, new ones for each seed ``rng`` draws:
    the outliers of train.outlier_exposure."""
    return perturbations.non_hands(n, side, seed=int(rng.integers(2**32)))


def progress(epochs, label):
    """A tqdm bar over the epochs on stderr: it updates in place on a terminal and stays quiet otherwise (a log,
    `dvc exp run --queue`); no bar at all if ``label`` is None."""
    from tqdm import tqdm

    return tqdm(total=epochs, desc=label, unit="epoch", disable=None if label else True)


def show_epoch(bar, row):
    """Advance ``bar`` by one epoch, showing the history row's losses and accuracies."""
    shown = {"loss": f"{row['train_loss']:.4f}", "acc": f"{row['train_accuracy']:.3f}"}
    if "val_loss" in row:
        shown |= {"val_loss": f"{row['val_loss']:.4f}", "val_acc": f"{row['val_accuracy']:.3f}"}
    bar.set_postfix(shown, refresh=False)
    bar.update()


def train(params, X_train, y_train, n_classes=2, label="train"):
    """A fresh network trained on (X_train, y_train), with a progress bar (``label``; None: none); returns
    (network, history)."""
    net = build_model(params, X_train.shape[1], n_classes)
    with progress(params["epochs"], label) as bar:
        history = net.fit(X_train, y_train, training_config(params), on_epoch=lambda row: show_epoch(bar, row))
    return net, history
