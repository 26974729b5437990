"""Photos to the network's input: the picture a viewer would show, in grayscale, square, image_size².

The steps, in the order a viewer applies them:
1. EXIF orientation (phones store portrait shots sideways with an orientation tag);
2. the embedded colour profile, converted to sRGB (most photos of this dataset are Display P3);
3. transparency composited over white, palette and 16-bit modes expanded;
4. luma grayscale (ITU-R 601), a centred square crop (no-op for the dataset's square photos), and a
   Lanczos resize, which low-pass filters before it subsamples (no aliasing on a 3024-pixel photo).

A JPEG far larger than needed is decoded at a reduced DCT scale, as viewers do for thumbnails, but never below
twice the target size, so the Lanczos filter still does the final anti-aliasing. On the dataset this changes no
pixel by more than one grey level and saves most of the decoding of the largest photos (3024 pixels wide).
"""

import io
import warnings
from functools import lru_cache

import numpy as np
from PIL import Image, ImageCms, ImageOps, UnidentifiedImageError

from signdigits.errors import UsageError
from signdigits.files import NotAFileError, open_regular, read_capped

SRGB = ImageCms.createProfile("sRGB")
# The most pixels a photo may have; its header is checked before it is decoded. Phones' default photos have
# 12–50 megapixels; the dataset's largest is 3024 × 3024 (9.1 megapixels).
MAX_PIXELS = 50_000_000
# The most bytes a photo file may have (the dataset's largest is 1.6 MB); as dataset.MAX_PHOTO_BYTES.
MAX_PHOTO_BYTES = 64 * 2**20


@lru_cache(maxsize=16)
def _to_srgb_transform(icc_profile: bytes, mode: str):
    source = ImageCms.ImageCmsProfile(io.BytesIO(icc_profile))
    return ImageCms.buildTransform(source, SRGB, mode, mode)


def _as_displayed(image: Image.Image) -> Image.Image:
    """RGB or L image in sRGB, as a viewer would display ``image`` (orientation, profile, transparency)."""
    image = ImageOps.exif_transpose(image)
    if image.mode in ("I;16", "I;16L", "I;16B", "I;16N", "I"):
        wide = np.asarray(image, dtype=np.float64)
        top = 65535.0 if image.mode.startswith("I;16") or wide.max() > 255 else 255.0
        image = Image.fromarray(np.clip(wide / top * 255.0 + 0.5, 0, 255).astype(np.uint8), "L")
    elif image.mode == "F":
        image = Image.fromarray(np.clip(np.asarray(image) * 255.0 + 0.5, 0, 255).astype(np.uint8), "L")
    if image.mode == "P" or "transparency" in image.info:
        image = image.convert("RGBA")
    if image.mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        rgba = image.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        image = Image.alpha_composite(white, rgba).convert("RGB")
    if image.mode not in ("RGB", "L"):
        image = image.convert("RGB")  # CMYK, YCbCr, LAB, 1-bit …
    icc_profile = image.info.get("icc_profile")
    if icc_profile:
        try:
            transform = _to_srgb_transform(icc_profile, image.mode)
        except (ImageCms.PyCMSError, OSError, TypeError, ValueError):
            transform = None  # an unreadable profile is ignored, as viewers do
        if transform is not None:
            image = ImageCms.applyTransform(image, transform)
    return image


def to_network_input(image: Image.Image, image_size: int) -> np.ndarray:
    """Grayscale uint8 array of shape (image_size, image_size) from a PIL image."""
    gray = _as_displayed(image).convert("L")
    width, height = gray.size
    side = min(width, height)
    left, top = (width - side) // 2, (height - side) // 2
    square = gray.crop((left, top, left + side, top + side))
    resized = square.resize((image_size, image_size), Image.Resampling.LANCZOS)
    return np.asarray(resized, dtype=np.uint8)


def _read_file(path, name: str) -> bytes:
    """A photo file's bytes: a regular file (a FIFO would block, /dev/zero never end) of at most MAX_PHOTO_BYTES."""
    with open_regular(path) as file:
        data = read_capped(file, MAX_PHOTO_BYTES)
    if data is None:
        raise UsageError(f"{name} is more than the limit of {MAX_PHOTO_BYTES // 2**20} MiB for one photo; shrink it")
    return data


class TooSmall(UsageError):
    """The photo is smaller than the caller's ``min_side``: not an unreadable photo, one too small to use."""


def read_photo(source, image_size: int, name: str, min_side: int = 1) -> np.ndarray:
    """Decode a photo (a path, or bytes) to the network's grayscale input; ``name`` is used in errors. A photo
    whose shorter side has fewer than ``min_side`` pixels raises TooSmall (before it is decoded)."""
    try:
        stream = io.BytesIO(source if isinstance(source, bytes) else _read_file(source, name))
        # Pillow warns, on stderr, of images above its own limit: an error. Its other warnings (corrupt EXIF,
        # a truncated tag) concern what it skipped and still shows: silenced, as a viewer does.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(stream) as image:
                _check_pixels(image.size, name)
                if min(image.size) < min_side:
                    width, height = image.size
                    raise TooSmall(
                        f"{width}×{height} pixels is too small to show a hand (under {min_side} pixels a side)"
                    )
                image.draft(image.mode, (2 * image_size, 2 * image_size))  # JPEG only; other formats ignore it
                image.load()  # decode fully now: a truncated file fails here, not later
                return to_network_input(image, image_size)
    except FileNotFoundError:
        raise UsageError(f"{name}: no such file; check the path") from None
    except IsADirectoryError:
        raise UsageError(f"{name} is a folder, not a photo; name the photos in it") from None
    except NotAFileError as error:
        raise UsageError(f"{name} {error.strerror}; give a photo file (JPEG or PNG)") from None
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):  # Pillow's limits, above ours
        raise UsageError(f"{name} is larger than the limit of {MAX_PIXELS:,} pixels; shrink it") from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as error:
        reason = "not an image Pillow can read" if isinstance(error, UnidentifiedImageError) else error
        raise UsageError(f"{name} is corrupt or not an image ({reason}); remove or replace that file") from None
    except UsageError:
        raise
    except Exception as error:  # Pillow's parsers on hostile bytes: struct.error, TypeError … from malformed EXIF
        reason = f"{type(error).__name__}: {error}"
        raise UsageError(f"{name} is corrupt or not an image ({reason}); remove or replace that file") from None


def _check_pixels(size, name: str) -> None:
    width, height = size
    if width * height > MAX_PIXELS:
        raise UsageError(f"{name} is {width}×{height} pixels, more than the limit of {MAX_PIXELS:,}; shrink it")


def read_photos(contents: list[bytes], names: list[str], image_size: int) -> np.ndarray:
    """``read_photo`` of every photo, as rows (N, image_size²), in the order of ``contents``. One photo after
    another: a pool of processes was measured no faster on the dataset on a shared two-core machine."""
    return np.stack([read_photo(content, image_size, name).reshape(-1) for content, name in zip(contents, names)])
