import json

import numpy as np
import pytest

from signdigits.cnn import CNN
from signdigits.history import log_epoch, open_log, read_history
from signdigits.mlp import MLP
from signdigits.params import load_params
from signdigits.training import build_model


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
    assert isinstance(net, MLP) and (net.n_hidden, net.n_outputs, net.activation) == (128, 1, "sigmoid")
    cnn = build_model(params | {"model": "cnn", "activation": "relu"}, 784, 10)
    assert isinstance(cnn, CNN) and (cnn.channels, cnn.n_hidden, cnn.n_outputs) == (params["conv_channels"], 128, 10)
