"""Tiny image files made by the tests: trees of JPEG and PNG photos of mixed sizes and modes."""

import io
import zipfile
from pathlib import Path

import numpy as np
from PIL import Image


def luma(rgb) -> float:
    """ITU-R 601-2 luma, the grayscale a viewer's 'L' conversion gives."""
    r, g, b = rgb
    return 0.299 * r + 0.587 * g + 0.114 * b


def half_image(size, bright_side: str, mode="RGB", bright=230, dark=20):
    """An image bright on one side ('left', 'right', 'top' or 'bottom') and dark on the other."""
    width, height = size
    pixels = np.full((height, width), dark, dtype=np.uint8)
    if bright_side == "left":
        pixels[:, : width // 2] = bright
    elif bright_side == "right":
        pixels[:, width // 2 :] = bright
    elif bright_side == "top":
        pixels[: height // 2] = bright
    else:
        pixels[height // 2 :] = bright
    image = Image.fromarray(pixels, "L")
    return image.convert(mode) if mode != "L" else image


# digit → which side is bright: easy to tell apart, and each ingested row can be checked
PATTERN = {"0": "left", "5": "right", "3": "top"}
SIZES = [(100, 100), (64, 64), (120, 90), (50, 50)]


def make_tree(root: Path, digits=("0", "5", "3"), per_digit=6, nested=True) -> Path:
    """A dataset tree (root/Dataset/<digit>/...) mixing RGB JPEG, L / RGBA / P PNG of several sizes."""
    base = root / "Dataset" if nested else root
    for digit in digits:
        folder = base / digit
        folder.mkdir(parents=True, exist_ok=True)
        for i in range(per_digit):
            size = SIZES[i % len(SIZES)]
            kind = i % 4
            image = half_image(size, PATTERN[digit])
            if kind == 0:
                image.save(folder / f"IMG_{i}.JPG", quality=95)
            elif kind == 1:
                image.convert("L").save(folder / f"img_{i}.png")
            elif kind == 2:
                image.convert("RGBA").save(folder / f"img_{i}.png")
            else:
                image.convert("P").save(folder / f"img_{i}.png")
    (base / ".DS_Store").write_bytes(b"\0\1junk")  # hidden files are not photos
    return root


def zip_tree(root: Path, archive: Path, top="Sign-Language-Digits-Dataset-x") -> Path:
    with zipfile.ZipFile(archive, "w") as out:
        for path in sorted(root.rglob("*")):
            out.write(path, f"{top}/{path.relative_to(root).as_posix()}")
    return archive


def jpeg_bytes(image, **save) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=95, **save)
    return buffer.getvalue()
