import json
import os
import signal

import numpy as np
import pytest

from signdigits.cnn import CNN
from signdigits.files import hold_signals, release_signals
from signdigits.history import log_epoch, open_log, read_history
from signdigits.mlp import MLP
from signdigits.network import TrainingConfig
from signdigits.params import load_params
from signdigits.perturbations import natural_images, non_hands
from signdigits.training import augmenter, build_model, synthetic_outliers, training_config


def test_history_round_trip_through_dvclive(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # DVCLive looks for a DVC repository from the working directory: none here
    history = [{"epoch": e, "train_loss": 1 / e, "val_loss": 2 / e, "val_accuracy": 0.4} for e in (1, 2, 3)]
    with open_log("reports/history") as live:
        for row in history:
            log_epoch(live, row)
    columns = read_history("reports/history")
    assert columns["epoch"].tolist() == [1, 2, 3]
    np.testing.assert_allclose(columns["val_loss"], [2, 1, 2 / 3], atol=1e-6)
    assert set(columns) == {"epoch", "train_loss", "val_loss", "val_accuracy"}
    summary = json.loads((tmp_path / "reports/history/metrics.json").read_text())
    assert summary["step"] == 3 and summary["val_loss"] == pytest.approx(2 / 3, abs=1e-6)  # the last epoch


def test_params_choose_the_network(root):
    params = load_params("train", root / "params.yaml")
    net = build_model(params, 784, 2)
    assert isinstance(net, MLP) and (net.n_hidden, net.n_outputs, net.activation) == (128, 1, "relu")
    cnn = build_model(params | {"model": "cnn"}, 784, 10)
    assert isinstance(cnn, CNN) and (cnn.channels, cnn.n_hidden, cnn.n_outputs) == (params["conv_channels"], 128, 10)
    for model in ("mlp", "cnn"):  # the options prediction reads, as the params give them
        for value in (True, False):
            built = build_model(params | {"model": model, "mirror_average": value, "photo_norm": not value}, 784, 10)
            assert (built.mirror_average, built.photo_norm) == (value, not value)


def test_outlier_exposure_adds_non_hands_with_the_uniform_target():
    """Each epoch adds round(share · N) outliers, and their target is uniform: trained with them, the network's
    probabilities on images like them move towards 1/K, and its output error on them is (A − 1/K) / N."""
    rng = np.random.default_rng(0)
    y = np.arange(60) % 3
    X = np.clip(rng.normal(0.25 + 0.25 * y[:, None], 0.1, size=(60, 64)), 0, 1).astype(np.float32)
    drawn = []

    def outliers(n, side, generator):
        drawn.append((n, side))
        return np.tile(np.linspace(0, 1, side * side, dtype=np.float32), (n, 1))  # one gradient, n times

    options = {"epochs": 40, "learning_rate": 0.1, "batch_size": 8}
    exposed = MLP(64, 8, 3, "tanh", seed=0)
    exposed.fit(X, y, TrainingConfig(**options, outliers=outliers, outlier_exposure=0.25))
    assert drawn == [(15, 8)] * 40  # 0.25 × 60 rows, 8 × 8 pixels, every epoch
    reference = MLP(64, 8, 3, "tanh", seed=0)
    reference.fit(X, y, TrainingConfig(**options))
    gradient = outliers(1, 8, None)
    spread = lambda net: np.abs(net.predict_proba(gradient) - 1 / 3).max()  # noqa: E731
    assert spread(exposed) < 0.1 < spread(reference)
    assert exposed.predict(X).tolist() == y.tolist()  # and still right on the photos
    # a soft target's output error is (A − Y) / N, the same formula as one-hot's: checked by finite differences
    Y = np.full((4, 3), 1 / 3)
    Z = rng.normal(size=(4, 3))
    loss = lambda Z: float(np.mean(-(Y * (Z - np.log(np.exp(Z).sum(axis=1, keepdims=True)))).sum(axis=1)))  # noqa: E731
    numeric = np.zeros_like(Z)
    for index in np.ndindex(*Z.shape):
        step = np.zeros_like(Z)
        step[index] = 1e-6
        numeric[index] = (loss(Z + step) - loss(Z - step)) / 2e-6
    np.testing.assert_allclose(exposed.output_error(Z, Y), numeric, atol=1e-8)


def test_synthetic_outliers_are_non_hands_with_a_share_of_natural_images(root):
    """synthetic_outliers: non_hands of the seed the generator draws; with train.natural_images, each then replaced
    with that probability by one of natural_images (the next draws); 0 draws nothing more. training_config hands
    the share to both users: the outliers and the busy backgrounds."""
    draws = np.random.default_rng(1).integers(2**32)
    np.testing.assert_array_equal(synthetic_outliers(50, 12, np.random.default_rng(1)), non_hands(50, 12, seed=draws))
    mixed = synthetic_outliers(50, 12, np.random.default_rng(1), natural_share=0.4)
    generator = np.random.default_rng(1)
    expected = non_hands(50, 12, seed=generator.integers(2**32))
    chosen = np.flatnonzero(generator.random(50) < 0.4)
    expected[chosen] = natural_images(len(chosen), 12, seed=generator.integers(2**32))
    np.testing.assert_array_equal(mixed, expected)
    assert 10 < len(chosen) < 30
    params = load_params("train", root / "params.yaml") | {"natural_images": 0.4}
    np.testing.assert_array_equal(training_config(params).outliers(50, 12, np.random.default_rng(1)), mixed)
    side = 16  # a dark bar (a "hand") on a light wall: busy backgrounds at 0.9, natural images a share 0.3 of them
    X = np.tile(np.where(np.arange(side * side) % side < 6, 0.3, 0.9).astype(np.float32), (24, 1))
    params |= {"augment_busy_background": 0.9, "natural_images": 0.3, "augment_perturb": [], "augment_shift": 0}
    expected = augmenter(0, mirror=True, background=True, busy_share=0.9, natural_share=0.3)(X)
    np.testing.assert_array_equal(
        training_config(params).augment(X)(np.random.default_rng(3)), expected(np.random.default_rng(3))
    )


@pytest.fixture
def ctrl_c_raises():
    """SIGINT raising KeyboardInterrupt, as in a terminal, even in a run started in the background (which starts
    with SIGINT ignored)."""
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, previous)


def test_a_signal_while_an_epoch_is_logged_takes_effect_once_the_step_is_logged(ctrl_c_raises):
    # DVCLive hands each step to a thread of its own through a queue: an interrupt in the middle of that hand-over
    # left the logger's exit waiting for ever
    class Live:
        step, steps = 0, []

        def log_metric(self, name, value):
            os.kill(os.getpid(), signal.SIGINT)  # Ctrl-C, in the middle of the step

        def next_step(self):
            self.steps.append(self.step)

    live = Live()
    with pytest.raises(KeyboardInterrupt):
        log_epoch(live, {"epoch": 3, "val_loss": 0.5, "val_accuracy": 0.9})
    assert live.steps == [3]  # the step was logged in full before the interrupt took effect
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # and the handler is back


def test_held_signals_are_noted_and_act_at_the_release_even_nested(ctrl_c_raises):
    outer = hold_signals()
    inner = hold_signals()
    os.kill(os.getpid(), signal.SIGINT)
    release_signals(inner)  # still held by the outer hold: noted again, nothing raised
    with pytest.raises(KeyboardInterrupt):
        release_signals(outer)
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
