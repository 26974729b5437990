"""The CNN against independent references: scipy's correlate2d, finite differences, pooling by loops."""

import itertools

import numpy as np
import pytest
from scipy.signal import correlate2d
from scipy.special import log_softmax

from signdigits.cnn import BN_EPSILON, CNN, correlate, flipped, im2col, max_pool, max_pool_backward
from signdigits.modelfile import load_model, save_model
from signdigits.network import TrainingConfig


def naive_max_pool(R):
    """2 × 2 max-pooling by loops over every window: the maxima, and the gradient routing as a 0/1 array the
    shape of R (1 at each window's first maximum in row-major order, which is where np.argmax points)."""
    N, H, W, C = R.shape
    pooled, winners = np.zeros((N, H // 2, W // 2, C)), np.zeros(R.shape)
    for n, i, j, c in itertools.product(range(N), range(H // 2), range(W // 2), range(C)):
        window = R[n, 2 * i : 2 * i + 2, 2 * j : 2 * j + 2, c]
        first = np.argmax(window)  # row-major, first of equal maxima
        pooled[n, i, j, c] = window.flat[first]
        winners[n, 2 * i + first // 2, 2 * j + first % 2, c] = 1
    return pooled, winners


def dense_logits(net, A):
    """The two dense layers of a two-block network (W3, b3, W4, b4) on the last block's maps A (N, H, W, C),
    flattened channels last, as cnn.py says: tanh(flat(A) W3 + b3) W4 + b4."""
    p = net.params
    return np.tanh(A.reshape(len(A), -1) @ p["W3"] + p["b3"]) @ p["W4"] + p["b4"]


def test_logits_equal_correlate2d_then_activation_then_pooling_by_loops():
    """Each block as textbooks write it, from scipy's correlate2d and loops: A_l = maxpool(g(A_{l−1} ⋆ W_l + b_l))
    (cnn.py adds the bias and applies g after pooling), then the dense layers."""
    rng = np.random.default_rng(0)
    net = CNN(64, 1, channels=(3, 2), kernel_size=3, n_hidden=4, activation="tanh", seed=0, dtype=np.float64)
    for name in net.params:
        net.params[name] += 0.3 * rng.normal(size=net.params[name].shape)
    X = rng.normal(size=(2, 64))
    A = X.reshape(2, 8, 8, 1)
    for l in (1, 2):
        W, b = net.params[f"W{l}"], net.params[f"b{l}"]
        Z = np.zeros((*A.shape[:3], len(W)))
        for n, f in itertools.product(range(len(A)), range(len(W))):  # Z[f] = Σ_c A[c] ⋆ W[f, c] + b[f]
            Z[n, :, :, f] = sum(correlate2d(A[n, :, :, c], W[f, c], mode="same") for c in range(W.shape[1])) + b[f]
        A = naive_max_pool(np.tanh(Z))[0]
    np.testing.assert_allclose(net.logits(X), dense_logits(net, A), rtol=1e-12, atol=1e-12)


def loop_logits(net, X, normalize):
    """The logits of a two-block network with batch normalisation, by scipy's correlate2d and loops: per block
    P = maxpool(A_{l−1} ⋆ W_l), then A_l = tanh(γ_l normalize(l, P) + b_l); then the dense layers."""
    A = X.reshape(len(X), 8, 8, 1)
    for l in (1, 2):
        W, b = net.params[f"W{l}"], net.params[f"b{l}"]
        Z = np.zeros((*A.shape[:3], len(W)))
        for n, f in itertools.product(range(len(A)), range(len(W))):  # Z[f] = Σ_c A[c] ⋆ W[f, c]
            Z[n, :, :, f] = sum(correlate2d(A[n, :, :, c], W[f, c], mode="same") for c in range(W.shape[1]))
        P = naive_max_pool(Z)[0]
        A = np.tanh(net.params[f"gamma{l}"] * normalize(l, P) + b)
    return dense_logits(net, A)


def test_batch_norm_normalizes_each_pooled_channel_with_the_batch_or_the_running_statistics():
    """Training: (P − mean) / √(var + ε) over the batch's images and positions, channel by channel, and the running
    statistics move a tenth of the way to the batch's mean and unbiased variance; prediction: the running ones."""
    rng = np.random.default_rng(5)
    net = CNN(64, 3, channels=(3, 2), n_hidden=4, activation="tanh", seed=0, dtype=np.float64, batch_norm=True)
    for name in net.params:
        net.params[name] += 0.3 * rng.normal(size=net.params[name].shape)
    X = rng.normal(size=(4, 64))

    def batch_statistics(l, P):
        mean = np.array([P[..., c].mean() for c in range(P.shape[-1])])
        var = np.array([P[..., c].var() for c in range(P.shape[-1])])
        seen[l] = mean, np.array([P[..., c].var(ddof=1) for c in range(P.shape[-1])])
        return (P - mean) / np.sqrt(var + BN_EPSILON)

    seen, y = {}, np.array([0, 2, 1, 1])
    Z = loop_logits(net, X, batch_statistics)
    expected = -np.mean(log_softmax(Z, axis=1)[np.arange(4), y])  # the loss a training step sees
    assert net.loss(X, y, training=True) == pytest.approx(expected, rel=1e-12)  # it moves the running statistics
    for l, (mean, unbiased_var) in seen.items():
        np.testing.assert_allclose(net.running[f"running_mean{l}"], 0.1 * mean, rtol=1e-12, atol=1e-15)
        np.testing.assert_allclose(net.running[f"running_var{l}"], 0.9 + 0.1 * unbiased_var, rtol=1e-12)

    def running_statistics(l, P):
        mean, var = net.running[f"running_mean{l}"], net.running[f"running_var{l}"]
        return (P - mean) / np.sqrt(var + BN_EPSILON)

    before = {name: value.copy() for name, value in net.running.items()}
    expected = loop_logits(net, X, running_statistics)
    np.testing.assert_allclose(net.logits(X), expected, rtol=1e-12, atol=1e-12)  # prediction: the running ones …
    assert all(np.array_equal(before[name], net.running[name]) for name in before)  # … left unchanged
    # so a photo's prediction does not depend on the photos predicted with it
    np.testing.assert_allclose(net.predict_proba(X)[1:2], net.predict_proba(X[1:2]), rtol=1e-12)


def test_batch_norm_history_and_prediction_use_the_running_statistics():
    """fit's per-epoch figures are the prediction's (running statistics), not a training pass's (the batch's)."""
    rng = np.random.default_rng(6)
    X, y = rng.normal(size=(30, 64)), rng.integers(0, 3, 30)
    net = CNN(64, 3, channels=(3,), n_hidden=4, seed=0, dtype=np.float64, batch_norm=True)
    config = TrainingConfig(epochs=2, batch_size=8, learning_rate=0.01, optimizer="adam")
    history = net.fit(X, y, config, validation=(X, y))
    assert history[-1]["train_loss"] == pytest.approx(net.loss(X, y), rel=1e-12)
    assert abs(net.loss(X, y, training=True) - net.loss(X, y)) > 1e-6


def test_a_single_value_per_channel_leaves_the_running_statistics():
    """One image pooled to 1 × 1 has no variance to estimate (PyTorch refuses it; here the batch is normalized to
    0 and the running statistics stay as they were)."""
    net = CNN(4, 3, channels=(2,), n_hidden=3, seed=0, dtype=np.float64, batch_norm=True)
    before = {name: value.copy() for name, value in net.running.items()}
    net.gradients(np.random.default_rng(0).normal(size=(1, 4)), [1])
    assert all(np.array_equal(before[name], net.running[name]) for name in before)
    net.gradients(np.random.default_rng(0).normal(size=(2, 4)), [1, 2])
    assert not np.array_equal(before["running_var1"], net.running["running_var1"])


@pytest.mark.parametrize("channels", [1, 3])
def test_im2col_rows_are_the_windows_correlate2d_reads(channels):
    rng = np.random.default_rng(4)
    A, kernel = rng.normal(size=(2, 6, 5, channels)), rng.normal(size=(3, 3, channels))
    Z = (im2col(A, 3) @ kernel.reshape(-1, 1)).reshape(2, 6, 5)
    for n in range(2):
        expected = sum(correlate2d(A[n, :, :, c], kernel[:, :, c], mode="same") for c in range(channels))
        np.testing.assert_allclose(Z[n], expected, rtol=1e-12, atol=1e-12)


def test_max_pool_by_hand_and_odd_sizes():
    R = np.array([[1, 5, 2, 0, 9], [3, 4, 8, 1, 9], [0, 0, 7, 6, 9], [2, 1, 5, 9, 9], [9, 9, 9, 9, 9]], float)
    pooled, _ = max_pool(R.reshape(1, 5, 5, 1))
    np.testing.assert_array_equal(pooled[0, :, :, 0], [[5, 8], [2, 9]])  # the odd last row and column dropped


@pytest.mark.parametrize("shape", [(2, 4, 6, 3), (3, 5, 7, 2), (1, 2, 2, 1)])
def test_max_pool_and_its_backward_equal_loops_ties_included(shape):
    """Values drawn from {0, 1, 2}: most windows hold tied maxima, which go to the first one in row-major order."""
    rng = np.random.default_rng(sum(shape))
    R = rng.integers(0, 3, size=shape).astype(float)
    dM = rng.normal(size=(shape[0], shape[1] // 2, shape[2] // 2, shape[3]))
    pooled, route = max_pool(R)
    expected_pooled, winners = naive_max_pool(R)
    np.testing.assert_array_equal(pooled, expected_pooled)
    upsampled = np.zeros(shape)  # each pooled gradient spread over its whole window …
    H2, W2 = dM.shape[1:3]
    upsampled[:, : 2 * H2, : 2 * W2] = dM.repeat(2, axis=1).repeat(2, axis=2)
    np.testing.assert_array_equal(max_pool_backward(dM, route), upsampled * winners)  # … kept at its winner only


def test_a_tie_routes_the_gradient_to_the_first_maximum_in_row_major_order():
    windows = {  # a 2 × 2 window (row-major) → the index of the element that gets the gradient
        (1, 1, 1, 1): 0,
        (0, 2, 2, 0): 1,
        (0, 1, 2, 2): 2,
        (0, 2, 0, 2): 1,
        (2, 0, 0, 2): 0,
        (0, 0, 1, 1): 2,
        (0, 0, 0, 1): 3,
    }
    for values, winner in windows.items():
        _, route = max_pool(np.array(values, float).reshape(1, 2, 2, 1))
        dR = max_pool_backward(np.full((1, 1, 1, 1), 7.0), route)
        np.testing.assert_array_equal(dR.ravel(), 7.0 * (np.arange(4) == winner), err_msg=str(values))


def test_correlating_with_the_flipped_kernels_is_the_adjoint_of_correlating():
    """<A ⋆ W, D> = <A, D ⋆ flipped(W)> for every A and D: what the backward pass relies on for dA."""
    rng = np.random.default_rng(1)
    A, W = rng.normal(size=(2, 5, 6, 3)), rng.normal(size=(4, 3, 3, 3))
    D = rng.normal(size=(2, 5, 6, 4))
    assert np.sum(correlate(A, W)[0] * D) == pytest.approx(np.sum(A * correlate(D, flipped(W))[0]), rel=1e-12)


@pytest.mark.parametrize("batch_norm", [False, True])
@pytest.mark.parametrize("activation", ["relu", "tanh", "sigmoid"])
@pytest.mark.parametrize("n_outputs", [1, 3])
def test_gradients_of_every_layer_match_finite_differences(activation, n_outputs, batch_norm, numeric_gradient):
    """With batch normalisation, of the training step's loss: each row's output depends on the whole batch."""
    rng = np.random.default_rng(2)
    net = CNN(
        49,
        n_outputs,
        channels=(2, 3),
        kernel_size=3,
        n_hidden=5,
        activation=activation,
        seed=1,
        dtype=np.float64,
        batch_norm=batch_norm,
    )
    for name in net.params:  # non-zero biases (and γ ≠ 1), so that their gradients are exercised too
        net.params[name] += 0.05 * rng.normal(size=net.params[name].shape)
    X, y = rng.normal(size=(3, 49)), rng.integers(0, max(2, n_outputs), size=3)
    analytic = net.gradients(X, y, weight_decay=0.01)
    names = {"W1", "b1", "W2", "b2", "W3", "b3", "W4", "b4"} | ({"gamma1", "gamma2"} if batch_norm else set())
    assert set(analytic) == set(net.params) == names
    for name in net.params:
        numeric = numeric_gradient(net, X, y, name, 0.01)
        error = np.linalg.norm(analytic[name] - numeric) / max(np.linalg.norm(analytic[name] + numeric), 1e-12)
        assert error < 1e-6, (name, error)


@pytest.mark.parametrize("batch_norm", [False, True])
def test_it_learns_shifted_bars_and_round_trips(tmp_path, batch_norm):
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
    net = CNN(side * side, 1, channels=(4,), kernel_size=3, n_hidden=8, seed=0, batch_norm=batch_norm)
    net.fit(X, y, TrainingConfig(epochs=15, batch_size=16, learning_rate=0.01, optimizer="adam"))
    assert np.mean(net.predict(X) == y) == 1.0
    net.metadata = {"classes": ["0", "5"], "image_size": side}
    save_model(net, tmp_path / "cnn.npz")
    loaded = load_model(tmp_path / "cnn.npz")
    assert isinstance(loaded, CNN) and loaded.architecture() == net.architecture()
    np.testing.assert_array_equal(loaded.predict_proba(X), net.predict_proba(X))


@pytest.mark.parametrize("batch_norm", [False, True])
def test_bit_for_bit_reproducible(batch_norm):
    rng = np.random.default_rng(3)
    X, y = rng.random((40, 64)).astype(np.float32), rng.integers(0, 3, 40)
    weights = []
    for _ in range(2):
        net = CNN(64, 3, channels=(2,), n_hidden=4, seed=5, standardize=True, batch_norm=batch_norm)
        shuffled = lambda rows: lambda generator: rows[generator.permutation(len(rows))]  # noqa: E731
        net.fit(X, y, TrainingConfig(epochs=2, batch_size=8, learning_rate=0.01, optimizer="adam", augment=shuffled))
        weights.append({k: v.tobytes() for k, v in (net.params | net.running).items()})
    assert weights[0] == weights[1]


def test_bad_shapes():
    with pytest.raises(ValueError, match="square number"):
        CNN(50)
    with pytest.raises(ValueError, match="must be odd"):
        CNN(64, kernel_size=2)
    with pytest.raises(ValueError, match="shrink"):
        CNN(16, channels=(2, 2, 2, 2, 2))
