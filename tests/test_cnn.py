"""The CNN against independent references: scipy's correlate2d, finite differences, hand-made pooling."""

import numpy as np
import pytest
from scipy.signal import correlate2d

from signdigits.cnn import CNN, col2im, im2col, max_pool
from signdigits.network import load_model


def test_convolution_forward_equals_scipy_correlate2d():
    rng = np.random.default_rng(0)
    net = CNN(64, 1, channels=(3, 2), kernel_size=3, n_hidden=4, activation="tanh", seed=0, dtype=np.float64)
    X = rng.normal(size=(2, 64))
    blocks = net._forward(X)[0][0]
    _, _, Z1, _, _ = blocks[0]
    images = X.reshape(2, 8, 8)
    for n in range(2):
        for f in range(3):
            expected = correlate2d(images[n], net.params["W1"][f, 0], mode="same") + net.params["b1"][f]
            np.testing.assert_allclose(Z1[n, :, :, f], expected, rtol=1e-12, atol=1e-12)
    # the second layer sums over its input channels: Z2[f] = Σ_c A1[c] ⋆ W2[f, c] + b2[f]
    (A1_shape, _, Z2, _, _) = blocks[1]
    A1 = max_pool(np.tanh(Z1))[0]
    for n in range(2):
        for f in range(2):
            expected = sum(correlate2d(A1[n, :, :, c], net.params["W2"][f, c], mode="same") for c in range(3))
            np.testing.assert_allclose(Z2[n, :, :, f], expected + net.params["b2"][f], rtol=1e-12, atol=1e-12)


def test_max_pool_by_hand_and_odd_sizes():
    R = np.array([[1, 5, 2, 0, 9], [3, 4, 8, 1, 9], [0, 0, 7, 6, 9], [2, 1, 5, 9, 9], [9, 9, 9, 9, 9]], float)
    pooled, _ = max_pool(R.reshape(1, 5, 5, 1))
    np.testing.assert_array_equal(pooled[0, :, :, 0], [[5, 8], [2, 9]])  # the odd last row and column dropped


def test_col2im_is_the_adjoint_of_im2col():
    rng = np.random.default_rng(1)
    A = rng.normal(size=(2, 5, 5, 3))
    D = rng.normal(size=(2 * 5 * 5, 3 * 3 * 3))
    assert np.sum(im2col(A, 3) * D) == pytest.approx(np.sum(A * col2im(D, A.shape, 3)), rel=1e-12)


@pytest.mark.parametrize("activation", ["relu", "tanh", "sigmoid"])
@pytest.mark.parametrize("n_outputs", [1, 3])
def test_gradients_of_every_layer_match_finite_differences(activation, n_outputs, numeric_gradient):
    rng = np.random.default_rng(2)
    net = CNN(
        49, n_outputs, channels=(2, 3), kernel_size=3, n_hidden=5, activation=activation, seed=1, dtype=np.float64
    )
    for name in net.params:  # non-zero biases, so that their gradients are exercised too
        net.params[name] += 0.05 * rng.normal(size=net.params[name].shape)
    X, y = rng.normal(size=(3, 49)), rng.integers(0, max(2, n_outputs), size=3)
    analytic = net.gradients(X, y, weight_decay=0.01)
    assert set(analytic) == set(net.params) == {"W1", "b1", "W2", "b2", "W3", "b3", "W4", "b4"}
    for name in net.params:
        numeric = numeric_gradient(net, X, y, name, 0.01)
        error = np.linalg.norm(analytic[name] - numeric) / max(np.linalg.norm(analytic[name] + numeric), 1e-12)
        assert error < 1e-6, (name, error)


def test_it_learns_shifted_bars_and_round_trips(tmp_path):
    """Vertical against horizontal bars at random places: what a convolution is for."""
    rng = np.random.default_rng(0)
    n, side = 120, 10
    images = np.zeros((n, side, side), np.float32)
    y = rng.integers(0, 2, size=n)
    for i in range(n):
        at = rng.integers(1, side - 1)
        if y[i]:
            images[i, :, at] = 1
        else:
            images[i, at, :] = 1
    X = images.reshape(n, -1) + rng.normal(0, 0.1, (n, side * side)).astype(np.float32)
    net = CNN(side * side, 1, channels=(4,), kernel_size=3, n_hidden=8, seed=0)
    net.fit(X, y, epochs=15, batch_size=16, learning_rate=0.01, optimizer="adam")
    assert net.accuracy(X, y) == 1.0
    net.metadata = {"classes": ["0", "5"], "image_size": side}
    net.save(tmp_path / "cnn.npz")
    loaded = load_model(tmp_path / "cnn.npz")
    assert isinstance(loaded, CNN) and loaded.architecture() == net.architecture()
    np.testing.assert_array_equal(loaded.predict_proba(X), net.predict_proba(X))


def test_bit_for_bit_reproducible():
    rng = np.random.default_rng(3)
    X, y = rng.random((40, 64)).astype(np.float32), rng.integers(0, 3, 40)
    weights = []
    for _ in range(2):
        net = CNN(64, 3, channels=(2,), n_hidden=4, seed=5, standardize=True)
        net.fit(
            X,
            y,
            epochs=2,
            batch_size=8,
            learning_rate=0.01,
            optimizer="adam",
            augment=lambda rows, generator: rows[generator.permutation(len(rows))],
        )
        weights.append({k: v.tobytes() for k, v in net.params.items()})
    assert weights[0] == weights[1]


def test_bad_shapes():
    with pytest.raises(ValueError, match="square number"):
        CNN(50)
    with pytest.raises(ValueError, match="must be odd"):
        CNN(64, kernel_size=2)
    with pytest.raises(ValueError, match="shrink"):
        CNN(16, channels=(2, 2, 2, 2, 2))
