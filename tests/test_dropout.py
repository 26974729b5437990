"""Dropout of the last hidden layer (network.py): the thinned network's gradients, the mask, and that prediction
and dropout 0 are untouched."""

import numpy as np
import pytest

from signdigits.cnn import CNN
from signdigits.mlp import MLP
from signdigits.network import TrainingConfig


def small(model, n_outputs, dtype=np.float64, activation="relu"):
    """A small network of each kind; "cnn+bn" is the CNN with batch normalisation."""
    if model == "mlp":
        return MLP(16, 6, n_outputs, activation, seed=1, dtype=dtype)
    return CNN(
        16,
        n_outputs,
        channels=(2,),
        kernel_size=3,
        n_hidden=6,
        activation=activation,
        seed=1,
        dtype=dtype,
        batch_norm=model == "cnn+bn",
    )


@pytest.mark.parametrize("model", ["mlp", "cnn", "cnn+bn"])
@pytest.mark.parametrize("n_outputs", [1, 3])
@pytest.mark.parametrize("activation", ["sigmoid", "tanh", "relu"])  # relu's slope alone would not tell A from A·keep
def test_gradients_of_the_thinned_network_match_finite_differences(model, n_outputs, activation, numeric_gradient):
    rng = np.random.default_rng(0)
    net = small(model, n_outputs, activation=activation)
    for name in net.params:
        net.params[name] += 0.1 * rng.normal(size=net.params[name].shape)
    X, y = rng.normal(size=(5, 16)), rng.integers(0, max(2, n_outputs), size=5)
    keep = net.dropout_mask(5, 0.5)
    assert 0 < np.count_nonzero(keep) < keep.size  # some units dropped, some kept
    analytic = net.gradients(X, y, 0.01, keep)
    for name in net.params:
        numeric = numeric_gradient(net, X, y, name, 0.01, keep=keep)
        error = np.linalg.norm(analytic[name] - numeric) / max(np.linalg.norm(analytic[name] + numeric), 1e-12)
        assert error < 1e-6, (name, error)
    without = net.gradients(X, y, 0.01)
    assert not np.allclose(without[net.WEIGHTS[-1]], analytic[net.WEIGHTS[-1]])  # the mask mattered


@pytest.mark.parametrize("model", ["mlp", "cnn"])
def test_a_thinned_row_is_the_whole_network_without_its_dropped_units(model):
    """For one row, dropping hidden units and scaling the rest is the same as zeroing the dropped units' outgoing
    weights and scaling the kept ones, in a network without dropout."""
    net = small(model, 3)
    X = np.random.default_rng(1).normal(size=(1, 16))
    keep = np.array([[2.0, 0.0, 2.0, 2.0, 0.0, 0.0]])  # dropout 0.5: units 1, 4 and 5 dropped
    thinned = [net.loss(X, [label], keep=keep, training=True) for label in range(3)]  # log-sum-exp(z) − z_label
    output = net.WEIGHTS[-1]
    net.params[output] = net.params[output] * keep[0][:, None]
    np.testing.assert_allclose(thinned, [net.loss(X, [label]) for label in range(3)], rtol=1e-12)


def test_the_mask_drops_at_the_rate_and_keeps_each_units_expectation():
    net = small("mlp", 1, np.float32)
    keep = net.dropout_mask(4000, 0.3)
    assert keep.shape == (4000, 6) and keep.dtype == np.float32
    assert set(np.unique(keep)) == {0.0, np.float32(1 / 0.7)}
    assert abs(np.mean(keep == 0) - 0.3) < 0.01
    assert abs(keep.mean() - 1.0) < 0.02  # inverted dropout: E[keep] = 1, so prediction needs no rescaling
    assert net.dropout_mask(10, 0.0) is None
    with pytest.raises(ValueError, match="dropout"):
        TrainingConfig(dropout=1.0)


@pytest.mark.parametrize("model", ["mlp", "cnn"])
def test_dropout_zero_changes_nothing_and_prediction_stays_deterministic(model):
    rng = np.random.default_rng(2)
    X = rng.normal(size=(60, 16)).astype(np.float32)
    y = (X[:, :8].sum(axis=1) > X[:, 8:].sum(axis=1)).astype(int)
    options = {"epochs": 30, "batch_size": 10, "learning_rate": 0.01, "optimizer": "adam"}
    plain = small(model, 1, np.float32).fit(X, y, TrainingConfig(**options))
    zero = small(model, 1, np.float32).fit(X, y, TrainingConfig(**options, dropout=0.0))
    assert plain == zero
    net = small(model, 1, np.float32)
    thinned = net.fit(X, y, TrainingConfig(**options, dropout=0.5))
    assert thinned != plain  # the masks changed the training
    assert np.mean(net.predict(X) == y) > 0.85  # and it still learns
    state = net.rng.bit_generator.state
    first = net.predict_proba(X)
    np.testing.assert_array_equal(net.predict_proba(X), first)  # no dropout when predicting …
    assert net.rng.bit_generator.state == state  # … and no mask drawn
