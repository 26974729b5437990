"""The model file: a round trip keeps every number, and every broken or hostile file is a one-line UsageError,
found before the network is allocated."""

import json
import subprocess
import sys
import tracemalloc

import numpy as np
import pytest

from signdigits.cnn import CNN
from signdigits.errors import UsageError
from signdigits.layout import shapes
from signdigits.mlp import MLP
from signdigits.modelfile import load_model, save_model
from signdigits.network import TrainingConfig


def rewrite(path, header_change=None, **arrays):
    """The model file at ``path`` rewritten with its header's architecture/metadata updated, and arrays replaced."""
    with np.load(path) as archive:
        content = {key: archive[key] for key in archive.files}
    header = json.loads(str(content["header"]))
    for part, values in (header_change or {}).items():
        header[part] |= values
    content |= {"header": np.array(json.dumps(header))} | arrays
    np.savez(path, **content)


@pytest.fixture
def saved(tmp_path):
    net = MLP(4, 3, 1, "tanh", seed=0, standardize=True)
    net.fit(np.random.default_rng(0).normal(size=(8, 4)), np.arange(8) % 2, TrainingConfig(epochs=1, learning_rate=0.1))
    net.metadata = {"classes": ["0", "5"], "image_size": 2, "pixel_scale": 255.0}
    path = tmp_path / "model.npz"
    save_model(net, path)
    return net, path


@pytest.mark.parametrize(
    "net",
    [
        MLP(10, 8, 3, "tanh", seed=0),
        MLP(9, 2, 1, "relu", seed=1, standardize=True, dtype=np.float64),
        MLP(16, 3, 3, "relu", seed=1, standardize=True, mirror_average=True),
        CNN(64, 1, channels=(3, 2), kernel_size=3, n_hidden=4, activation="tanh", seed=0),
        CNN(81, 10, channels=(4,), kernel_size=5, n_hidden=6, seed=2),
        CNN(225, 3, channels=(2, 3, 1), kernel_size=1, n_hidden=3, seed=3),
        CNN(64, 3, channels=(3, 2), kernel_size=3, n_hidden=4, seed=4, standardize=True, batch_norm=True),
        CNN(36, 1, channels=(2,), kernel_size=3, n_hidden=3, seed=5, standardize=True, mirror_average=True),
    ],
)
def test_round_trip_keeps_every_number(net, tmp_path):
    X = np.random.default_rng(1).normal(size=(6, net.n_inputs))
    if net.standardize:
        net.fit(X, np.arange(6) % 2, TrainingConfig(epochs=1, learning_rate=0.1))
    net.metadata = {"classes": ["a", "b"], "image_size": 3}
    # the shapes the model file expects from the architecture alone are the network's
    arrays = net.params | net.running  # batch normalisation's running statistics (trained above) are stored too
    assert shapes(net.MODEL, net.architecture()) == {name: v.shape for name, v in arrays.items()}
    save_model(net, tmp_path / "m.npz")
    loaded = load_model(tmp_path / "m.npz")
    assert type(loaded) is type(net) and loaded.architecture() == net.architecture()
    assert loaded.metadata == net.metadata and loaded.dtype == net.dtype
    assert set(loaded.running) == set(net.running)
    for name in arrays:
        assert (loaded.params | loaded.running)[name].tobytes() == arrays[name].tobytes()
    np.testing.assert_array_equal(loaded.predict_proba(X), net.predict_proba(X))


def expect_refused(path, message):
    with pytest.raises(UsageError, match=message) as raised:
        load_model(path)
    assert "\n" not in str(raised.value)


def test_files_that_are_not_models(tmp_path):
    path = tmp_path / "model.npz"
    expect_refused(path, r"model file .*model.npz not found; run from the project root, give --model, or retrain it")
    path.write_bytes(b"PK\x03\x04 truncated")
    expect_refused(path, "is not a readable model file")
    np.save(tmp_path / "array.npy", np.zeros((3, 2)))
    (tmp_path / "array.npy").rename(path)  # a .npy renamed .npz
    expect_refused(path, r"model.npz is a single .npy array, not a model \(.npz zip of arrays\)")
    np.savez(path, W1=np.zeros((3, 2)))
    expect_refused(path, "has no JSON header")
    np.savez(path, header=np.array([1, 2], dtype=object), W1=np.zeros(1))
    expect_refused(path, "has no JSON header")  # an object array: refused, nothing unpickled
    np.savez(path, header=np.array("{not json"))
    expect_refused(path, "is not a signdigits model")
    np.savez(path, header=np.array(json.dumps({"architecture": {"format": "keras-7"}})))
    expect_refused(path, r"is not a signdigits model \(header: KeyError 'keras-7'\)")


@pytest.mark.parametrize(
    "change, message",
    [
        ({"n_hidden": "3"}, r"architecture.n_hidden = '3' is not valid"),
        ({"n_hidden": True}, r"architecture.n_hidden = True is not valid"),
        ({"n_inputs": 4.0}, r"architecture.n_inputs = 4.0 is not valid"),
        ({"activation": "softsign"}, r"architecture.activation = 'softsign' is not valid"),
        ({"standardize": "yes"}, r"architecture.standardize = 'yes' is not valid"),
        ({"dtype": "float16"}, r"architecture.dtype = 'float16' is not valid"),
        ({"n_outputs": 2}, r"W2 has shape \(3, 1\) \(float32\), but the header's architecture needs \(3, 2\)"),
        ({"standardize": False}, r"holds arrays .*input_mean.*, expected \['W1', 'W2', 'b1', 'b2'\]"),
    ],
)
def test_header_types_and_sizes_are_checked(saved, change, message):
    _, path = saved
    rewrite(path, {"architecture": change})
    expect_refused(path, message)


def test_arrays_of_the_wrong_shape_or_values(saved):
    net, path = saved
    rewrite(path, W2=np.zeros((5, 1), np.float32))
    expect_refused(path, r"W2 has shape \(5, 1\) \(float32\), but the header's architecture needs \(3, 1\) of floats")
    rewrite(path, W2=np.zeros((3, 1), np.int64))
    expect_refused(path, r"W2 has shape \(3, 1\) \(int64\)")
    rewrite(path, W2=np.array([[np.nan], [0], [0]], np.float32))
    expect_refused(path, "W2 holds values that are not finite floats")
    rewrite(path, W2=net.params["W2"], input_scale=np.array(0.0, np.float32))
    expect_refused(path, "input_scale is not > 0")


def test_batch_norm_statistics_are_checked(tmp_path):
    net = CNN(16, 3, channels=(2,), n_hidden=3, seed=0, batch_norm=True)
    path = tmp_path / "bn.npz"
    save_model(net, path)
    rewrite(path, running_var1=np.array([1.0, -0.5], np.float32))
    expect_refused(path, "running_var1 holds negative variances")
    rewrite(path, running_var1=np.ones(3, np.float32))
    expect_refused(path, r"running_var1 has shape \(3,\) \(float32\), but the header's architecture needs \(2,\)")
    save_model(net, path)
    rewrite(path, {"architecture": {"batch_norm": False}})  # a header that disowns the statistics it carries
    expect_refused(path, "holds arrays .*running_mean1.*, expected")


@pytest.mark.parametrize("option", ["batch_norm", "mirror_average"])
def test_a_model_file_from_before_an_option_loads_without_it(option, tmp_path):
    net = CNN(16, 3, channels=(2,), n_hidden=3, seed=0)
    path = tmp_path / "old.npz"
    save_model(net, path)
    with np.load(path) as archive:
        content = {key: archive[key] for key in archive.files}
    header = json.loads(str(content["header"]))
    del header["architecture"][option]  # as written before the option existed
    np.savez(path, **(content | {"header": np.array(json.dumps(header))}))
    loaded = load_model(path)
    assert getattr(loaded, option) is False and loaded.running == {}
    X = np.random.default_rng(0).normal(size=(4, 16))
    np.testing.assert_array_equal(loaded.predict_proba(X), net.predict_proba(X))


def test_a_huge_header_in_a_small_file_is_refused_before_allocating(saved):
    """n_hidden 200000 (784 × 200000 float32 weights: 627 MB) in a file of a few KB."""
    _, path = saved
    rewrite(path, {"architecture": {"n_hidden": 200_000, "n_inputs": 784}})
    tracemalloc.start()
    try:
        expect_refused(path, r"W1 has shape \(4, 3\) .* needs \(784, 200000\)")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 5_000_000


@pytest.mark.slow  # `signdigits predict` in a subprocess
@pytest.mark.parametrize(
    "metadata, message",
    [
        ({"image_size": "2"}, "records image_size '2', not a whole number of pixels ≥ 1"),
        ({"pixel_scale": 0}, "records pixel_scale 0, not a number in [1, 65535]"),
        ({"pixel_scale": float("nan")}, "records pixel_scale nan, not a number in [1, 65535]"),
        ({"pixel_scale": "255"}, "records pixel_scale '255', not a number in [1, 65535]"),
        ({"classes": "05"}, "records classes '05', not a list of names"),
    ],
)
def test_predict_refuses_metadata_it_cannot_use(saved, tmp_path, half_image, metadata, message):
    _, path = saved
    rewrite(path, {"metadata": metadata})
    half_image((20, 20), "left").save(tmp_path / "photo.png")
    result = subprocess.run(
        [sys.executable, "-m", "signdigits", "predict", str(tmp_path / "photo.png"), "--model", str(path)],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 1 and result.stdout == ""
    assert result.stderr.startswith("error: ") and result.stderr.count("\n") == 1
    assert message in result.stderr and "retrain it" in result.stderr
