import numpy as np

from signdigits.augment import augmenter, shift_images


def test_each_image_moves_by_its_own_shift_within_range():
    side, n, s = 9, 200, 2
    X = np.zeros((n, side, side), np.float32)
    X[:, 4, 4] = 1.0  # one bright pixel in the centre of a dark image
    moved = shift_images(X.reshape(n, -1), s, np.random.default_rng(0)).reshape(n, side, side)
    rows, columns = np.nonzero(moved.max(axis=0) > 0)
    offsets = set()
    for image in moved:
        (r,), (c,) = np.nonzero(image)
        assert image.sum() == 1.0  # moved, not blurred or duplicated
        offsets.add((r - 4, c - 4))
    assert offsets == {(dy, dx) for dy in range(-s, s + 1) for dx in range(-s, s + 1)}  # every shift occurs


def test_edges_repeat_and_seeded():
    X = np.arange(16, dtype=np.float32).reshape(1, 16)
    a = shift_images(np.repeat(X, 50, axis=0), 1, np.random.default_rng(3))
    b = shift_images(np.repeat(X, 50, axis=0), 1, np.random.default_rng(3))
    np.testing.assert_array_equal(a, b)
    assert set(np.unique(a)) <= set(range(16))  # only existing pixel values: edges are repeated, no zeros added


def test_augmenter_shifts_by_the_param_and_is_off_at_zero():
    X = np.arange(2 * 25, dtype=np.float32).reshape(2, 25)
    shifted = augmenter(2)(X, np.random.default_rng(5))
    np.testing.assert_array_equal(shifted, shift_images(X, 2, np.random.default_rng(5)))
    assert augmenter(0) is None  # fit's "no augmentation"
