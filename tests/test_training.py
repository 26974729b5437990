import io

import numpy as np

from signdigits.cnn import CNN
from signdigits.mlp import MLP
from signdigits.params import load_params
from signdigits.training import EpochProgress, build_model, history_tsv, read_history_tsv


def test_progress_is_quiet_for_short_runs_then_shows_a_bar():
    stream = io.StringIO()
    quiet = EpochProgress(10, stream=stream)  # the run has not lasted 2 s
    quiet({"epoch": 1, "train_loss": 0.5, "train_accuracy": 0.8})
    assert stream.getvalue() == ""
    loud = EpochProgress(10, stream=stream, quiet_for=-1, every=0)
    loud({"epoch": 5, "train_loss": 0.5, "train_accuracy": 0.8, "val_loss": 0.6, "val_accuracy": 0.7})
    line = stream.getvalue()
    assert line.startswith("epoch  5/10 [##########..........]  loss 0.5000 acc 0.800  val loss 0.6000 acc 0.700")
    assert "s left" in line


def test_history_tsv_round_trip():
    history = [
        {"epoch": e, "train_loss": 1 / e, "train_accuracy": 0.5, "val_loss": 2 / e, "val_accuracy": 0.4}
        for e in (1, 2, 3)
    ]
    columns = read_history_tsv(history_tsv(history))
    np.testing.assert_allclose(columns["val_loss"], [2, 1, 2 / 3], atol=1e-6)
    assert columns["epoch"].tolist() == [1, 2, 3]


def test_params_choose_the_network(root):
    params = load_params("train", root / "params.yaml")
    net = build_model(params, 784, 2)
    assert isinstance(net, MLP) and (net.n_hidden, net.n_outputs, net.activation) == (128, 1, "sigmoid")
    cnn = build_model(params | {"model": "cnn", "activation": "relu"}, 784, 10)
    assert isinstance(cnn, CNN) and (cnn.channels, cnn.n_hidden, cnn.n_outputs) == (params["conv_channels"], 128, 10)
