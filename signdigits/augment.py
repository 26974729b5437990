"""Data augmentation: every epoch, each training image moved, turned and zoomed a little by its own random amounts
(seeded), as a hand would sit a little differently in another photo."""

import numpy as np
from scipy.ndimage import map_coordinates


def transform_images(X: np.ndarray, offsets: np.ndarray, angles: np.ndarray, zooms: np.ndarray) -> np.ndarray:
    """Each row of X (N, side²) as an image turned by angles[n] degrees (counterclockwise as shown, about the
    image centre), magnified zooms[n] times, then moved by −offsets[n] = −(rows, columns) pixels.

    Output pixel p = (row, column) shows the input at c + R(−angle)(p − c) / zoom + offset, c the centre, by
    bilinear interpolation; a point outside the image takes the nearest edge pixel (hands fill the frame,
    backgrounds continue). With angle 0, zoom 1 and whole-pixel offsets every source point is a pixel, so the
    image is moved exactly, without blurring."""
    n, side = len(X), int(round(np.sqrt(X.shape[1])))
    c = (side - 1) / 2
    rows, columns = np.meshgrid(np.arange(side) - c, np.arange(side) - c, indexing="ij")
    # Rows grow downwards, so a counterclockwise turn as shown is R(−θ) in (row, column) coordinates: the
    # source of p is p turned back by θ.
    theta = np.radians(angles)[:, None, None]
    cos, sin, scale = np.cos(theta), np.sin(theta), 1.0 / np.asarray(zooms, float)[:, None, None]
    source_rows = c + (cos * rows + sin * columns) * scale + offsets[:, 0, None, None]
    source_columns = c + (cos * columns - sin * rows) * scale + offsets[:, 1, None, None]
    images = np.broadcast_to(np.arange(n)[:, None, None], source_rows.shape)
    coordinates = np.stack([images, source_rows, source_columns])
    moved = map_coordinates(X.reshape(n, side, side), coordinates, output=X.dtype, order=1, mode="nearest")
    return moved.reshape(n, side * side)


def random_transforms(n: int, max_shift: int, max_rotate: float, max_zoom: float, rng: np.random.Generator):
    """Per image: a whole-pixel offset in [−max_shift, max_shift]² , an angle in [−max_rotate, max_rotate] degrees
    and a zoom in [1 − max_zoom, 1 + max_zoom], each uniform (a range of 0 draws nothing)."""
    offsets = np.zeros((n, 2), int)
    if max_shift:  # rows, then columns
        offsets[:, 0], offsets[:, 1] = (rng.integers(0, 2 * max_shift + 1, size=n) - max_shift for _ in range(2))
    angles = rng.uniform(-max_rotate, max_rotate, size=n) if max_rotate else np.zeros(n)
    zooms = rng.uniform(1 - max_zoom, 1 + max_zoom, size=n) if max_zoom else np.ones(n)
    return offsets, angles, zooms


def augmenter(max_shift: int, max_rotate: float = 0.0, max_zoom: float = 0.0):
    """The ``augment`` argument of Network.fit for the train.augment_* params (None when all are 0: no
    augmentation)."""
    if not (max_shift or max_rotate or max_zoom):
        return None
    return lambda X, rng: transform_images(X, *random_transforms(len(X), max_shift, max_rotate, max_zoom, rng))
