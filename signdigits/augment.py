"""Light data augmentation: every epoch, each training image moved by a few pixels (seeded)."""

import numpy as np


def shift_images(X: np.ndarray, max_shift: int, rng: np.random.Generator) -> np.ndarray:
    """Each row of X (N, side²) moved by its own random (dy, dx), both uniform in [−max_shift, max_shift];
    the pixels that come in from outside repeat the nearest edge pixel (hands fill the frame, backgrounds
    continue)."""
    n, side = len(X), int(round(np.sqrt(X.shape[1])))
    images = X.reshape(n, side, side)
    padded = np.pad(images, ((0, 0), (max_shift, max_shift), (max_shift, max_shift)), mode="edge")
    # A window of side × side in the padded image starting at (max_shift + dy, max_shift + dx) is the image
    # moved by (−dy, −dx); drawing the start in [0, 2·max_shift] covers every shift in the range.
    top = rng.integers(0, 2 * max_shift + 1, size=n)
    left = rng.integers(0, 2 * max_shift + 1, size=n)
    rows = top[:, None, None] + np.arange(side)[None, :, None]
    columns = left[:, None, None] + np.arange(side)[None, None, :]
    return padded[np.arange(n)[:, None, None], rows, columns].reshape(n, side * side)


def augmenter(max_shift: int):
    """The ``augment`` argument of MLP.fit for the train.augment_shift param (None when 0: no augmentation)."""
    if max_shift == 0:
        return None
    return lambda X, rng: shift_images(X, max_shift, rng)
