"""Everyday changes to a photo of a hand, at five severities, and synthetic images that are not hands at all.

In the spirit of MNIST-C (Mu & Gilmer 2019, "MNIST-C: A Robustness Benchmark for Computer Vision") and
ImageNet-C (Hendrycks & Dietterich 2019, "Benchmarking Neural Network Robustness to Common Corruptions and
Perturbations"): each *family* models one way a user's photo differs from the dataset's, at severities 1 (barely
visible) to 5 (severe, yet a person still reads the sign):

==========  =====================================================================================================
mirror      the other hand: the photo flipped left–right (the same at every severity)
rotate      a tilted hand: turned about the centre, clockwise or counterclockwise
shift       an off-centre hand: moved in some direction, by up to a quarter of the frame
scale       the hand nearer or farther from the camera: magnified or shrunk about the centre
brighten    a brighter room: a constant added to every pixel (clipped at white)
darken      a darker room: a constant taken from every pixel (clipped at black)
contrast    a flat or a harsh light: each photo's spread about its own mean shrunk or stretched
gamma       camera exposure: each pixel x becomes x**g, g > 1 under-exposed (darker mid-tones), g < 1 over-exposed
noise       sensor noise: independent Gaussian noise on every pixel
blur        focus: a Gaussian blur
occlude     something covering part of the hand: a square of one tone placed over the hand
background  another background: the light background replaced by a darker, textured one
==========  =====================================================================================================

Conventions. Images are rows X of shape (N, side²) (row-major side × side images, side = √(columns), any side ≥ 8),
float32 in [0, 1], 0 black, 1 white. Every function returns a new float32 array of that shape with values in [0, 1] and
never modifies its input (``mirror``, a rearrangement, keeps a floating or boolean input's dtype). The primitives
(``mirror`` … ``background``) take one strength per image (arrays of length N), so that training augmentation can draw a
strength per image; ``perturb`` and ``suite`` apply the fixed severities of SEVERITIES. Image coordinates are (row,
column), rows growing downwards.

Randomness (the sign of a turn, the direction of a shift or zoom, noise, where an occluder sits, a background's
texture) comes from a seeded NumPy Generator. ``perturb`` draws the same random choices at every severity of a
family for one seed, so a higher severity of a family is the same change, only stronger.

Synthetic non-hands (``non_hands``) are an out-of-distribution set for a refusal ("I don't know"): flat tones,
gradients, noise, simple shapes and textures, which a model of hand signs should not answer.
"""

from collections.abc import Iterator, Sequence

import numpy as np
from scipy import ndimage

from signdigits.augment import transform_images

FAMILIES = (
    "mirror",
    "rotate",
    "shift",
    "scale",
    "brighten",
    "darken",
    "contrast",
    "gamma",
    "noise",
    "blur",
    "occlude",
    "background",
)

# The parameter of severities 1–5 of each family. Sizes in pixels are given for the pipeline's 28 × 28 images and
# scaled with the side (shift and occlusion are fractions of the frame, so need no scaling).
SEVERITIES = {
    # flipped left–right; every severity is the same flip (1 = flipped)
    "mirror": (1, 1, 1, 1, 1),
    # degrees, each photo turned clockwise or counterclockwise (a seeded coin)
    "rotate": (6, 12, 20, 30, 45),
    # distance moved as a fraction of the side (0.25: a quarter of the frame, 7 pixels at 28), in a seeded random
    # direction, rounded to whole pixels (a move that does not blur)
    "shift": (0.04, 0.08, 0.12, 0.18, 0.25),
    # change of size m: magnified 1 + m times (nearer) or 1 − m times (farther), a seeded coin
    "scale": (0.1, 0.15, 0.2, 0.3, 0.4),
    # added to every pixel
    "brighten": (0.05, 0.1, 0.15, 0.22, 0.3),
    # taken from every pixel (0.3: the dataset's mean brightness, about 0.65, roughly halved)
    "darken": (0.1, 0.2, 0.3, 0.4, 0.5),
    # factor f on the spread about each photo's mean: f (flat light) or 1 / f (harsh light), a seeded coin
    "contrast": (0.8, 0.67, 0.55, 0.45, 0.35),
    # exponent g: x**g (under-exposed) or x**(1 / g) (over-exposed), a seeded coin
    "gamma": (1.2, 1.4, 1.65, 1.95, 2.3),
    # standard deviation of the Gaussian noise added to each pixel
    "noise": (0.015, 0.03, 0.05, 0.08, 0.12),
    # standard deviation of the Gaussian blur, in pixels at side 28
    "blur": (0.4, 0.6, 0.9, 1.2, 1.6),
    # fraction of the image's area covered by the square occluder
    "occlude": (0.03, 0.06, 0.09, 0.12, 0.16),
    # weight of the new background blended into the old one (1: replaced)
    "background": (0.2, 0.4, 0.6, 0.8, 1.0),
}

# The parameter of each family that changes nothing: random_perturbations draws strengths between it and a severity.
IDENTITY = {family: 0.0 for family in FAMILIES} | {"contrast": 1.0, "gamma": 1.0}

REFERENCE_SIDE = 28  # the side at which SEVERITIES' pixel sizes (blur) are given
# background_mask works on a stack of images (N, side, side): its structuring elements span one image, never two
SQUARE_3X3 = np.ones((1, 3, 3), dtype=bool)  # the closing and the opening
IN_PLANE_CROSS = np.pad(ndimage.generate_binary_structure(2, 1)[None], ((1, 1), (0, 0), (0, 0)))  # 4-neighbours


# --- helpers ----------------------------------------------------------------------------------------------------
def image_side(X: np.ndarray) -> int:
    """The side of the square images whose rows are X (N, side²); a ValueError if the columns are no square."""
    side = int(round(np.sqrt(X.shape[1])))
    if X.ndim != 2 or side * side != X.shape[1]:
        raise ValueError(f"images must be rows of side² pixels, got shape {X.shape}")
    return side


def _per_image(values, n: int) -> np.ndarray:
    """A strength per image: a scalar repeated n times, or an array of length n, as float64."""
    values = np.asarray(values, dtype=np.float64)
    return np.full(n, float(values)) if values.ndim == 0 else values.reshape(n)


def _as_rows(X: np.ndarray) -> np.ndarray:
    return np.asarray(X, dtype=np.float32)


def _finish(X: np.ndarray) -> np.ndarray:
    """float32, clipped to [0, 1]."""
    return np.clip(X, 0.0, 1.0).astype(np.float32)


def _signs(rng: np.random.Generator, n: int) -> np.ndarray:
    """A seeded coin per image: +1 or −1."""
    return np.where(rng.random(n) < 0.5, 1.0, -1.0)


def otsu_thresholds(V: np.ndarray, bins: int = 256) -> np.ndarray:
    """Otsu's threshold of each row of ``V``: the t of a histogram of ``bins`` bins over the row's range (bins as
    np.histogram makes them) that maximises the between-class variance w₀ w₁ (μ₀ − μ₁)² of the values ≤ t and
    > t. A flat row (one value) gives that value."""
    V = np.asarray(V, dtype=np.float64)
    n, rows = len(V), np.arange(len(V))
    low, high = V.min(axis=1), V.max(axis=1)
    flat = high - low < 1e-9
    span = np.where(flat, 1.0, high - low)
    edges = low[:, None] + np.arange(bins + 1) * (span / bins)[:, None]  # as np.linspace(low, high, bins + 1)
    edges[:, -1] = np.where(flat, edges[:, -1], high)
    # each value's bin: the last edge at or below it (the top bin holds the maximum), as np.histogram counts
    index = np.minimum(((V - low[:, None]) / span[:, None] * bins).astype(np.intp), bins - 1)
    index -= V < np.take_along_axis(edges, index, axis=1)
    index += (V >= np.take_along_axis(edges, index + 1, axis=1)) & (index < bins - 1)
    counts = np.bincount((index + bins * rows[:, None]).ravel(), minlength=n * bins).reshape(n, bins)
    centres = (edges[:, :-1] + edges[:, 1:]) / 2
    weight_low = np.cumsum(counts, axis=1)  # values in the bins up to and including k
    weight_high = weight_low[:, -1:] - weight_low
    sum_low = np.cumsum(counts * centres, axis=1)
    mean_low = sum_low / np.maximum(weight_low, 1)
    mean_high = (sum_low[:, -1:] - sum_low) / np.maximum(weight_high, 1)
    between = weight_low * weight_high * (mean_low - mean_high) ** 2
    return np.where(flat, low, edges[rows, 1 + np.argmax(between, axis=1)])


def _border_connected(bright: np.ndarray) -> np.ndarray:
    """The pixels of each boolean image of the stack ``bright`` (N, side, side) that are connected (4-neighbours,
    within the image) to the image's border."""
    labels, count = ndimage.label(bright, structure=IN_PLANE_CROSS)
    touching = np.zeros(count + 1, dtype=bool)
    touching[labels[:, [0, -1], :]] = True
    touching[labels[:, :, [0, -1]]] = True
    touching[0] = False  # the dark pixels
    return touching[labels]


def _lighting_surfaces(images: np.ndarray, where: np.ndarray) -> np.ndarray:
    """For each image of the stack (N, side, side), the least-squares quadratic surface a + b r + c q + d r² +
    e r q + f q² (r, q the row and column, scaled to [−1, 1]) through its pixels ``where``: the background's
    lighting, brighter in the middle of the dataset's photos than in their corners (vignetting). Solved by the
    normal equations (TᵀW T) c = TᵀW x, W the 0/1 weights of ``where``, with a pseudo-inverse for the rare image
    whose pixels do not pin all six coefficients."""
    n, side, _ = images.shape
    r, q = np.meshgrid(np.linspace(-1, 1, side), np.linspace(-1, 1, side), indexing="ij")
    terms = np.stack([np.ones_like(r), r, q, r * r, r * q, q * q], axis=-1).reshape(side * side, 6)
    weights = where.reshape(n, side * side).astype(np.float64)
    gram = (weights @ (terms[:, :, None] * terms[:, None, :]).reshape(side * side, 36)).reshape(n, 6, 6)
    moments = (weights * images.reshape(n, side * side)) @ terms
    coefficients = (np.linalg.pinv(gram, hermitian=True) @ moments[:, :, None])[:, :, 0]
    return (coefficients @ terms.T).reshape(n, side, side)


def background_mask(X: np.ndarray) -> np.ndarray:
    """Boolean (N, side²): the background of each image, the light part around the hand.

    Per image: (1) the pixels brighter than the image's Otsu threshold and connected to the image's border (via
    scipy.ndimage.label) are a first background; (2) the background's lighting is modelled as a quadratic surface
    fitted to those pixels, and the image divided by it (which undoes the dataset's darker corners); (3) the
    background is the pixels of that evened image brighter than its own Otsu threshold and connected to the border,
    (4) except a light region wider than 3 × 3 pixels (binary opening) that the border reaches only through a gap of
    one or two pixels in the dark outline (found by closing the dark pixels, 3 × 3): a light palm, whereas the
    narrow gaps between fingers stay background. The hand, which is darker than the wall behind it, and anything
    it encloses (the hole of a "0") stay out. A flat image is all background; an image with fewer than 6 pixels in
    the first background keeps that first estimate (too few to fit a lighting surface); an image with no light
    pixel on its border has none. All images are done at once, as one stack whose images do not touch (the
    structuring elements span one image). On the dataset's photos this finds the wall on nearly all of them; it
    fails on some photos of a very light, open palm with strongly darkened corners (part of the palm taken for
    background, the corners left out)."""
    X = _as_rows(X)
    n, side = len(X), image_side(X)
    images = X.reshape(n, side, side).astype(np.float64)
    flat = np.ptp(X, axis=1) < 1e-6

    def above_otsu(stack):
        return stack > otsu_thresholds(stack.reshape(n, -1))[:, None, None]

    first = _border_connected(above_otsu(images))
    fitted = first.sum(axis=(1, 2)) >= 6
    evened = images / np.maximum(_lighting_surfaces(images, first), 0.05)
    light = above_otsu(evened)
    reached = _border_connected(light)
    sealed_outline = ndimage.binary_closing(~light, structure=SQUARE_3X3)  # gaps of 1–2 pixels closed
    reached_through_a_gap = reached & ~_border_connected(light & ~sealed_outline)
    light_palm = ndimage.binary_opening(reached_through_a_gap, structure=SQUARE_3X3)  # wide, not a gap
    masks = np.where(fitted[:, None, None], reached & ~light_palm, first)
    masks[flat] = True
    return masks.reshape(n, side * side)


# --- primitives: one strength per image ---------------------------------------------------------------------------
def mirror(X: np.ndarray) -> np.ndarray:
    """Each image flipped left–right (the other hand): out[r, q] = in[r, side − 1 − q]. A rearrangement, exact:
    boolean rows (masks) and floating ones keep their dtype (a network of float64 mirrors its own rows)."""
    X = np.asarray(X)
    X = X if X.dtype == bool or np.issubdtype(X.dtype, np.floating) else _as_rows(X)
    n, side = len(X), image_side(X)
    return X.reshape(n, side, side)[:, :, ::-1].reshape(n, side * side).copy()


def rotate(X: np.ndarray, degrees) -> np.ndarray:
    """Each image turned by degrees[n] about its centre, counterclockwise as shown for a positive angle (90° is
    np.rot90), by augment.transform_images (bilinear; a point from outside the frame takes the nearest edge pixel)."""
    X = _as_rows(X)
    n = len(X)
    return _finish(transform_images(X, np.zeros((n, 2)), _per_image(degrees, n), np.ones(n)))


def shift(X: np.ndarray, offsets) -> np.ndarray:
    """Each image's content moved by offsets[n] = (rows down, columns right) pixels: out[r, q] = in[r − dr, q − dq],
    the edge pixels repeated into the uncovered strip (augment.transform_images; whole pixels move exactly)."""
    X = _as_rows(X)
    n = len(X)
    offsets = np.asarray(offsets, dtype=np.float64).reshape(n, 2)
    return _finish(transform_images(X, -offsets, np.zeros(n), np.ones(n)))


def scale(X: np.ndarray, factors) -> np.ndarray:
    """Each image magnified factors[n] times about its centre (> 1: the hand nearer, < 1: farther, the edge pixels
    repeated around it), by augment.transform_images."""
    X = _as_rows(X)
    n = len(X)
    return _finish(transform_images(X, np.zeros((n, 2)), np.zeros(n), _per_image(factors, n)))


def brightness(X: np.ndarray, delta) -> np.ndarray:
    """clip(x + delta[n], 0, 1) for every pixel x of image n (delta < 0 darkens)."""
    X = _as_rows(X)
    return _finish(X + _per_image(delta, len(X))[:, None])


def contrast(X: np.ndarray, factor) -> np.ndarray:
    """clip(m + factor[n] (x − m), 0, 1), m the mean of image n: factor < 1 flattens, > 1 stretches."""
    X = _as_rows(X).astype(np.float64)
    mean = X.mean(axis=1, keepdims=True)
    return _finish(mean + _per_image(factor, len(X))[:, None] * (X - mean))


def gamma(X: np.ndarray, g) -> np.ndarray:
    """x ** g[n] for every pixel x of image n: g > 1 darkens the mid-tones, g < 1 lightens them; 0 and 1 stay."""
    X = _as_rows(X).astype(np.float64)
    return _finish(X ** _per_image(g, len(X))[:, None])


def noise(X: np.ndarray, sigma, rng: np.random.Generator) -> np.ndarray:
    """clip(x + sigma[n] z, 0, 1), z an independent standard normal per pixel drawn from ``rng``."""
    X = _as_rows(X).astype(np.float64)
    return _finish(X + _per_image(sigma, len(X))[:, None] * rng.standard_normal(X.shape))


def blur(X: np.ndarray, sigma) -> np.ndarray:
    """Each image filtered by scipy.ndimage.gaussian_filter with standard deviation sigma[n] pixels (the edge pixels
    continue beyond the frame: mode "nearest"); sigma 0 leaves it as it is."""
    X = _as_rows(X)
    n, side = len(X), image_side(X)
    out = X.reshape(n, side, side).copy()
    for image, s in zip(out, _per_image(sigma, n)):
        if s > 0:
            image[:] = ndimage.gaussian_filter(image, s, mode="nearest")
    return _finish(out.reshape(n, side * side))


def occlude(X: np.ndarray, fraction, rng: np.random.Generator, masks: np.ndarray | None = None) -> np.ndarray:
    """Each image with a square of one tone over fraction[n] of its area: side round(side √fraction) pixels, its
    tone uniform in [0, 1], its centre a pixel of the hand (a pixel outside background_mask; any pixel if there is
    none) drawn from ``rng``, moved as little as needed to lie inside the frame. The random draws do not depend on
    the fractions: with one generator state, a larger fraction is a larger square about the same centre. ``masks``:
    background_mask(X), if already computed."""
    X = _as_rows(X)
    n, side = len(X), image_side(X)
    fractions = _per_image(fraction, n)
    picks, tones = rng.random(n), rng.random(n)  # a position among the hand's pixels, a tone
    hands = ~(background_mask(X) if masks is None else masks)
    out = X.reshape(n, side, side).copy()
    for image, hand, f, pick, tone in zip(out, hands, fractions, picks, tones):
        width = int(round(side * np.sqrt(f)))
        if width <= 0:
            continue
        candidates = np.flatnonzero(hand) if hand.any() else np.arange(side * side)
        row, column = divmod(int(candidates[int(pick * len(candidates))]), side)
        top = int(np.clip(row - width // 2, 0, side - width))
        left = int(np.clip(column - width // 2, 0, side - width))
        image[top : top + width, left : left + width] = tone
    return _finish(out.reshape(n, side * side))


def background(X: np.ndarray, strength, rng: np.random.Generator, masks: np.ndarray | None = None) -> np.ndarray:
    """Each image's background replaced, with weight strength[n], by a darker wall (``replace_background``). The new
    background b = clip(t + a z, 0, 1): a tone t uniform in [0.03, 0.3] (darker than the dataset's white wall), and
    a texture z (unit-variance noise smoothed by a Gaussian of σ = side/10 to blobs a few pixels wide, a wall or
    cloth), of amplitude a uniform in [0.04, 0.12], all drawn from ``rng`` independently of the strengths.
    ``masks``: background_mask(X), if already computed."""
    X = _as_rows(X)
    n, side = len(X), image_side(X)
    tones = rng.uniform(0.03, 0.3, n)
    amplitudes = rng.uniform(0.04, 0.12, n)
    textures = _unit_blobs(rng, n, side, side / 10)
    new = np.clip(tones[:, None, None] + amplitudes[:, None, None] * textures, 0, 1)
    return replace_background(X, new, strength, masks)


def replace_background(X: np.ndarray, new: np.ndarray, strength=1.0, masks: np.ndarray | None = None) -> np.ndarray:
    """Each image's background (background_mask) replaced, with weight strength[n], by the image new[n] (rows or
    images of X's side): out = (1 − α) x + α new[n], α = strength · the mask softened at its edge inside the background
    (the mask times its own Gaussian blur of σ = 0.6 pixel), so the hand's pixels keep α = 0. ``masks``:
    background_mask(X), if already computed."""
    X = _as_rows(X)
    n, side = len(X), image_side(X)
    new = np.asarray(new, dtype=np.float64).reshape(n, side, side)
    masks = (background_mask(X) if masks is None else masks).reshape(n, side, side).astype(np.float64)
    soft = masks * ndimage.gaussian_filter(masks, (0, 0.6, 0.6), mode="nearest")  # sigma 0: image by image
    alpha = _per_image(strength, n)[:, None, None] * soft
    images = X.reshape(n, side, side).astype(np.float64)
    return _finish(((1 - alpha) * images + alpha * new).reshape(n, side * side))


def _unit_blobs(rng: np.random.Generator, n: int, side: int, sigma) -> np.ndarray:
    """``n`` images (n, side, side) of standard normal noise, each smoothed by a Gaussian of ``sigma`` pixels (one
    for all, or one per image) with its edges wrapped around, and rescaled to mean 0, std 1. Wrapped around, the
    smoothing is a circular convolution: a product with the Gaussian's transform exp(−2π²σ²|f|²) in the Fourier
    domain, which takes a different σ per image in one step. For σ ≥ 1.5 these are scipy.ndimage.gaussian_filter's
    images with mode="wrap" to within 0.2 % of their spread (tests/test_perturbations.py)."""
    noise = rng.standard_normal((n, side, side))
    frequencies = np.fft.fftfreq(side)[:, None] ** 2 + np.fft.rfftfreq(side)[None, :] ** 2  # |f|², cycles per pixel
    sigmas = np.asarray(sigma, dtype=np.float64).reshape(-1, 1, 1)  # one (1, 1, 1) or one per image (n, 1, 1)
    transfer = np.exp(-2 * np.pi**2 * sigmas**2 * frequencies)
    smooth = np.fft.irfft2(np.fft.rfft2(noise) * transfer, s=(side, side))
    spread = np.maximum(smooth.std(axis=(1, 2), keepdims=True), 1e-12)
    return (smooth - smooth.mean(axis=(1, 2), keepdims=True)) / spread


# --- families and severities ----------------------------------------------------------------------------------------
def _check_family(family: str) -> None:
    if family not in SEVERITIES:
        raise ValueError(f"unknown perturbation family {family!r}; the families are {', '.join(FAMILIES)}")


def _apply(X: np.ndarray, family: str, values: np.ndarray, rng: np.random.Generator, masks=None) -> np.ndarray:
    """Family ``family`` on each image n with parameter values[n] (in SEVERITIES' units), its random choices drawn
    from ``rng`` in an order that does not depend on ``values``; ``masks``: background_mask(X), if computed."""
    n, side = len(X), image_side(X)
    if family == "mirror":
        return mirror(X)
    if family == "rotate":
        return rotate(X, _signs(rng, n) * values)
    if family == "shift":
        directions = rng.uniform(0, 2 * np.pi, n)
        distance = values * side
        offsets = np.rint(np.stack([distance * np.sin(directions), distance * np.cos(directions)], axis=1))
        return shift(X, offsets)
    if family == "scale":
        return scale(X, 1 + _signs(rng, n) * values)
    if family == "brighten":
        return brightness(X, values)
    if family == "darken":
        return brightness(X, -values)
    if family == "contrast":
        return contrast(X, values ** _signs(rng, n))
    if family == "gamma":
        return gamma(X, values ** _signs(rng, n))
    if family == "noise":
        return noise(X, values, rng)
    if family == "blur":
        return blur(X, values * side / REFERENCE_SIDE)
    if family == "occlude":
        return occlude(X, values, rng, masks)
    if family == "background":
        return background(X, values, rng, masks)
    _check_family(family)
    raise AssertionError(family)  # every family is handled above


def perturb(X: np.ndarray, family: str, severity: int, seed: int = 0, masks: np.ndarray | None = None) -> np.ndarray:
    """The images X under ``family`` at ``severity`` (1–5, SEVERITIES[family][severity − 1]); the random choices
    come from np.random.default_rng(seed), and are the same at every severity. An unknown family or severity is a
    ValueError naming the allowed ones. ``masks``: background_mask(X), if already computed (occlude, background)."""
    _check_family(family)
    if severity not in (1, 2, 3, 4, 5) or isinstance(severity, bool):
        raise ValueError(f"unknown severity {severity!r}; the severities are 1, 2, 3, 4 and 5")
    X = _as_rows(X)
    values = np.full(len(X), float(SEVERITIES[family][severity - 1]))
    return _apply(X, family, values, np.random.default_rng(seed), masks)


def suite(X: np.ndarray, severities: Sequence[int] = (1, 2, 3, 4, 5), seed: int = 0) -> Iterator:
    """(family, severity, perturb(X, family, severity, seed)) for every family of FAMILIES (in order) and every
    severity of ``severities``: 60 perturbed copies of X with the defaults, made one at a time. X's background
    masks, which occlude and background need at every severity, are found once."""
    masks = background_mask(_as_rows(X))
    for family in FAMILIES:
        for severity in severities:
            yield family, severity, perturb(X, family, severity, seed, masks)


def random_perturbations(
    X: np.ndarray,
    rng: np.random.Generator,
    families: Sequence[str] = FAMILIES,
    max_severity: int = 3,
    clean_share: float = 0.5,
    masks: np.ndarray | None = None,
) -> np.ndarray:
    """Training augmentation: each image left as it is with probability ``clean_share``, otherwise changed by one
    family drawn uniformly from ``families`` at a strength t drawn uniformly in [0, 1]: the family's parameter
    IDENTITY + t (SEVERITIES[family][max_severity − 1] − IDENTITY), from no change (t = 0) to severity
    ``max_severity`` (t = 1); mirror, which has no strength, is simply applied. All draws come from ``rng``.
    ``masks``: background_mask(X), if already computed (occlude, background)."""
    for family in families:
        _check_family(family)
    if max_severity not in (1, 2, 3, 4, 5):
        raise ValueError(f"unknown severity {max_severity!r}; the severities are 1, 2, 3, 4 and 5")
    X = _as_rows(X)
    n = len(X)
    changed = rng.random(n) >= clean_share
    chosen = rng.integers(0, len(families), n)
    strengths = rng.random(n)
    out = X.copy()
    for k, family in enumerate(families):
        rows = np.flatnonzero(changed & (chosen == k))
        if len(rows) == 0:
            continue
        identity, target = IDENTITY[family], SEVERITIES[family][max_severity - 1]
        values = identity + strengths[rows] * (target - identity)
        out[rows] = _apply(X[rows], family, values, rng, None if masks is None else masks[rows])
    return out


# --- synthetic images that are not hands ---------------------------------------------------------------------------
NON_HAND_KINDS = (
    "flat",  # one tone: black, white and mid-grey first, then random tones
    "linear gradient",  # from one tone to another in a random direction
    "radial gradient",  # from one tone at a random centre to another far from it
    "uniform noise",  # every pixel uniform in a random range
    "gaussian noise",  # every pixel normal about a random tone
    "disc",  # a filled disc (a ball) on a plain or gradient background
    "square",  # a filled square on a plain or gradient background
    "ring",  # a ring on a plain or gradient background
    "checkerboard",  # squares of two tones, of a random size
    "stripes",  # sinusoidal stripes at a random angle and period
    "blobs",  # smooth random blobs (Gaussian-filtered noise)
)
MEASURED_NON_HANDS = 500  # how many synthetic non-hands the refusal figures are measured on (crossval, evaluate)


def non_hand_kinds(n: int) -> np.ndarray:
    """The kind (NON_HAND_KINDS) of each row of non_hands(n, …): the kinds in turn, row i of kind i mod 11."""
    return np.array([NON_HAND_KINDS[i % len(NON_HAND_KINDS)] for i in range(n)])


def non_hands(n: int, side: int, seed: int = 0) -> np.ndarray:
    """n synthetic images that are no hands, as rows (n, side²) float32 in [0, 1]: the kinds of NON_HAND_KINDS in
    turn (non_hand_kinds(n) names each row's), drawn from np.random.default_rng(seed), each kind's images made
    together (a few array operations per kind, not per image: training draws new ones every epoch)."""
    rng = np.random.default_rng(seed)
    r, q = np.meshgrid(np.arange(side) + 0.5, np.arange(side) + 0.5, indexing="ij")
    grid = (r / side, q / side)  # pixel centres, in fractions of the side
    kinds = non_hand_kinds(n)
    images = np.empty((n, side, side))
    for kind in NON_HAND_KINDS:
        rows = np.flatnonzero(kinds == kind)
        if len(rows):
            images[rows] = _non_hands_of_kind(kind, len(rows), *grid, rng)
    return _finish(images.reshape(n, side * side))


def _column(values: np.ndarray) -> np.ndarray:
    """Per-image values (m,) shaped (m, 1, 1), to broadcast against images (m, side, side)."""
    return np.asarray(values)[:, None, None]


def _two_tones(rng: np.random.Generator, m: int) -> tuple[np.ndarray, np.ndarray]:
    """m pairs of tones at least 0.3 apart: the first uniform in [0, 1], the second uniform on what is left of
    [0, 1] outside (first − 0.3, first + 0.3) (drawn on that set's length, then put in place: no rejection)."""
    first = rng.uniform(0, 1, m)
    below = np.maximum(first - 0.3, 0)  # the length of [0, first − 0.3]
    above = np.maximum(0.7 - first, 0)  # the length of [first + 0.3, 1]
    u = rng.uniform(0, 1, m) * (below + above)
    second = np.where(u < below, u, first + 0.3 + (u - below))
    return first, second


def _linear_gradients(r, q, start, end, angle):
    """From ``start`` to ``end`` along the direction ``angle`` across the frame, one image per value."""
    along = (r - 0.5) * _column(np.sin(angle)) + (q - 0.5) * _column(np.cos(angle))
    low, high = along.min(axis=(1, 2), keepdims=True), along.max(axis=(1, 2), keepdims=True)
    return _column(start) + _column(end - start) * (along - low) / np.maximum(high - low, 1e-12)


def _plain_or_gradient(r, q, m: int, rng: np.random.Generator) -> np.ndarray:
    """m backgrounds for a shape: one tone, or (half the time) a linear gradient."""
    start, end = _two_tones(rng, m)
    plain = rng.random(m) < 0.5
    gradients = _linear_gradients(r, q, start, end, rng.uniform(0, 2 * np.pi, m))
    return np.where(_column(plain), _column(start), gradients)


def _coverage(signed_distance: np.ndarray, side: int) -> np.ndarray:
    """The share of each pixel inside a shape, from the signed distance of its centre to the shape's edge (in
    fractions of the side, negative inside): a one-pixel-wide linear ramp, so edges are anti-aliased."""
    return np.clip(0.5 - signed_distance * side, 0, 1)


def _non_hands_of_kind(kind: str, m: int, r: np.ndarray, q: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """m ≥ 1 images (m, side, side) of ``kind``, on the pixel-centre grids r, q in (0, 1)."""
    side = len(r)
    if kind == "flat":
        tones = rng.uniform(0, 1, m)
        tones[:3] = (0.0, 1.0, 0.5)[: min(m, 3)]  # black, white and mid-grey first
        return np.broadcast_to(_column(tones), (m, side, side))
    if kind == "linear gradient":
        return _linear_gradients(r, q, *_two_tones(rng, m), rng.uniform(0, 2 * np.pi, m))
    if kind == "radial gradient":
        inner, outer = _two_tones(rng, m)
        centres = rng.uniform(0.2, 0.8, (m, 2))
        distance = np.hypot(r - _column(centres[:, 0]), q - _column(centres[:, 1]))
        return _column(inner) + _column(outer - inner) * distance / distance.max(axis=(1, 2), keepdims=True)
    if kind == "uniform noise":
        low, high = np.sort(np.stack(_two_tones(rng, m)), axis=0)
        return rng.uniform(_column(low), _column(high), (m, side, side))
    if kind == "gaussian noise":
        tones, spreads = rng.uniform(0.2, 0.8, m), rng.uniform(0.05, 0.3, m)
        return _column(tones) + _column(spreads) * rng.standard_normal((m, side, side))
    if kind in ("disc", "square", "ring"):
        base = _plain_or_gradient(r, q, m, rng)
        tones = rng.uniform(0, 1, m)
        unlike = np.abs(base - _column(tones)).mean(axis=(1, 2)) >= 0.3  # the shape stands out from its background
        while not unlike.all():
            redraw = np.flatnonzero(~unlike)
            tones[redraw] = rng.uniform(0, 1, len(redraw))
            unlike[redraw] = np.abs(base[redraw] - _column(tones[redraw])).mean(axis=(1, 2)) >= 0.3
        size = rng.uniform(0.15, 0.4, m)  # the radius or half-width, as a fraction of the side
        reach = (0.5 - size) * 0.8  # how far the centre may lie from the frame's
        centre_r, centre_q = (_column(rng.uniform(0.5 - reach, 0.5 + reach)) for _ in range(2))
        if kind == "disc":
            distance = np.hypot(r - centre_r, q - centre_q) - _column(size)
        elif kind == "square":
            distance = np.maximum(np.abs(r - centre_r), np.abs(q - centre_q)) - _column(size)
        else:
            width = size * rng.uniform(0.1, 0.25, m)
            distance = np.abs(np.hypot(r - centre_r, q - centre_q) - _column(size * 0.75)) - _column(width)
        inside = _coverage(distance, side)
        return (1 - inside) * base + inside * _column(tones)
    if kind == "checkerboard":
        low, high = _two_tones(rng, m)
        cells = _column(rng.integers(2, max(3, side // 4) + 1, m))
        rows, columns = np.meshgrid(np.arange(side), np.arange(side), indexing="ij")
        return np.where((rows // cells + columns // cells) % 2 == 0, _column(low), _column(high))
    if kind == "stripes":
        low, high = _two_tones(rng, m)
        angles, periods = rng.uniform(0, np.pi, m), rng.uniform(3, max(4, side / 3), m) / side
        phase = (r * _column(np.sin(angles)) + q * _column(np.cos(angles))) / _column(periods)
        return _column(low) + _column(high - low) * (0.5 + 0.5 * np.sin(2 * np.pi * phase))
    if kind == "blobs":
        blobs = _unit_blobs(rng, m, side, rng.uniform(1.5, max(2.0, side / 6), m))  # a blob size per image
        return _column(rng.uniform(0.3, 0.7, m)) + _column(rng.uniform(0.1, 0.25, m)) * blobs
    raise AssertionError(kind)  # every kind is handled above


# --- synthetic images with the statistics of photos ----------------------------------------------------------------
NATURAL_KINDS = (
    "pink noise",  # random phases under a power-law amplitude spectrum, as in photos of the world ("pink" loosely:
    # the amplitude falls as 1/f^a, the power as 1/f^2a, where strict pink noise's power falls as 1/f)
    "dead leaves",  # opaque discs of random tones and sizes dropped on one another: things in front of things
)
PINK_EXPONENTS = (0.8, 1.6)  # the range of a in the amplitude spectrum 1/f^a (photos of the world: a ≈ 1)
DEAD_LEAVES_PER_PIXEL = 60 / 28**2  # discs dropped per pixel of the frame: 60 on a 28-pixel side


def natural_images(n: int, side: int, seed: int = 0) -> np.ndarray:
    """n synthetic images with two statistics that photos of the world share and non_hands' kinds lack, as rows
    (n, side²) float32 in [0, 1]: the kinds of NATURAL_KINDS in turn, drawn from np.random.default_rng(seed).

    - "pink noise": a photo's Fourier amplitude falls about as 1/f with the spatial frequency f, at every scale
      (Field 1987; van der Schaaf & van Hateren 1996). Here: white Gaussian noise given the amplitude spectrum
      1/f^a, a uniform in PINK_EXPONENTS (a larger a: smoother), then a random tone and spread (clipped).
    - "dead leaves" (Matheron 1968; Lee, Mumford & Huang 2001): the world is made of things that hide one another,
      of every size. ``dead_leaves_count(side)`` opaque discs of uniform random tones fall on a random tone, each
      hiding what lies under it, their radii of density ∝ r⁻³ between one pixel and half the side
      (scale-invariant: ``_power_law``). They do not cover the frame: about half of it keeps the ground's tone, a
      few things of every size in front of a plain wall, at any side (the count grows with the frame's area).

    Neither is a photo, nor holds a hand: put behind a hand they stand for a person, a shelf or a rough wall, and
    as non-hands they teach the refusal that such images are no hand (train.natural_images)."""
    rng = np.random.default_rng(seed)
    kinds = np.array([NATURAL_KINDS[i % len(NATURAL_KINDS)] for i in range(n)])
    images = np.empty((n, side, side))
    pink, leaves = np.flatnonzero(kinds == "pink noise"), np.flatnonzero(kinds == "dead leaves")
    images[pink] = _pink_noise(rng, len(pink), side)
    images[leaves] = _dead_leaves(rng, len(leaves), side)
    return _finish(images.reshape(n, side * side))


def _pink_noise(rng: np.random.Generator, m: int, side: int) -> np.ndarray:
    """m images (m, side, side) of "pink noise" (natural_images), each scaled to a tone uniform in [0.15, 0.85]
    and a spread uniform in [0.08, 0.3] (natural_images then clips them to [0, 1]: a few per cent of the pixels, as
    a photo's over- and under-exposed parts)."""
    exponents = rng.uniform(*PINK_EXPONENTS, m)
    noise = rng.standard_normal((m, side, side))
    frequency = np.hypot(np.fft.fftfreq(side)[:, None], np.fft.rfftfreq(side)[None, :])  # cycles per pixel
    frequency[0, 0] = 1.0  # the mean: its amplitude is set by the tone below
    shaped = np.fft.irfft2(np.fft.rfft2(noise) / frequency ** _column(exponents), s=(side, side))
    spread = np.maximum(shaped.std(axis=(1, 2), keepdims=True), 1e-12)
    unit = (shaped - shaped.mean(axis=(1, 2), keepdims=True)) / spread
    return _column(rng.uniform(0.15, 0.85, m)) + _column(rng.uniform(0.08, 0.3, m)) * unit


def _power_law(rng: np.random.Generator, size, low: float, high: float) -> np.ndarray:
    """Draws of density ∝ r⁻³ on [low, high], by inverting its distribution function
    F(r) = (low⁻² − r⁻²) / (low⁻² − high⁻²)."""
    u = rng.random(size)
    return (low**-2 - u * (low**-2 - high**-2)) ** -0.5


def dead_leaves_count(side: int) -> int:
    """How many discs fall on a "dead leaves" image of ``side`` pixels: DEAD_LEAVES_PER_PIXEL of its area, at
    least one."""
    return max(1, round(DEAD_LEAVES_PER_PIXEL * side * side))


def _dead_leaves(rng: np.random.Generator, m: int, side: int) -> np.ndarray:
    """m images (m, side, side) of "dead leaves" (natural_images): the discs fall one after another, each on top;
    a centre may lie up to a quarter side outside the frame, so that the frame cuts discs as a photo cuts things."""
    centres = np.arange(side) + 0.5  # of the pixels, along a row or a column
    images = np.broadcast_to(_column(rng.uniform(0, 1, m)), (m, side, side)).copy()
    for _ in range(dead_leaves_count(side)):
        radius = _power_law(rng, m, 1.0, side / 2)
        centre_r, centre_q = (rng.uniform(-side / 4, side * 5 / 4, m)[:, None] for _ in range(2))
        squared_distance = ((centres - centre_r) ** 2)[:, :, None] + ((centres - centre_q) ** 2)[:, None, :]
        np.copyto(images, _column(rng.uniform(0, 1, m)), where=squared_distance < _column(radius) ** 2)
    return images
