"""Photos are read as a viewer shows them; each check has an expected value worked out independently."""

import io

import numpy as np
import pytest
from PIL import Image, ImageCms

from signdigits.errors import UsageError
from signdigits.images import read_photo


def png_bytes(image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def test_uniform_colour_becomes_its_luma(luma):
    colour = (200, 100, 50)
    pixels = read_photo(png_bytes(Image.new("RGB", (40, 40), colour)), 8, "x.png")
    assert pixels.shape == (8, 8) and pixels.dtype == np.uint8
    assert np.all(np.abs(pixels.astype(int) - luma(colour)) <= 1)


def test_exif_orientation_is_applied(half_image, jpeg_bytes):
    # What a viewer shows: bright top half. Orientation 6 means "rotate 90° clockwise to display", so the
    # file stores the picture turned 90° counter-clockwise.
    shown = half_image((60, 60), "top", bright=255, dark=0)
    stored = shown.transpose(Image.Transpose.ROTATE_90)
    exif = Image.Exif()
    exif[0x0112] = 6
    pixels = read_photo(jpeg_bytes(stored, exif=exif), 10, "rotated.jpg").astype(int)
    assert pixels[:4].mean() > 200 and pixels[6:].mean() < 50
    unrotated = read_photo(jpeg_bytes(stored), 10, "plain.jpg").astype(int)
    assert unrotated[:, :4].mean() > 200 or unrotated[:, 6:].mean() > 200  # without the tag: sideways


def test_transparency_is_shown_over_white():
    image = Image.new("RGBA", (20, 20), (0, 0, 0, 0))  # fully transparent black
    image.paste((0, 0, 0, 255), (0, 0, 10, 20))  # opaque black left half
    pixels = read_photo(png_bytes(image), 20, "alpha.png")
    assert pixels[:, :10].max() == 0 and pixels[:, 10:].min() == 255


def test_half_transparent_grey_blends_with_white():
    pixels = read_photo(png_bytes(Image.new("LA", (16, 16), (0, 128))), 8, "la.png")
    expected = 255 * (1 - 128 / 255)  # black at alpha 128/255 over white
    assert np.all(np.abs(pixels.astype(float) - expected) <= 1)


def test_palette_and_sixteen_bit_images(luma):
    palette = Image.new("RGB", (30, 30), (10, 200, 30)).convert("P")
    pixels = read_photo(png_bytes(palette), 8, "p.png")
    r, g, b = palette.convert("RGB").getpixel((0, 0))
    assert abs(int(pixels[0, 0]) - luma((r, g, b))) <= 1
    deep = Image.fromarray(np.full((12, 12), 32768, dtype=np.uint16))
    assert abs(int(read_photo(png_bytes(deep), 8, "16.png")[0, 0]) - 128) <= 1


def test_non_square_photo_is_centre_cropped_not_squashed():
    # 90 wide, 30 high: the centre square is columns 30–59, bright; the sides are dark.
    pixels = np.zeros((30, 90), dtype=np.uint8)
    pixels[:, 30:60] = 255
    out = read_photo(png_bytes(Image.fromarray(pixels, "L")), 10, "wide.png")
    assert out.min() >= 250


def test_downscaling_is_antialiased():
    # A 1-pixel checkerboard averages to mid-grey under a low-pass filter; plain subsampling would give
    # pure black or white.
    board = (np.indices((200, 200)).sum(axis=0) % 2 * 255).astype(np.uint8)
    out = read_photo(png_bytes(Image.fromarray(board, "L")), 10, "board.png").astype(int)
    assert np.all(np.abs(out - 127.5) < 10)


def srgb_encode(linear):
    return np.where(linear <= 0.0031308, 12.92 * linear, 1.055 * linear ** (1 / 2.4) - 0.055)


def srgb_decode(encoded):
    return np.where(encoded <= 0.04045, encoded / 12.92, ((encoded + 0.055) / 1.055) ** 2.4)


def test_display_p3_photo_is_converted_to_srgb(real_data, luma):
    """A colour in Display P3 is shown as the sRGB colour of the same appearance. Reference: the published
    linear P3-D65 → sRGB matrix; both spaces share the sRGB transfer curve."""
    photo = next((real_data / "Dataset" / "0").glob("*.JPG"))
    p3_profile = Image.open(photo).info["icc_profile"]
    assert "P3" in ImageCms.getProfileDescription(ImageCms.ImageCmsProfile(io.BytesIO(p3_profile)))
    colour = np.array([220, 40, 40])  # in P3; in sRGB about (240, 0, 21)
    image = Image.new("RGB", (16, 16), tuple(int(c) for c in colour))
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", icc_profile=p3_profile)
    p3_to_srgb = np.array([[1.2249, -0.2247, 0.0], [-0.0420, 1.0419, 0.0], [-0.0197, -0.0786, 1.0979]])
    srgb = 255 * srgb_encode(np.clip(p3_to_srgb @ srgb_decode(colour / 255), 0, 1))
    expected = luma(srgb)
    got = float(read_photo(buffer.getvalue(), 4, "p3.png").mean())
    assert abs(got - expected) <= 2.0
    assert abs(luma(colour) - expected) > 10  # the conversion matters: without it the check would fail


@pytest.mark.parametrize("content", [b"", b"not an image at all", "the first 200 bytes of a JPEG"])
def test_corrupt_or_non_image_names_the_file(content, jpeg_bytes):
    if content == "the first 200 bytes of a JPEG":
        content = jpeg_bytes(Image.new("RGB", (50, 50)))[:200]
    with pytest.raises(UsageError, match=r"Dataset/0/bad.JPG is corrupt or not an image .*remove or replace"):
        read_photo(content, 8, "Dataset/0/bad.JPG")
