"""The network against independent references: finite differences, the seed's formulas written out by hand,
sklearn's log_loss, and small problems made here."""

import warnings

import numpy as np
import pytest
from sklearn.metrics import log_loss

from signdigits.mlp import MLP
from signdigits.modelfile import load_model, save_model
from signdigits.network import TrainingConfig, TrainingDiverged, diverged
from signdigits.optim import make_optimizer


def problem(n=12, d=5, classes=2, seed=0):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n, d)), rng.integers(0, classes, size=n)


@pytest.mark.parametrize("activation", ["sigmoid", "tanh", "relu"])
@pytest.mark.parametrize("classes", [2, 3])
@pytest.mark.parametrize("weight_decay", [0.0, 0.1])
def test_gradients_match_finite_differences(activation, classes, weight_decay, numeric_gradient):
    X, y = problem(classes=classes)
    net = MLP(5, 4, 1 if classes == 2 else classes, activation, seed=1, dtype=np.float64)
    for name in net.params:  # non-zero biases, so their gradients are exercised too
        net.params[name] += 0.1 * np.random.default_rng(2).normal(size=net.params[name].shape)
    analytic = net.gradients(X, y, weight_decay)
    for name in ("W1", "b1", "W2", "b2"):
        numeric = numeric_gradient(net, X, y, name, weight_decay)
        error = np.linalg.norm(analytic[name] - numeric) / max(np.linalg.norm(analytic[name] + numeric), 1e-12)
        assert error < 1e-6, (name, error)


def sigmoid(z):
    return 1 / (1 + np.exp(-z))


@pytest.mark.parametrize("d", [3, 6])  # fewer inputs than rows, and more
def test_one_sgd_step_equals_the_seed_formulas(d):
    X, y = problem(n=4, d=d)
    net = MLP(d, 2, 1, "sigmoid", seed=3, dtype=np.float64)
    W1, b1, W2, b2 = (net.params[k].copy() for k in ("W1", "b1", "W2", "b2"))
    # the seed report's derivation, for m examples, written out independently of the module
    m, eta, Y = len(X), 0.5, y.reshape(-1, 1)
    Z1 = X @ W1 + b1
    A1 = sigmoid(Z1)
    A2 = sigmoid(A1 @ W2 + b2)
    dZ2 = A2 - Y
    dW2 = A1.T @ dZ2 / m
    db2 = dZ2.sum(axis=0) / m
    dA1 = dZ2 @ W2.T
    dZ1 = dA1 * A1 * (1 - A1)
    dW1 = X.T @ dZ1 / m
    db1 = dZ1.sum(axis=0) / m
    net.fit(X, y, TrainingConfig(epochs=1, batch_size=m, learning_rate=eta))
    for name, expected in (
        ("W1", W1 - eta * dW1),
        ("b1", b1 - eta * db1),
        ("W2", W2 - eta * dW2),
        ("b2", b2 - eta * db2),
    ):
        np.testing.assert_allclose(net.params[name], expected, rtol=1e-12, atol=1e-14)


def test_loss_is_cross_entropy_as_sklearn_computes_it():
    for classes in (2, 4):
        X, y = problem(n=40, classes=classes)
        net = MLP(5, 6, 1 if classes == 2 else classes, "tanh", seed=0, dtype=np.float64)
        proba = net.predict_proba(X)
        assert net.loss(X, y) == pytest.approx(log_loss(y, proba, labels=list(range(classes))), rel=1e-10)
        if classes > 2:
            np.testing.assert_allclose(proba.sum(axis=1), 1)


def test_no_overflow_with_huge_weights_and_inputs():
    X, y = problem(n=8, classes=3)
    for n_outputs in (1, 3):
        net = MLP(5, 4, n_outputs, "relu", seed=0, dtype=np.float64)
        for value in net.params.values():
            value *= 1e6
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            loss = net.loss(X * 1e6, y % n_outputs if n_outputs > 1 else y % 2)
            gradients = net.gradients(X * 1e6, y % 2 if n_outputs == 1 else y)
        assert np.isfinite(loss) and loss > 1000  # confidently wrong somewhere: large but exact
        assert all(np.isfinite(g).all() for g in gradients.values())


def momentum_and_adam_reference(grads_sequence, theta, eta, mu, beta1=0.9, beta2=0.999, eps=1e-8):
    v = np.zeros_like(theta)
    momentum = theta.copy()
    for g in grads_sequence:
        v = mu * v - eta * g
        momentum = momentum + v
    m = s = np.zeros_like(theta)
    adam = theta.copy()
    for t, g in enumerate(grads_sequence, start=1):
        m = beta1 * m + (1 - beta1) * g
        s = beta2 * s + (1 - beta2) * g**2
        adam = adam - eta * (m / (1 - beta1**t)) / (np.sqrt(s / (1 - beta2**t)) + eps)
    return momentum, adam


def test_momentum_and_adam_steps():
    theta0 = np.array([1.0, -2.0, 0.5])
    grads = [np.array([0.3, -0.1, 0.2]), np.array([0.1, 0.4, -0.3]), np.array([-0.2, 0.2, 0.1])]
    expected_momentum, expected_adam = momentum_and_adam_reference(grads, theta0, eta=0.1, mu=0.9)
    for name, expected in (("sgd", expected_momentum), ("adam", expected_adam)):
        params = {"w": theta0.copy()}
        step = make_optimizer(name, params, momentum=0.9)
        for g in grads:
            step({"w": g}, 0.1)
        np.testing.assert_allclose(params["w"], expected, rtol=1e-12)


def test_learning_rate_decay_per_epoch():
    X, y = problem(n=6, d=3)
    net = MLP(3, 2, 1, "tanh", seed=0, dtype=np.float64)
    reference = MLP(3, 2, 1, "tanh", seed=0, dtype=np.float64)
    net.fit(X, y, TrainingConfig(epochs=3, batch_size=6, learning_rate=0.3, lr_decay=0.5))
    for epoch in range(3):  # full batch: one step per epoch at rate 0.3 / (1 + 0.5 e)
        grads = reference.gradients(X, y)
        for name in reference.params:
            reference.params[name] -= 0.3 / (1 + 0.5 * epoch) * grads[name]
    for name in net.params:
        np.testing.assert_allclose(net.params[name], reference.params[name], rtol=1e-12)


def test_batches_follow_the_seeded_order_and_the_last_smaller_batch_is_used():
    X, y = problem(n=5, d=3)
    net = MLP(3, 2, 1, "sigmoid", seed=0, dtype=np.float64)
    reference = MLP(3, 2, 1, "sigmoid", seed=0, dtype=np.float64)
    net.fit(X, y, TrainingConfig(epochs=2, batch_size=2, learning_rate=0.1))
    for _ in range(2):  # by hand: the epoch's order from the model's generator, cut into batches of 2, 2 and 1
        order = reference.rng.permutation(5)
        for batch in (order[:2], order[2:4], order[4:]):
            grads = reference.gradients(X[batch], y[batch])
            for name in reference.params:
                reference.params[name] -= 0.1 * grads[name]
    for name in net.params:
        np.testing.assert_allclose(net.params[name], reference.params[name], rtol=1e-12)


def separable(n=200, d=10, classes=2, seed=0):
    rng = np.random.default_rng(seed)
    centres = rng.normal(scale=4, size=(classes, d))
    y = rng.integers(0, classes, size=n)
    return centres[y] + rng.normal(size=(n, d)), y


@pytest.mark.parametrize("classes, optimizer", [(2, "sgd"), (4, "sgd"), (4, "adam")])
def test_it_learns_a_separable_problem(classes, optimizer):
    X, y = separable(classes=classes)
    net = MLP(10, 16, 1 if classes == 2 else classes, "sigmoid", seed=0)
    rate = 0.1 if optimizer == "sgd" else 0.01
    history = net.fit(X, y, TrainingConfig(epochs=30, batch_size=16, learning_rate=rate, optimizer=optimizer))
    assert np.mean(net.predict(X) == y) == 1.0
    assert history[-1]["batch_loss"] < history[0]["batch_loss"] / 3


def test_an_epochs_batch_loss_is_the_mean_of_its_batches_losses_before_their_steps():
    """batch_loss: each batch's loss as the network stood before that batch's step, weighted by its rows. With
    one batch, the loss of the untrained network; with a learning rate of 0, every epoch's is that loss."""
    X, y = separable(classes=3)
    net = MLP(10, 8, 3, "tanh", seed=1)
    untrained = net.loss(X, y)
    [one] = MLP(10, 8, 3, "tanh", seed=1).fit(X, y, TrainingConfig(epochs=1, batch_size=len(X), learning_rate=0.1))
    assert one["batch_loss"] == pytest.approx(untrained, rel=1e-6) and set(one) == {"epoch", "batch_loss"}
    still = net.fit(X, y, TrainingConfig(epochs=3, batch_size=7, learning_rate=0.0))
    assert [row["batch_loss"] for row in still] == pytest.approx([untrained] * 3, rel=1e-6)


def test_same_params_and_data_give_identical_weights():
    X, y = separable()
    runs = []
    for _ in range(2):
        net = MLP(10, 8, 1, "relu", seed=7)
        history = net.fit(X, y, TrainingConfig(epochs=5, batch_size=7, learning_rate=0.05, optimizer="adam"))
        runs.append((net.params, history))
    for name in runs[0][0]:
        assert runs[0][0][name].tobytes() == runs[1][0][name].tobytes()
    assert runs[0][1] == runs[1][1]
    other = MLP(10, 8, 1, "relu", seed=8)
    assert not np.array_equal(other.params["W1"], runs[0][0]["W1"])


def test_history_records_held_out_metrics():
    X, y = separable()
    net = MLP(10, 8, 1, "sigmoid", seed=0)
    config = TrainingConfig(epochs=3, learning_rate=0.1)
    history = net.fit(X[:150], y[:150], config, validation=(X[150:], y[150:]))
    assert [row["epoch"] for row in history] == [1, 2, 3]
    assert history[-1]["val_loss"] == pytest.approx(net.loss(X[150:], y[150:]), rel=1e-5)
    assert history[-1]["val_accuracy"] == np.mean(net.predict(X[150:]) == y[150:])


def test_divergence_stops_with_the_epoch_and_names_the_suspects():
    X, y = separable()
    net = MLP(10, 8, 3, "relu", seed=0)
    with pytest.raises(TrainingDiverged) as raised:
        net.fit(X, y % 3, TrainingConfig(epochs=5, learning_rate=1e6))
    message = str(raised.value)
    assert message.startswith("training diverged at epoch 1: the training loss went from ")
    assert "train.learning_rate (1000000.0, try it smaller) and train.weight_decay (0.0)" in message
    net = MLP(10, 8, 3, "relu", seed=0)
    with pytest.raises(TrainingDiverged, match=r"at epoch 1: .* train.weight_decay \(inf\)"):
        net.fit(X, y % 3, TrainingConfig(epochs=5, learning_rate=0.01, weight_decay=np.inf))


def test_divergence_in_the_last_epoch_is_caught_though_no_batch_loss_shows_it():
    """One epoch of one batch: its batch_loss is the untrained loss (before the step), so only the training rows'
    loss after the last epoch shows the step that blew it up, parameters still finite."""
    X, y = separable()
    net = MLP(10, 8, 3, "relu", seed=0)
    with pytest.raises(TrainingDiverged, match="at epoch 1: "):
        net.fit(X, y % 3, TrainingConfig(epochs=1, batch_size=len(X), learning_rate=1e3))
    assert all(np.isfinite(value).all() for value in net.params.values())
    assert net.loss(X, y % 3) > 10 * MLP(10, 8, 3, "relu", seed=0).loss(X, y % 3)


def test_the_divergence_rule():
    params = {"W": np.ones(3)}
    assert not diverged(0.5, 0.7, params) and not diverged(6.9, 0.7, params)  # not yet ten times the start
    assert diverged(7.1, 0.7, params) and diverged(np.nan, 0.7, params) and diverged(np.inf, 0.7, params)
    assert diverged(0.5, 0.7, {"W": np.array([1.0, np.nan])})  # a parameter that is no longer a number


def test_standardize_learns_input_statistics_and_keeps_gradients_exact(tmp_path, numeric_gradient):
    X, y = problem(n=10, d=4, classes=3)
    X = X + 5  # a large common component, as raw pixels have
    net = MLP(4, 3, 3, "tanh", seed=0, dtype=np.float64, standardize=True)
    net.fit(X, y, TrainingConfig(epochs=1, batch_size=10, learning_rate=0.0))
    np.testing.assert_allclose(net.input_mean, X.mean(axis=0))
    assert net.input_scale == pytest.approx(X.std())
    analytic = net.gradients(X, y)
    for name in ("W1", "b1"):
        numeric = numeric_gradient(net, X, y, name, 0.0)
        assert np.linalg.norm(analytic[name] - numeric) / np.linalg.norm(analytic[name] + numeric) < 1e-6
    # the first layer sees the standardized input: the same net without scaling, fed (X − μ)/s, agrees
    plain = MLP(4, 3, 3, "tanh", seed=0, dtype=np.float64)
    plain.params = {k: v.copy() for k, v in net.params.items()}
    np.testing.assert_allclose(plain.predict_proba((X - X.mean(axis=0)) / X.std()), net.predict_proba(X))
    save_model(net, tmp_path / "m.npz")
    loaded = load_model(tmp_path / "m.npz")
    np.testing.assert_array_equal(loaded.input_mean, net.input_mean)
    np.testing.assert_array_equal(loaded.predict_proba(X), net.predict_proba(X))


def test_augment_is_called_every_epoch_with_the_model_generator():
    X, y = separable(n=20)
    seen = []
    net = MLP(10, 4, 1, seed=0)
    augment = lambda rows: lambda rng: seen.append(rng is net.rng) or rows + 0.0  # noqa: E731
    net.fit(X, y, TrainingConfig(epochs=3, batch_size=8, augment=augment))
    assert seen == [True, True, True]
