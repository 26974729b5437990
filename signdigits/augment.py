"""Data augmentation's geometry: every epoch, each training image moved, turned and zoomed a little by its own
random amounts (seeded), as a hand would sit a little differently in another photo. The perturbation suite
(perturbations.py) turns, moves and scales with the same ``transform_images``; training.augmenter puts the
augmentation of the train.augment_* params together."""

import numpy as np
from scipy.ndimage import affine_transform


def transform_images(X: np.ndarray, offsets: np.ndarray, angles: np.ndarray, zooms: np.ndarray) -> np.ndarray:
    """Each row of X (N, side²) as an image turned by angles[n] degrees (counterclockwise as shown, about the
    image centre), magnified zooms[n] times, then moved by −offsets[n] = −(rows, columns) pixels.

    Output pixel p = (row, column) shows the input at c + M (p + offset − c), c the centre, by bilinear
    interpolation; a point outside the image takes the nearest edge pixel (hands fill the frame, backgrounds
    continue). Rows grow downwards, so a counterclockwise turn by θ as shown is, in (row, column) coordinates, the
    source turned back: M = [[cos θ, sin θ], [−sin θ, cos θ]] / zoom. With angle 0, zoom 1 and whole-pixel offsets
    every source point is a pixel, so the image is moved exactly, without blurring: then output pixel p is simply
    input pixel p + offset, clipped to the image (the edge pixel), which indexing picks for every image at once,
    about ten times faster than an interpolation per image (the same pixels: tests/test_augment.py)."""
    n, side = len(X), int(round(np.sqrt(X.shape[1])))
    if not np.any(angles) and np.all(zooms == 1) and np.array_equal(offsets, np.round(offsets)):
        offsets = np.asarray(offsets).astype(int)
        rows = np.clip(np.arange(side) + offsets[:, :1], 0, side - 1)  # (n, side): each output row's source row
        columns = np.clip(np.arange(side) + offsets[:, 1:], 0, side - 1)
        source = ((np.arange(n)[:, None] * side + rows) * side)[:, :, None] + columns[:, None, :]  # in X's pixels
        return X.reshape(-1).take(source.reshape(-1)).reshape(n, side * side)
    images = X.reshape(n, side, side)
    moved = np.empty_like(images)
    centre = np.full(2, (side - 1) / 2)
    for image, out, offset, angle, zoom in zip(images, moved, offsets, np.radians(angles), zooms):
        cos, sin = np.cos(angle), np.sin(angle)
        M = np.array([[cos, sin], [-sin, cos]]) / zoom
        affine_transform(image, M, offset=centre + M @ (offset - centre), output=out, order=1, mode="nearest")
    return moved.reshape(n, side * side)


def random_transforms(n: int, max_shift: int, max_rotate: float, max_zoom: float, rng: np.random.Generator):
    """Per image: a whole-pixel offset in [−max_shift, max_shift]², an angle in [−max_rotate, max_rotate] degrees
    and a zoom in [1 − max_zoom, 1 + max_zoom], each uniform (a range of 0 draws nothing)."""
    offsets = np.zeros((n, 2), int)
    if max_shift:
        offsets[:, 0] = rng.integers(0, 2 * max_shift + 1, size=n) - max_shift  # rows first,
        offsets[:, 1] = rng.integers(0, 2 * max_shift + 1, size=n) - max_shift  # then columns
    angles = rng.uniform(-max_rotate, max_rotate, size=n) if max_rotate else np.zeros(n)
    zooms = rng.uniform(1 - max_zoom, 1 + max_zoom, size=n) if max_zoom else np.ones(n)
    return offsets, angles, zooms
