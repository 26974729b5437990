"""augment.affine_bilinear (transform_images' turns, zooms and part-pixel moves, interpolated for many images at
once) against the plain way, scipy.ndimage.affine_transform called once per image, on identical work.

    SIGN_DIGITS_DATA=/path/to/dataset python benchmarks/augment_speed.py [--epochs 3] [--repeats 2]

1. One epoch's turns and zooms of the ten-digit training photos, drawn as the README's ten-digit CNN line draws
   them (augment_shift, augment_rotate, augment_zoom): both ways, alternating, --repeats times each after a first
   call each; the largest difference between their images.
2. The fit of each README model (the default params, the ten-digit CNN line) for --epochs epochs with the one and the
   other (the plain version put in place of augment.affine_bilinear, which transform_images calls),
   alternating: wall and CPU seconds, and the last batch's loss of each. The two interpolations round to float32
   alike but for about one pixel in 10⁸ (one float32 step, from the order of the float64 operations), which is
   enough for a long fit to end in a slightly different network.

OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE: if either is set, this script starts itself again once with both unset, for its
own command only, and prints the BLAS kernel in use; tests and CI never touch them.
"""

import os
import sys

BLAS_VARIABLES = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")
if any(name in os.environ for name in BLAS_VARIABLES):  # before NumPy loads OpenBLAS, which reads them once
    print(f"unsetting {', '.join(name for name in BLAS_VARIABLES if name in os.environ)} for this benchmark")
    os.execve(
        sys.executable, [sys.executable, *sys.argv], {k: v for k, v in os.environ.items() if k not in BLAS_VARIABLES}
    )

import argparse  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402
from common import blas_kernel, readme_configuration, real_other_hands, real_split  # noqa: E402
from scipy.ndimage import affine_transform  # noqa: E402

from signdigits import augment, training  # noqa: E402
from signdigits.augment import affine_bilinear, random_transforms  # noqa: E402

MODELS = {"default": None, "ten-digits-cnn": "dvc exp run -n ten-digits-cnn "}  # README line each model comes from


def plain_affine_bilinear(X, offsets, angles, zooms):
    """affine_bilinear as scipy does it, one affine_transform per image (the same M and offset)."""
    side = int(round(np.sqrt(X.shape[1])))
    moved, centre = np.empty_like(X), np.full(2, (side - 1) / 2)
    for image, out, offset, angle, zoom in zip(X, moved, np.asarray(offsets, float), np.radians(angles), zooms):
        M = np.array([[np.cos(angle), np.sin(angle)], [-np.sin(angle), np.cos(angle)]]) / zoom
        affine_transform(
            image.reshape(side, side),
            M,
            offset=centre + M @ (offset - centre),
            output=out.reshape(side, side),
            order=1,
            mode="nearest",
        )
    return moved


def seconds(function, *arguments):
    """(wall, CPU) seconds of one call, and its result."""
    wall, cpu = time.perf_counter(), time.process_time()
    result = function(*arguments)
    return np.array([time.perf_counter() - wall, time.process_time() - cpu]), result


def using(interpolation):
    """Put ``interpolation`` where transform_images calls affine_bilinear."""
    augment.affine_bilinear = interpolation


def one_epoch(repeats):
    """Part 1: (seconds batched, seconds plain, largest difference) over ``repeats`` alternating pairs."""
    params = readme_configuration(MODELS["ten-digits-cnn"])
    X, _, _, _ = real_split(params["filter"]["classes"])
    train = params["train"]
    moves = random_transforms(
        len(X), train["augment_shift"], train["augment_rotate"], train["augment_zoom"], np.random.default_rng(0)
    )
    totals = {affine_bilinear: np.zeros(2), plain_affine_bilinear: np.zeros(2)}
    results = {function: function(X, *moves) for function in totals}  # a first call each, not timed
    for repeat in range(repeats):
        order = list(totals) if repeat % 2 == 0 else list(totals)[::-1]
        for function in order:
            spent, results[function] = seconds(function, X, *moves)
            totals[function] += spent
    difference = float(np.abs(results[affine_bilinear] - results[plain_affine_bilinear]).max())
    return len(X), train, totals[affine_bilinear] / repeats, totals[plain_affine_bilinear] / repeats, difference


def fits(name, epochs, repeats):
    """Part 2: [(seconds batched, seconds plain)] per alternating pair, and the last batch's loss of each fit, in
    the same order."""
    params = readme_configuration(MODELS[name])
    classes, train = params["filter"]["classes"], params["train"] | {"epochs": epochs}
    X, _, y, _ = real_split(classes)
    X_others, _, _ = real_other_hands(classes)
    others = training.other_hands_to_learn(train, X_others)

    def fit(transform):
        using(transform)
        try:
            spent, (_, history) = seconds(training.train, train, X, y, len(classes), None, others)
        finally:
            using(affine_bilinear)
        return spent, history[-1]["batch_loss"]

    pairs, losses = [], []
    for repeat in range(repeats):
        both = (affine_bilinear, plain_affine_bilinear)
        results = {transform: fit(transform) for transform in (both if repeat % 2 == 0 else both[::-1])}
        pairs.append((results[affine_bilinear][0], results[plain_affine_bilinear][0]))
        losses.append((results[affine_bilinear][1], results[plain_affine_bilinear][1]))
    return pairs, losses


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=3, help="epochs of each fit (default 3)")
    parser.add_argument("--repeats", type=int, default=2, help="alternating pairs (default 2)")
    options = parser.parse_args()
    print(f"BLAS: {blas_kernel()}; {os.cpu_count()} cores")
    n, train, batched, plain, difference = one_epoch(options.repeats)
    print(
        f"one epoch's turns and zooms of {n} photos (shift {train['augment_shift']}, rotate "
        f"{train['augment_rotate']}°, zoom {train['augment_zoom']}), mean of {options.repeats}:\n"
        f"  affine_bilinear {batched[0]:.3f} s (CPU {batched[1]:.3f}), scipy per image {plain[0]:.3f} s "
        f"(CPU {plain[1]:.3f}): {plain[0] / batched[0]:.1f}× as fast; largest difference {difference:.1e}"
    )
    for name in MODELS:
        pairs, losses = fits(name, options.epochs, options.repeats)
        each = ", ".join(f"{ours[0]:.1f}/{theirs[0]:.1f}" for ours, theirs in pairs)
        saved = [1 - ours[0] / theirs[0] for ours, theirs in pairs]
        cpu_saved = [1 - ours[1] / theirs[1] for ours, theirs in pairs]
        apart = max(abs(ours - theirs) for ours, theirs in losses)
        print(
            f"{name}: fit of {options.epochs} epochs, seconds with affine_bilinear / scipy per image {each}; saves "
            f"{min(saved):.0%}–{max(saved):.0%} of the wall time, {min(cpu_saved):.0%}–{max(cpu_saved):.0%} of the "
            f"CPU time; last batch's loss {losses[0][0]:.6f} / {losses[0][1]:.6f}"
            + (" (the same last-batch loss)" if apart == 0 else f" (apart by up to {apart:.1e})"),
            flush=True,
        )


if __name__ == "__main__":
    main()
