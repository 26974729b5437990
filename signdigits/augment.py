"""Data augmentation's geometry: every epoch, each training image moved, turned and zoomed a little by its own
random amounts (seeded), as a hand would sit a little differently in another photo. The perturbation suite
(perturbations.py) turns, moves and scales with the same ``transform_images``; training.augmenter puts the
augmentation of the train.augment_* params together."""

import numpy as np

# Pixels interpolated at a time (whole images): about ten float64 arrays of this size live at once, some 8 MB, and
# NumPy's cost per call is spread over many pixels (benchmarks/augment_speed.py).
CHUNK_PIXELS = 100_000


def transform_images(X: np.ndarray, offsets: np.ndarray, angles: np.ndarray, zooms: np.ndarray) -> np.ndarray:
    """Each row of X (N, side², floats) as an image turned by angles[n] degrees (counterclockwise as shown, about the
    image centre), magnified zooms[n] times, then moved by −offsets[n] = −(rows, columns) pixels.

    Output pixel p = (row, column) shows the input at c + M (p + offset − c), c the centre, by bilinear
    interpolation; a point outside the image takes the nearest edge pixel (hands fill the frame, backgrounds
    continue). Rows grow downwards, so a counterclockwise turn by θ as shown is, in (row, column) coordinates, the
    source turned back: M = [[cos θ, sin θ], [−sin θ, cos θ]] / zoom. This is scipy.ndimage.affine_transform with
    order=1 and mode="nearest", computed for many images at once instead of one call per image: the same images,
    but that the float64 operations come in another order, which rounds about one pixel in 10⁸ to the next float32
    (tests/test_augment.py checks the two agree; benchmarks/augment_speed.py times them). With angle 0, zoom 1 and
    whole-pixel offsets every source point is a pixel, so the image is moved exactly, without blurring: then output
    pixel p is simply input pixel p + offset, clipped to the image (the edge pixel), which indexing picks for every
    image at once, faster still (the same pixels: tests/test_augment.py)."""
    n, side = len(X), int(round(np.sqrt(X.shape[1])))
    if not np.any(angles) and np.all(zooms == 1) and np.array_equal(offsets, np.round(offsets)):
        offsets = np.asarray(offsets).astype(int)
        rows = np.clip(np.arange(side) + offsets[:, :1], 0, side - 1)  # (n, side): each output row's source row
        columns = np.clip(np.arange(side) + offsets[:, 1:], 0, side - 1)
        source = ((np.arange(n)[:, None] * side + rows) * side)[:, :, None] + columns[:, None, :]  # in X's pixels
        return X.reshape(-1).take(source.reshape(-1)).reshape(n, side * side)
    return affine_bilinear(X, offsets, angles, zooms)


def affine_bilinear(X: np.ndarray, offsets: np.ndarray, angles: np.ndarray, zooms: np.ndarray) -> np.ndarray:
    """transform_images by interpolation, for any turn, zoom and move: scipy.ndimage.affine_transform's order=1,
    mode="nearest", for CHUNK_PIXELS' worth of whole images at a time."""
    n, side = len(X), int(round(np.sqrt(X.shape[1])))
    centre = (side - 1) / 2
    turns = np.radians(angles)
    cos, sin = np.cos(turns) / zooms, np.sin(turns) / zooms  # M's entries, per image
    offsets = np.asarray(offsets, float)
    moved, chunk = np.empty_like(X), max(1, CHUNK_PIXELS // side**2)
    for start in range(0, n, chunk):
        part = slice(start, start + chunk)
        dy = (np.arange(side) - centre)[:, None] + offsets[part, 0, None, None]  # p + offset − c: (m, side, 1) rows
        dx = (np.arange(side) - centre) + offsets[part, 1, None, None]  # and (m, 1, side) columns
        m11, m12 = cos[part, None, None], sin[part, None, None]  # M = [[m11, m12], [−m12, m11]]
        # the source point, clipped to the frame: outside it, the nearest edge pixel (as mode="nearest" reads)
        y = np.clip(centre + m11 * dy + m12 * dx, 0, side - 1)
        x = np.clip(centre - m12 * dy + m11 * dx, 0, side - 1)
        moved[part] = _bilinear(X[part], y, x)
    return moved


def _bilinear(X: np.ndarray, y: np.ndarray, x: np.ndarray) -> np.ndarray:
    """Image n of X (rows of side² pixels) read at the points (y[n], x[n]) (each (side, side), inside the frame):
    the four pixels around a point, each weighted by the area of the opposite sub-rectangle. A point on the last
    row or column takes its top-left pixel one back, with weight 0, so that all four neighbours lie in the frame."""
    side = y.shape[-1]
    top, left = np.minimum(y.astype(np.intp), side - 2), np.minimum(x.astype(np.intp), side - 2)  # floor: y, x ≥ 0
    wy, wx = y - top, x - left
    corner = (np.arange(len(X))[:, None, None] * side + top) * side + left  # the top-left neighbour, in X's pixels
    pixels = X.reshape(-1)
    upper_left, upper_right, lower_left, lower_right = (pixels.take(corner + step) for step in (0, 1, side, side + 1))
    upper = upper_left * (1 - wx) + upper_right * wx
    lower = lower_left * (1 - wx) + lower_right * wx
    return (upper * (1 - wy) + lower * wy).reshape(len(X), side * side)


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
