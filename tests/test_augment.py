import numpy as np
import pytest
from scipy import ndimage

from signdigits import augment
from signdigits import perturbations as P
from signdigits.augment import random_transforms, transform_images
from signdigits.training import augmenter


def transformed(image, offset=(0, 0), angle=0.0, zoom=1.0):
    """One square image through transform_images."""
    side = len(image)
    rows = transform_images(image.reshape(1, -1), np.array([offset]), np.array([angle]), np.array([zoom]))
    return rows.reshape(side, side)


def test_each_image_moves_by_its_own_shift_within_range():
    side, n, s = 9, 200, 2
    X = np.zeros((n, side, side), np.float32)
    X[:, 4, 4] = 1.0  # one bright pixel in the centre of a dark image
    moved = augmenter(s)(X.reshape(n, -1))(np.random.default_rng(0)).reshape(n, side, side)
    offsets = set()
    for image in moved:
        (r,), (c,) = np.nonzero(image)
        assert image.sum() == 1.0  # moved, not blurred or duplicated
        offsets.add((r - 4, c - 4))
    assert offsets == {(dy, dx) for dy in range(-s, s + 1) for dx in range(-s, s + 1)}  # every shift occurs


def test_a_move_repeats_the_edge_and_is_seeded():
    X = np.arange(16, dtype=np.float32).reshape(1, 16)
    a = augmenter(1)(np.repeat(X, 50, axis=0))(np.random.default_rng(3))
    b = augmenter(1)(np.repeat(X, 50, axis=0))(np.random.default_rng(3))
    np.testing.assert_array_equal(a, b)
    assert set(np.unique(a)) <= set(range(16))  # only existing pixel values: edges are repeated, no zeros added
    image = np.arange(25, dtype=np.float32).reshape(5, 5)
    np.testing.assert_array_equal(transformed(image, offset=(0, 2)), np.pad(image, ((0, 0), (0, 2)), "edge")[:, 2:])


def test_whole_pixel_moves_are_scipys_shift_and_a_part_pixel_interpolates():
    # whole-pixel moves alone are indexed, all images at once; anything else is interpolated
    rng = np.random.default_rng(5)
    X = rng.random((40, 100)).astype(np.float32)
    offsets = rng.integers(-4, 5, size=(40, 2))
    moved = transform_images(X, offsets, np.zeros(40), np.ones(40))
    assert moved.dtype == X.dtype
    for image, offset, out in zip(X, offsets, moved):
        expected = ndimage.shift(image.reshape(10, 10), -offset, order=1, mode="nearest")
        np.testing.assert_array_equal(out.reshape(10, 10), expected)
    image = X[0].reshape(10, 10)
    np.testing.assert_allclose(
        transformed(image, offset=(0.5, -1.5)), ndimage.shift(image, (-0.5, 1.5), order=1, mode="nearest"), atol=1e-6
    )


@pytest.mark.parametrize("side, chunk", [(28, 100 * 28**2), (9, 7 * 81), (9, 1)])
def test_turns_zooms_and_part_pixel_moves_are_scipys_affine_transform_per_image(side, chunk, monkeypatch):
    # transform_images interpolates many images at once; scipy, one call per image, is the reference: the same
    # float32 pixels but for rounding (at most one float32 step). 300 images in chunks of 100, of 7 (the last one
    # short) and of one image; zooms down to 0.5 and moves of 6 pixels read far outside the frame.
    monkeypatch.setattr(augment, "CHUNK_PIXELS", chunk)
    rng = np.random.default_rng(8)
    n = 300
    X = rng.random((n, side * side)).astype(np.float32)
    offsets, angles, zooms = rng.uniform(-6, 6, (n, 2)), rng.uniform(-180, 180, n), rng.uniform(0.5, 1.5, n)
    moved = transform_images(X, offsets, angles, zooms)
    assert moved.dtype == X.dtype and moved.shape == X.shape
    centre = np.full(2, (side - 1) / 2)
    for image, out, offset, angle, zoom in zip(X, moved, offsets, np.radians(angles), zooms):
        M = np.array([[np.cos(angle), np.sin(angle)], [-np.sin(angle), np.cos(angle)]]) / zoom
        expected = ndimage.affine_transform(
            image.reshape(side, side), M, offset=centre + M @ (offset - centre), order=1, mode="nearest"
        )
        np.testing.assert_array_max_ulp(out.reshape(side, side), expected, maxulp=1)


@pytest.mark.parametrize("angle", [90.0, 30.0, -17.0, 4.5])
def test_a_turn_is_scipys_rotate_about_the_centre(angle):
    image = np.random.default_rng(1).random((9, 9)).astype(np.float32)
    expected = ndimage.rotate(image, angle, reshape=False, order=1, mode="nearest")
    np.testing.assert_allclose(transformed(image, angle=angle), expected, atol=1e-6)


def test_a_quarter_turn_is_counterclockwise_as_shown():
    image = np.random.default_rng(2).random((7, 7)).astype(np.float32)
    np.testing.assert_allclose(transformed(image, angle=90.0), np.rot90(image), atol=1e-6)


def test_the_move_comes_after_the_turn_and_the_zoom():
    image = np.zeros((9, 9), np.float32)
    image[4, 6] = 1.0  # two pixels right of the centre (4, 4)
    # turned a quarter counterclockwise: two pixels above the centre, (2, 4); zoomed 1.5 times: at 4 − 3 = 1;
    # then moved by −offset = (0, −2): (1, 2)
    moved = transformed(image, offset=(0, 2), angle=90.0, zoom=1.5)
    assert moved[1, 2] == pytest.approx(1.0) and moved.argmax() == 1 * 9 + 2


def test_a_zoom_magnifies_about_the_centre_by_bilinear_interpolation():
    image = np.zeros((9, 9), np.float32)
    image[4, 5] = 1.0  # one pixel right of the centre (4, 4)
    zoomed = transformed(image, zoom=2.0)
    # output (4, 6) shows the input at 4 + (6 − 4) / 2 = 5; output (4, 7) the input at 5.5, half of that pixel
    assert zoomed[4, 6] == 1.0 and zoomed[4, 7] == 0.5 and zoomed[4, 5] == 0.5
    assert zoomed.sum() == pytest.approx(4.0)  # the pixel now covers twice the width and height: (0.5 + 1 + 0.5)²
    image = np.zeros((9, 9), np.float32)
    image[4, 6] = 1.0
    shrunk = transformed(image, zoom=0.5)  # output (4, 5) shows the input at 4 + (5 − 4) / 0.5 = 6
    assert shrunk[4, 5] == 1.0 and shrunk.sum() == 1.0


def test_random_transforms_cover_their_ranges_and_draw_nothing_for_a_zero_range():
    offsets, angles, zooms = random_transforms(4000, 2, 10.0, 0.1, np.random.default_rng(4))
    assert set(map(tuple, offsets)) == {(r, c) for r in range(-2, 3) for c in range(-2, 3)}
    assert -10 <= angles.min() < -9.9 and 9.9 < angles.max() <= 10
    assert 0.9 <= zooms.min() < 0.901 and 1.099 < zooms.max() <= 1.1
    rng = np.random.default_rng(5)
    offsets, angles, zooms = random_transforms(10, 0, 0.0, 0.0, rng)
    assert not offsets.any() and not angles.any() and (zooms == 1).all()
    assert rng.random() == np.random.default_rng(5).random()  # nothing drawn


def test_augmenter_keeps_the_rows_type_and_is_off_at_zero():
    X = np.random.default_rng(6).random((3, 49)).astype(np.float32)
    changed = augmenter(1, 15.0, 0.2)(X)(np.random.default_rng(7))
    assert changed.dtype == X.dtype and changed.shape == X.shape and not np.array_equal(changed, X)
    assert augmenter(0) is None and augmenter(0, 0.0, 0.0) is None  # fit's "no augmentation"


def test_mirror_and_background_augmentation_change_what_they_say():
    """augment_mirror: each image as it is or mirrored, both seen; augment_background: each image as it is or
    changed on its background only (the hand's pixels stay), both seen."""
    side = 16
    hand = np.ones((side, side), np.float32) * 0.9  # a light wall …
    hand[4:14, 5:9] = 0.3  # … and a dark, lopsided "hand"
    hand[4:7, 9:12] = 0.3
    X = np.repeat(hand.reshape(1, -1), 40, axis=0)
    mirrored = augmenter(0, mirror=True)(X)(np.random.default_rng(1))
    flipped = np.array([row.reshape(side, side)[:, ::-1].ravel() for row in X])
    same, flip = (mirrored == X).all(axis=1), (mirrored == flipped).all(axis=1)
    assert (same | flip).all() and 5 < flip.sum() < 35
    changed = augmenter(0, background=True)(X)(np.random.default_rng(2))
    untouched = (changed == X).all(axis=1)
    assert 5 < untouched.sum() < 35
    hand_pixels = hand.ravel() < 0.5
    np.testing.assert_array_equal(changed[:, hand_pixels], X[:, hand_pixels])
    assert (np.abs(changed[~untouched][:, ~hand_pixels] - 0.9).mean(axis=1) > 0).all()


def test_busy_backgrounds_are_non_hands_blended_behind_the_hand():
    """augment_busy_background: of the photos given another background, that share get a synthetic non-hand image
    behind the hand instead of a darker wall (natural_images: that share of them one with a photo's statistics), in
    the documented order of draws; 0 draws nothing more."""
    side, n = 16, 40
    hand = np.ones((side, side), np.float32) * 0.9
    hand[4:14, 5:9] = 0.3
    hand[4:7, 9:12] = 0.3
    X = np.repeat(hand.reshape(1, -1), n, axis=0)
    masks = P.background_mask(X)
    for share, natural in ((0.0, 0.0), (0.5, 0.0), (1.0, 0.0), (0.5, 0.5)):
        epoch = augmenter(0, background=True, busy_share=share, natural_share=natural)(X)(np.random.default_rng(2))
        draws = np.random.default_rng(2)
        given = np.flatnonzero(draws.random(n) < 0.5)
        busy = given[draws.random(len(given)) < share] if share else given[:0]
        walls = np.setdiff1d(given, busy)
        expected = X.copy()
        expected[walls] = P.background(X[walls], draws.random(len(walls)), draws, masks[walls])
        if share:
            new = P.non_hands(len(busy), side, seed=int(draws.integers(2**32)))
            if natural:  # train.natural_images: some of them images with a photo's statistics instead
                chosen = np.flatnonzero(draws.random(len(busy)) < natural)
                new[chosen] = P.natural_images(len(chosen), side, seed=int(draws.integers(2**32)))
                assert 0 < len(chosen) < len(busy)
            expected[busy] = P.replace_background(X[busy], new, draws.random(len(busy)), masks[busy])
        np.testing.assert_array_equal(epoch, expected)
        np.testing.assert_array_equal(epoch[:, hand.ravel() < 0.5], X[:, hand.ravel() < 0.5])  # the hand stays
        assert (0 < len(busy) < len(given)) if share == 0.5 else len(busy) == share * len(given)
    rows = np.arange(0, n, 3)  # an epoch's draw of some rows (other hands): as if those rows were all there is
    some = augmenter(0, background=True, busy_share=0.5)(X)(np.random.default_rng(4), rows)
    np.testing.assert_array_equal(
        some, augmenter(0, background=True, busy_share=0.5)(X[rows])(np.random.default_rng(4))
    )


def test_masks_found_once_give_the_epochs_that_masks_found_every_epoch_give():
    """Without moves, the augmenter finds the photos' background masks once and mirrors them with their photos;
    its epochs are those of the same draws with every mask found from the epoch's own images."""
    side, n = 16, 30
    rng = np.random.default_rng(8)
    r, q = np.meshgrid(np.arange(side), np.arange(side), indexing="ij")
    X = np.empty((n, side * side), np.float32)
    for image in X:  # a light, unevenly lit wall and a dark, lopsided "hand" somewhere on it
        wall = 0.9 - 0.1 * rng.random() * (q / side)
        row, column = rng.integers(4, 12, 2)
        hand = ((np.abs(r - row) < 4) & (np.abs(q - column) < 2)) | ((np.abs(r - row + 2) < 2) & (q - column == 2))
        image[:] = np.where(hand, 0.25, wall).ravel() + rng.normal(0, 0.01, side * side)
    families = ("occlude", "background", "blur")
    for seed in range(3):
        epoch = augmenter(0, mirror=True, families=families)(X)(np.random.default_rng(seed))
        draws = np.random.default_rng(seed)
        flipped = draws.random(n)[:, None] < 0.5
        expected = np.where(flipped, P.mirror(X), X)
        expected = P.random_perturbations(expected, draws, families, 3)  # masks found from the images themselves
        np.testing.assert_array_equal(epoch, expected)
        assert not np.array_equal(epoch, X)


def test_an_occlusion_covers_the_hand_where_the_move_took_it():
    """With moves, each photo's background mask moves with it: an occluding square is centred on a pixel of the
    hand as it lies in the moved photo (found from the same draws), not where it lay before the move."""
    side, n = 24, 200
    r, q = np.meshgrid(np.arange(side), np.arange(side), indexing="ij")
    hand = ((np.abs(r - 12) < 3) & (np.abs(q - 12) < 2)) | ((r == 10) & (q >= 13) & (q < 17))  # dark, lopsided
    X = np.repeat(np.where(hand, 0.2, 0.9).reshape(1, -1).astype(np.float32), n, axis=0)
    epoch = augmenter(4, mirror=True, families=("occlude",), severity=5)(X)(np.random.default_rng(0))
    draws = np.random.default_rng(0)
    moved = transform_images(X, *random_transforms(n, 4, 0.0, 0.0, draws))
    flipped = draws.random(n)[:, None] < 0.5
    moved = np.where(flipped, P.mirror(moved), moved)
    moved_hands = moved.reshape(n, side, side) < 0.5
    covered = 0
    for before, after, moved_hand in zip(moved.reshape(n, side, side), epoch.reshape(n, side, side), moved_hands):
        rows, columns = np.nonzero(before != after)
        if len(rows) == 0:
            continue  # left clean, or a square of the tone it covered
        width = rows.max() - rows.min() + 1
        centre = rows.min() + width // 2, columns.min() + width // 2  # as occlude places it
        assert moved_hand[centre], "the square is centred off the moved hand"
        covered += 1
    assert covered > 50  # about half the photos are occluded
