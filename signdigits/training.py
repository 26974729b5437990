"""Building and training the network from the ``train`` params, with a tqdm progress bar on stderr."""

from dataclasses import fields
from functools import partial

import numpy as np

from signdigits import perturbations
from signdigits.augment import random_transforms, transform_images
from signdigits.cnn import CNN
from signdigits.layout import architecture
from signdigits.mlp import MLP
from signdigits.network import TrainingConfig


def build_model(params, n_inputs, n_classes, other_output=False):
    """The network the ``train`` params describe (layout.architecture: train.model, its sizes and options), with
    the "other" output if ``other_output`` (it will learn other hands: ``other_hands_to_learn``)."""
    kind = {network.MODEL: network for network in (MLP, CNN)}[params["model"]]
    return kind(**architecture(params, n_inputs, n_classes, other_output))


def augmenter(
    max_shift: int,
    max_rotate: float = 0.0,
    max_zoom: float = 0.0,
    mirror: bool = False,
    background: bool = False,
    families: tuple[str, ...] = (),
    severity: int = 3,
    busy_share: float = 0.0,
    natural_share: float = 0.0,
):
    """The ``augment`` argument of Network.fit for the train.augment_* params (None when there is nothing to do): a
    function of the training rows X that returns the function of the epoch's generator ``rng`` (and optionally of
    ``rows``, a selection of X's rows) giving the epoch's copy of X (or of those rows): the images moved, turned
    and zoomed (``random_transforms``); then each mirrored with probability 1/2 if ``mirror``; then, if
    ``background``, each with probability 1/2 given another background at a strength drawn uniformly in [0, 1]:
    of those, a share ``busy_share`` a synthetic non-hand image behind the hand (perturbations.replace_background
    with ``synthetic_outliers``: mostly busy ones, stripes, checks, shapes, noise, blobs, and some flat tones and
    gradients, or with probability ``natural_share`` an image with a photo's statistics), the others a darker,
    textured wall (perturbations.background); then each altered by perturbations.random_perturbations with
    ``families`` up to ``severity``.

    The photos' background masks, which another background and an occlusion need, are found once per training set
    (finding them takes most of the perturbations' time), then moved, turned, zoomed and mirrored with their photos:
    bilinear, then rounded, the hand's pixels where they went. (On the dataset's photos the mask of a mirrored
    photo is exactly the mirrored mask.) A photo keeps its mask after another background replaced its wall: the
    hand is where it was."""
    geometric = bool(max_shift or max_rotate or max_zoom)
    if not (geometric or mirror or background or families):
        return None
    needs_masks = background or bool({"occlude", "background"} & set(families))

    def for_rows(X):
        masks = perturbations.background_mask(X) if needs_masks else None

        def augment(rng, rows=None):
            images, epoch_masks = X, masks
            if rows is not None:  # these rows only (an epoch's draw of other hands)
                images, epoch_masks = X[rows], None if masks is None else masks[rows]
            if geometric:
                moves = random_transforms(len(images), max_shift, max_rotate, max_zoom, rng)
                images = transform_images(images, *moves)
                if epoch_masks is not None:
                    epoch_masks = transform_images(epoch_masks.astype(np.float32), *moves) > 0.5
            if mirror:
                flipped = rng.random(len(images))[:, None] < 0.5
                images = np.where(flipped, perturbations.mirror(images), images)
                if epoch_masks is not None:
                    epoch_masks = np.where(flipped, perturbations.mirror(epoch_masks), epoch_masks)
            if background:
                given = np.flatnonzero(rng.random(len(images)) < 0.5)
                is_busy = rng.random(len(given)) < busy_share if busy_share else np.zeros(len(given), bool)
                walls, busy = given[~is_busy], given[is_busy]
                images = images.copy()
                images[walls] = perturbations.background(images[walls], rng.random(len(walls)), rng, epoch_masks[walls])
                if len(busy):
                    new = synthetic_outliers(len(busy), perturbations.image_side(images), rng, natural_share)
                    strengths = rng.random(len(busy))
                    images[busy] = perturbations.replace_background(images[busy], new, strengths, epoch_masks[busy])
            if families:
                images = perturbations.random_perturbations(images, rng, families, severity, masks=epoch_masks)
            return images

        return augment

    return for_rows


def training_config(params) -> TrainingConfig:
    """The TrainingConfig of the ``train`` params: each of its fields from the param of the same name, and its two
    functions built from params: ``augment`` from the augment_* params, ``outliers`` if outlier_exposure > 0, both
    drawing train.natural_images' share of their synthetic images from perturbations.natural_images."""
    functions = {
        "augment": augmenter(
            params["augment_shift"],
            params["augment_rotate"],
            params["augment_zoom"],
            params["augment_mirror"],
            params["augment_background"],
            tuple(params["augment_perturb"]),
            params["augment_severity"],
            busy_share=params["augment_busy_background"],
            natural_share=params["natural_images"],
        ),
        "outliers": partial(synthetic_outliers, natural_share=params["natural_images"])
        if params["outlier_exposure"]
        else None,
    }
    named = {field.name: params[field.name] for field in fields(TrainingConfig) if field.name not in functions}
    return TrainingConfig(**named, **functions)


def other_hands_to_learn(params, X_others):
    """The other hands a network learns as its "other" output: ``X_others`` if train.other_hands > 0 and there are
    any, else None (with all ten digits as classes there are none: the network then has no "other" output)."""
    return X_others if params["other_hands"] and len(X_others) else None


def synthetic_outliers(n, side, rng, natural_share=0.0):
    """``n`` synthetic non-hands of side² pixels, new ones for each seed ``rng`` draws: perturbations.non_hands,
    each then replaced with probability ``natural_share`` by one of perturbations.natural_images (images with a
    photo's statistics; train.natural_images). The outliers of train.outlier_exposure, and the busy backgrounds of
    train.augment_busy_background."""
    images = perturbations.non_hands(n, side, seed=int(rng.integers(2**32)))
    if natural_share:
        natural = np.flatnonzero(rng.random(n) < natural_share)
        images[natural] = perturbations.natural_images(len(natural), side, seed=int(rng.integers(2**32)))
    return images


def progress(epochs, label):
    """A tqdm bar over the epochs on stderr: it updates in place on a terminal and stays quiet otherwise (a log,
    `dvc exp run --queue`); no bar at all if ``label`` is None."""
    from tqdm import tqdm

    return tqdm(total=epochs, desc=label, unit="epoch", disable=None if label else True)


def show_epoch(bar, row):
    """Advance ``bar`` by one epoch, showing the history row's figures."""
    if "val_loss" in row:  # the learning curves: the training rows and the validation rows, as the epoch left them
        shown = {"loss": f"{row['train_loss']:.4f}", "acc": f"{row['train_accuracy']:.3f}"}
        shown |= {"val_loss": f"{row['val_loss']:.4f}", "val_acc": f"{row['val_accuracy']:.3f}"}
    else:
        shown = {"batch_loss": f"{row['batch_loss']:.4f}"}
    bar.set_postfix(shown, refresh=False)
    bar.update()


def train(params, X_train, y_train, n_classes=2, label="train", others=None):
    """A fresh network trained on (X_train, y_train) and, with train.other_hands, the other hands ``others``, with
    a progress bar (``label``; None: none); returns (network, history)."""
    net = build_model(params, X_train.shape[1], n_classes, other_output=others is not None)
    with progress(params["epochs"], label) as bar:
        config = training_config(params)
        history = net.fit(X_train, y_train, config, on_epoch=lambda row: show_epoch(bar, row), others=others)
    return net, history
