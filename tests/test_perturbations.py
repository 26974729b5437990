import numpy as np
import pytest
from scipy import ndimage, stats

from signdigits import perturbations as P

SIDE = 12


@pytest.fixture
def images():
    """Six 12 × 12 images of random values in (0.1, 0.9), as rows."""
    return np.random.default_rng(0).uniform(0.1, 0.9, size=(6, SIDE * SIDE)).astype(np.float32)


@pytest.fixture
def hand():
    """A synthetic photo: a dark blob (0.3, a 'hand' reaching the bottom edge, with a lighter hole) on a light
    field that darkens a little towards the corners (0.75–0.9), 28 × 28; and the blob's pixels."""
    side = 28
    r, q = np.meshgrid(np.arange(side), np.arange(side), indexing="ij")
    field = 0.9 - 0.15 * (np.hypot(r - 13.5, q - 13.5) / 19.1) ** 2
    blob = (np.hypot(r - 12, q - 14) < 7) | ((np.abs(q - 14) < 4) & (r >= 12))
    hole = np.hypot(r - 11, q - 14) < 2
    image = np.where(blob & ~hole, 0.3, field)
    return image.reshape(1, -1).astype(np.float32), (blob & ~hole).reshape(-1)


def grid(X):
    n, side = len(X), P.image_side(X)
    return X.reshape(n, side, side)


def test_mirror_is_the_left_right_flip_and_its_own_inverse(images):
    np.testing.assert_array_equal(grid(P.mirror(images)), grid(images)[:, :, ::-1])
    np.testing.assert_array_equal(P.mirror(P.mirror(images)), images)
    masks = P.background_mask(images)
    assert P.mirror(images.astype(np.float64)).dtype == np.float64
    assert P.mirror(masks).dtype == bool and np.array_equal(grid(P.mirror(masks)), grid(masks)[:, :, ::-1])


def test_rotate_by_90_degrees_is_rot90_counterclockwise_as_shown(images):
    np.testing.assert_allclose(grid(P.rotate(images, 90.0)), np.rot90(grid(images), 1, axes=(1, 2)), atol=1e-5)
    np.testing.assert_allclose(grid(P.rotate(images, -90.0)), np.rot90(grid(images), -1, axes=(1, 2)), atol=1e-5)


def test_rotate_takes_one_angle_per_image(images):
    turned = P.rotate(images[:2], np.array([90.0, 0.0]))
    np.testing.assert_allclose(grid(turned)[0], np.rot90(grid(images)[0]), atol=1e-5)
    np.testing.assert_allclose(turned[1], images[1], atol=1e-6)


def test_shift_by_whole_pixels_moves_exactly_down_and_right(images):
    moved = grid(P.shift(images, np.tile([2, -3], (len(images), 1))))
    # out[r, q] = in[r − 2, q + 3], away from the strips the edge is repeated into
    np.testing.assert_array_equal(moved[:, 2:, : SIDE - 3], grid(images)[:, : SIDE - 2, 3:])


def test_scale_magnifies_about_the_centre():
    X = np.zeros((1, 9, 9), np.float32)
    X[0, 3:6, 3:6] = 1.0  # a 3 × 3 square in the middle
    larger = P.scale(X.reshape(1, -1), np.array([2.0])).reshape(9, 9)
    assert larger[4, 4] == 1.0 and larger[2, 4] == 1.0 and larger[0, 4] == 0.0  # about twice as wide, centred
    np.testing.assert_allclose(larger, larger[::-1, ::-1], atol=1e-6)


def test_brightness_adds_and_clips():
    X = np.array([[0.2, 0.5, 0.9, 1.0]], np.float32)
    np.testing.assert_allclose(P.brightness(X, 0.3), [[0.5, 0.8, 1.0, 1.0]], atol=1e-6)
    np.testing.assert_allclose(P.brightness(X, -0.3), [[0.0, 0.2, 0.6, 0.7]], atol=1e-6)


def test_contrast_scales_the_spread_about_each_images_mean():
    X = np.array([[0.2, 0.4, 0.6, 0.8], [0.0, 0.0, 1.0, 1.0]], np.float32)  # means 0.5 and 0.5
    out = P.contrast(X, np.array([0.5, 3.0]))
    np.testing.assert_allclose(out[0], [0.35, 0.45, 0.55, 0.65], atol=1e-6)
    np.testing.assert_allclose(out[1], [0.0, 0.0, 1.0, 1.0], atol=1e-6)  # 0.5 ± 1.5, clipped
    np.testing.assert_allclose(P.contrast(X[:1], 2.0), [[0.0, 0.3, 0.7, 1.0]], atol=1e-6)


def test_gamma_raises_each_pixel_to_the_power():
    X = np.array([[0.0, 0.25, 0.5, 1.0]], np.float32)
    np.testing.assert_allclose(P.gamma(X, 2.0), [[0.0, 0.0625, 0.25, 1.0]], atol=1e-6)
    np.testing.assert_allclose(P.gamma(X, 0.5), [[0.0, 0.5, np.sqrt(0.5), 1.0]], atol=1e-6)


def test_noise_is_seeded_and_has_the_stated_spread():
    X = np.full((4, 32 * 32), 0.5, np.float32)
    first = P.noise(X, 0.05, np.random.default_rng(1))
    np.testing.assert_array_equal(first, P.noise(X, 0.05, np.random.default_rng(1)))
    assert not np.array_equal(first, P.noise(X, 0.05, np.random.default_rng(2)))
    assert abs((first - X).std() - 0.05) < 0.003  # 10 σ from the clip: no clipping
    assert abs((first - X).mean()) < 0.003


def test_blur_is_scipys_gaussian_filter(images):
    sigmas = np.array([0.0, 0.5, 1.0, 1.5, 2.0, 3.0])
    blurred = grid(P.blur(images, sigmas))
    for image, out, sigma in zip(grid(images), blurred, sigmas):
        expected = ndimage.gaussian_filter(image, sigma, mode="nearest") if sigma else image
        np.testing.assert_allclose(out, expected, atol=1e-6)


def test_occlude_covers_the_stated_fraction_with_one_tone(images, hand):
    for fraction in (0.05, 0.1, 0.25):
        out = P.occlude(images, fraction, np.random.default_rng(0))
        changed = out != images
        width = round(SIDE * np.sqrt(fraction))
        assert (changed.sum(axis=1) == width * width).all()  # random pixels: every covered one changes
        assert abs(np.sqrt(changed.mean(axis=1)) - np.sqrt(fraction)).max() <= 0.5 / SIDE  # to the nearest pixel
        for image, mask in zip(grid(out), grid(changed)):
            rows, columns = np.nonzero(mask)
            assert np.ptp(rows) + 1 == width and np.ptp(columns) + 1 == width  # one square
            assert len(np.unique(image[mask])) == 1
    photo, blob = hand
    covered = P.occlude(np.repeat(photo, 20, axis=0), 0.1, np.random.default_rng(3)) != photo
    hand_share = (covered & blob).sum(axis=1) / covered.sum(axis=1)
    assert hand_share.min() > 0.2 and hand_share.mean() > 0.6  # over the hand (a quarter of the image)
    assert blob.mean() < 0.3


def test_background_changes_the_field_and_leaves_the_hand(hand):
    photo, blob = hand
    mask = P.background_mask(photo)[0]
    hole = np.zeros((28, 28), bool)
    r, q = np.meshgrid(np.arange(28), np.arange(28), indexing="ij")
    hole[np.hypot(r - 11, q - 14) < 2] = True
    np.testing.assert_array_equal(mask, ~blob & ~hole.reshape(-1))  # the field, darker corners too; not the hole
    out = P.background(photo, 1.0, np.random.default_rng(0))[0]
    np.testing.assert_array_equal(out[~mask], photo[0][~mask])  # hand and hole untouched
    assert (np.abs(out - photo[0])[mask] > 0).mean() > 0.95
    assert out[mask].mean() < photo[0][mask].mean() - 0.3  # a darker background
    half = P.background(photo, 0.5, np.random.default_rng(0))[0]
    np.testing.assert_allclose(half[mask] - photo[0][mask], (out[mask] - photo[0][mask]) / 2, atol=1e-5)


def test_replace_background_puts_the_given_image_behind_the_hand(hand):
    photo, _ = hand
    mask = P.background_mask(photo)[0]
    new = np.random.default_rng(0).uniform(0, 1, (1, 784))
    out = P.replace_background(photo, new, 1.0)[0]
    np.testing.assert_array_equal(out[~mask], photo[0][~mask])  # the hand and its hole untouched
    # reference: α = the mask times its Gaussian blur (σ 0.6 pixel, edge pixels repeated), out = (1 − α) x + α new
    m = mask.reshape(28, 28).astype(np.float64)
    alpha = (m * ndimage.gaussian_filter(m, 0.6, mode="nearest")).reshape(-1)
    np.testing.assert_allclose(out, (1 - alpha) * photo[0] + alpha * new[0], atol=1e-6)
    assert (alpha[mask] == 1).mean() > 0.7  # beyond the blur of the hand's edge (2 pixels): the new image itself
    quarter = P.replace_background(photo, new.reshape(1, 28, 28), 0.25)[0]  # rows or images
    np.testing.assert_allclose(quarter - photo[0], (out - photo[0]) / 4, atol=1e-6)
    np.testing.assert_array_equal(P.replace_background(photo, new, 0.0), photo)
    # a stack: each image with its own strength and new image, the masks given, as the reference does one at a time
    stack = np.concatenate([photo, P.mirror(photo), photo])
    news = np.random.default_rng(1).uniform(0, 1, (3, 784))
    together = P.replace_background(stack, news, [1.0, 0.5, 0.0], masks=P.background_mask(stack))
    for image, b, strength, out in zip(stack, news, (1.0, 0.5, 0.0), together):
        np.testing.assert_array_equal(out, P.replace_background(image[None], b[None], strength)[0])
    np.testing.assert_array_equal(together[2], photo[0])


def test_otsu_thresholds_maximise_the_between_class_variance():
    # independent reference: every cut between two sorted distinct values, scored by w0 w1 (mu0 - mu1)^2
    rng = np.random.default_rng(5)
    V = np.concatenate([rng.normal(0.2, 0.05, (4, 60)), rng.normal(0.7, 0.1, (4, 40))], axis=1)

    def between(values, cut):
        low, high = values[values <= cut], values[values > cut]
        return len(low) * len(high) * (low.mean() - high.mean()) ** 2

    for row, t in zip(V, P.otsu_thresholds(V, bins=4096)):
        best = max(between(row, cut) for cut in np.sort(row)[:-1])
        assert between(row, t) >= best * (1 - 1e-6)
    np.testing.assert_array_equal(P.otsu_thresholds(np.full((2, 5), 0.4)), [0.4, 0.4])  # flat: its value


def test_background_mask_treats_each_image_of_a_stack_on_its_own(hand):
    photo, _ = hand
    rng = np.random.default_rng(2)
    # a stack whose neighbours would connect through the stack's depth if the search crossed images: the photo,
    # its negative, noise, a flat image and the photo again
    X = np.concatenate([photo, 1 - photo, rng.uniform(0, 1, (1, 784)), np.full((1, 784), 0.5), photo])
    X = X.astype(np.float32)
    together = P.background_mask(X)
    for image, mask in zip(X, together):
        np.testing.assert_array_equal(mask, P.background_mask(image[None])[0])
    np.testing.assert_array_equal(together[0], together[4])


def test_a_flat_image_is_all_background():
    assert P.background_mask(np.full((2, 64), 0.7, np.float32)).all()


@pytest.mark.parametrize("family", P.FAMILIES)
def test_every_family_and_severity_keeps_shape_type_range_and_is_seeded(family, hand, images):
    X = np.concatenate([np.repeat(hand[0], 2, axis=0), np.random.default_rng(1).uniform(0, 1, (2, 784))])
    X = X.astype(np.float32)
    before = X.copy()
    for severity in (1, 2, 3, 4, 5):
        out = P.perturb(X, family, severity, seed=4)
        assert out.shape == X.shape and out.dtype == np.float32
        assert out.min() >= 0.0 and out.max() <= 1.0
        np.testing.assert_array_equal(out, P.perturb(X, family, severity, seed=4))
    np.testing.assert_array_equal(X, before)  # the input is not changed
    small = P.perturb(images, family, 5, seed=0)  # another side
    assert small.shape == images.shape and small.dtype == np.float32


GRADED = [family for family in P.FAMILIES if family != "mirror"]


@pytest.mark.parametrize("family", GRADED)
def test_a_higher_severity_changes_more(family, hand):
    X = np.concatenate([np.repeat(hand[0], 3, axis=0), P.shift(hand[0], [[2, -1]]), P.mirror(hand[0])])
    changes = [np.abs(P.perturb(X, family, severity, seed=2) - X).mean() for severity in (1, 2, 3, 4, 5)]
    assert changes[0] > 0
    assert all(later > earlier for earlier, later in zip(changes, changes[1:])), changes


def test_the_random_choices_depend_on_the_seed(hand):
    X = np.repeat(hand[0], 4, axis=0)
    for family in ("rotate", "shift", "noise", "occlude", "background"):
        assert not np.array_equal(P.perturb(X, family, 3, seed=0), P.perturb(X, family, 3, seed=1)), family


def test_suite_yields_every_family_and_severity(images):
    seen = [(family, severity) for family, severity, _ in P.suite(images[:1], severities=(1, 3))]
    assert seen == [(family, severity) for family in P.FAMILIES for severity in (1, 3)]
    family, severity, out = next(P.suite(images))
    np.testing.assert_array_equal(out, P.perturb(images, family, severity))


def test_unknown_family_or_severity_names_the_allowed_ones(images):
    with pytest.raises(ValueError, match="mirror, rotate"):
        P.perturb(images, "fog", 1)
    with pytest.raises(ValueError, match="1, 2, 3, 4 and 5"):
        P.perturb(images, "blur", 6)
    with pytest.raises(ValueError, match="1, 2, 3, 4 and 5"):
        P.perturb(images, "blur", 0)


def test_every_family_has_five_severities():
    assert set(P.SEVERITIES) == set(P.FAMILIES) == set(P.IDENTITY)
    assert all(len(values) == 5 for values in P.SEVERITIES.values())


def test_random_perturbations_leave_some_images_clean_and_stay_within_the_maximum(hand):
    X = np.repeat(hand[0], 200, axis=0)
    out = P.random_perturbations(X, np.random.default_rng(0), max_severity=3, clean_share=0.5)
    assert out.shape == X.shape and out.dtype == np.float32 and 0 <= out.min() and out.max() <= 1
    clean = (out == X).all(axis=1).mean()
    assert 0.4 < clean < 0.65  # half left as they are (and a few changed by nearly nothing)
    again = P.random_perturbations(X, np.random.default_rng(0), max_severity=3, clean_share=0.5)
    np.testing.assert_array_equal(out, again)
    only_brighter = P.random_perturbations(X, np.random.default_rng(1), families=("brighten",), clean_share=0.0)
    gain = (only_brighter - X).max(axis=1)
    assert (gain >= 0).all() and gain.max() <= P.SEVERITIES["brighten"][2] + 1e-6
    with pytest.raises(ValueError, match="families are"):
        P.random_perturbations(X, np.random.default_rng(0), families=("fog",))


def test_non_hands_are_seeded_images_of_every_kind():
    X = P.non_hands(44, 20, seed=0)
    kinds = P.non_hand_kinds(44)
    assert X.shape == (44, 400) and X.dtype == np.float32 and 0 <= X.min() and X.max() <= 1
    np.testing.assert_array_equal(X, P.non_hands(44, 20, seed=0))
    assert not np.array_equal(X, P.non_hands(44, 20, seed=1))
    assert sorted(set(kinds)) == sorted(P.NON_HAND_KINDS)
    assert set(np.unique(kinds, return_counts=True)[1]) == {4}  # an equal share of each kind
    flats = X[kinds == "flat"]
    assert flats[0].max() == 0.0 and flats[1].min() == 1.0 and np.allclose(flats[2], 0.5)  # black, white, grey
    assert (X[kinds != "flat"].std(axis=1) > 0.02).all()  # everything else has some structure
    assert P.non_hands(0, 20).shape == (0, 400) and P.non_hands(3, 20).shape == (3, 400)  # kinds with no rows


def test_each_kind_of_non_hand_varies_as_its_comment_says():
    side, n = 28, 1100
    X = P.non_hands(n, side, seed=3).reshape(n, side, side).astype(np.float64)
    kinds = P.non_hand_kinds(n)
    rows, columns = np.indices((side, side))
    # discs, squares, rings: on a plain ground (its four corners one tone) the shape is what differs from the corner;
    # its centre lies anywhere in the frame, row and column drawn independently, and its size varies
    for kind in ("disc", "square", "ring"):
        images = X[kinds == kind]
        plain = np.ptp(images[:, [0, 0, -1, -1], [0, -1, 0, -1]], axis=1) < 1e-6
        assert 0.3 < plain.mean() < 0.7  # half on one tone, half on a gradient
        shapes = np.abs(images[plain] - images[plain][:, :1, :1]) > 0.05
        area = shapes.sum(axis=(1, 2))
        centre_r, centre_q = (shapes * rows).sum(axis=(1, 2)) / area, (shapes * columns).sum(axis=(1, 2)) / area
        assert centre_r.std() > 0.08 * side and centre_q.std() > 0.08 * side, kind
        assert abs(np.corrcoef(centre_r, centre_q)[0, 1]) < 0.4, kind
        assert area.std() > 0.2 * area.mean(), kind
    # checkerboards: cells of several sizes (the length of the first run of the first row)
    boards = X[kinds == "checkerboard"]
    cells = [np.argmax(board[0] != board[0, 0]) for board in boards]
    assert len(set(cells)) >= 4
    # stripes: in every direction (the angle of the strongest frequency, as a line through the origin)
    stripes = X[kinds == "stripes"]
    spectra = np.abs(np.fft.fft2(stripes - stripes.mean(axis=(1, 2), keepdims=True)))
    peaks = [np.unravel_index(np.argmax(spectrum), spectrum.shape) for spectrum in spectra]
    frequencies = np.fft.fftfreq(side)
    angles = np.mod([np.arctan2(frequencies[r], frequencies[q]) for r, q in peaks], np.pi)
    assert np.histogram(angles, bins=4, range=(0, np.pi))[0].min() >= 0.1 * len(angles)
    # blobs: of several sizes. A Gaussian of σ pixels leaves a power spectrum ∝ exp(−4π²σ²|f|²), whose mean |f|² is
    # 1 / (8π²σ²): σ estimated from each image's spectrum (low for wide blobs, which the frame cuts off) spreads
    blobs = X[kinds == "blobs"]
    power = np.abs(np.fft.fft2(blobs - blobs.mean(axis=(1, 2), keepdims=True))) ** 2
    squared_frequencies = np.fft.fftfreq(side)[:, None] ** 2 + np.fft.fftfreq(side)[None, :] ** 2
    mean_squared_frequency = (power * squared_frequencies).sum(axis=(1, 2)) / power.sum(axis=(1, 2))
    sigmas = np.sqrt(1 / (8 * np.pi**2 * mean_squared_frequency))
    assert np.percentile(sigmas, 90) - np.percentile(sigmas, 10) > 1.0  # one σ for all: about 0.5


def test_two_tones_are_the_rejection_samplers_pairs():
    first, second = P._two_tones(np.random.default_rng(0), 20000)
    assert (np.abs(second - first) >= 0.3 - 1e-12).all() and 0 <= second.min() and second.max() <= 1
    # the reference: draw the second tone again and again until it lies 0.3 or more from the first
    rng = np.random.default_rng(1)
    firsts = rng.uniform(0, 1, 20000)
    seconds = []
    for tone in firsts:
        other = rng.uniform(0, 1)
        while abs(other - tone) < 0.3:
            other = rng.uniform(0, 1)
        seconds.append(other)
    assert stats.ks_2samp(second, seconds).pvalue > 0.01
    assert stats.ks_2samp(second - first, np.array(seconds) - firsts).pvalue > 0.01  # the pairs, not only the tones


def test_images_must_be_square_rows():
    with pytest.raises(ValueError, match="side²"):
        P.mirror(np.zeros((2, 10), np.float32))


def test_unit_blobs_are_scipys_wrapped_gaussian_filter():
    sigmas = np.array([1.5, 2.8, 4.0])  # the blob sizes non_hands and background draw from
    blobs = P._unit_blobs(np.random.default_rng(0), 3, 28, sigmas)
    noise = np.random.default_rng(0).standard_normal((3, 28, 28))
    for image, field, sigma in zip(blobs, noise, sigmas):
        reference = ndimage.gaussian_filter(field, sigma, mode="wrap")
        reference = (reference - reference.mean()) / reference.std()
        np.testing.assert_allclose(image, reference, atol=2e-3)  # scipy samples its kernel and cuts it at 4σ
    assert np.allclose(blobs.mean(axis=(1, 2)), 0) and np.allclose(blobs.std(axis=(1, 2)), 1)
    one_for_all = P._unit_blobs(np.random.default_rng(0), 3, 28, 2.8)
    np.testing.assert_allclose(one_for_all[1], blobs[1])


def test_natural_images_are_seeded_images_of_both_kinds_in_turn():
    X = P.natural_images(9, 20, seed=0)
    assert X.shape == (9, 400) and X.dtype == np.float32 and 0 <= X.min() and X.max() <= 1
    np.testing.assert_array_equal(X, P.natural_images(9, 20, seed=0))
    assert not np.array_equal(X, P.natural_images(9, 20, seed=1))
    leaves = X[1::2]  # the kinds in turn: pink noise, dead leaves, pink noise, …
    assert all(len(np.unique(image)) <= P.dead_leaves_count(20) + 1 for image in leaves)  # discs of one tone each
    assert all(len(np.unique(image)) > 200 for image in X[0::2])  # noise: nearly every pixel its own value
    assert P.natural_images(0, 20).shape == (0, 400) and P.natural_images(1, 20).shape == (1, 400)


def test_pink_noise_has_the_power_law_spectrum_it_draws():
    """The slope of each image's log amplitude against log frequency (np.polyfit over the radially averaged
    amplitude spectrum) is minus the exponent drawn for it, the first of the generator's draws."""
    side, m = 64, 12
    images = P._pink_noise(np.random.default_rng(5), m, side)
    exponents = np.random.default_rng(5).uniform(*P.PINK_EXPONENTS, m)
    frequency = np.hypot(np.fft.fftfreq(side)[:, None], np.fft.fftfreq(side)[None, :])
    bins = np.linspace(2 / side, 0.5, 12)
    which = np.digitize(frequency, bins)
    for image, exponent in zip(images, exponents):
        amplitude = np.abs(np.fft.fft2(image - image.mean()))
        centres = [frequency[which == b].mean() for b in range(1, len(bins))]
        means = [amplitude[which == b].mean() for b in range(1, len(bins))]
        slope = np.polyfit(np.log(centres), np.log(means), 1)[0]
        assert slope == pytest.approx(-exponent, abs=0.15)
    spreads = images.std(axis=(1, 2))
    assert (spreads > 0.08 - 1e-9).all() and (spreads < 0.3 + 1e-9).all()  # as drawn, before any clipping


def test_dead_leaves_are_the_last_disc_over_each_pixel():
    """Each pixel shows the tone of the last disc that covers its centre, or the ground's tone: a painter's loop
    over the same draws (per image, per disc, per pixel) gives the same images."""
    side, m = 10, 3
    images = P._dead_leaves(np.random.default_rng(2), m, side)
    draws = np.random.default_rng(2)
    expected = np.repeat(draws.uniform(0, 1, m), side * side).reshape(m, side, side)
    for _ in range(P.dead_leaves_count(side)):
        radius = P._power_law(draws, m, 1.0, side / 2)
        centre_r, centre_q = draws.uniform(-side / 4, side * 5 / 4, m), draws.uniform(-side / 4, side * 5 / 4, m)
        tone = draws.uniform(0, 1, m)
        for i in range(m):
            for row in range(side):
                for column in range(side):
                    if (row + 0.5 - centre_r[i]) ** 2 + (column + 0.5 - centre_q[i]) ** 2 < radius[i] ** 2:
                        expected[i, row, column] = tone[i]
    np.testing.assert_array_equal(images, expected)


def test_dead_leaves_leave_about_half_the_frame_to_the_ground_at_any_side():
    """The count of discs grows with the frame's area (60 on a side of 28), so the share of pixels that keep the
    ground's tone stays about a half, as natural_images says, at the pipeline's sides and beyond."""
    assert P.dead_leaves_count(28) == 60 and P.dead_leaves_count(2) == 1
    for side in (16, 28, 64):
        rng = np.random.default_rng(side)
        images = P._dead_leaves(rng, 200, side)
        ground = np.random.default_rng(side).uniform(0, 1, 200)  # the first draws: each image's ground tone
        share = (images == ground[:, None, None]).mean()
        assert 0.35 < share < 0.7, (side, share)


def test_power_law_draws_have_the_density_r_to_the_minus_3():
    low, high = 1.0, 14.0
    draws = P._power_law(np.random.default_rng(0), 20_000, low, high)
    assert low <= draws.min() and draws.max() <= high

    def cdf(r):  # ∫ r⁻³ from low to r, over the same integral up to high
        return (low**-2 - np.asarray(r) ** -2.0) / (low**-2 - high**-2)

    assert stats.kstest(draws, cdf).pvalue > 0.01
    assert stats.kstest(np.random.default_rng(0).uniform(low, high, 20_000), cdf).pvalue < 1e-6  # the test can fail
