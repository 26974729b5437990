"""`signdigits export`: the ONNX graph of every kind of network gives our probabilities and classes (onnxruntime and
onnx's reference evaluator), carries what a consumer needs in its metadata, and bad input is one line, no file."""

import copy
import itertools
import json
import sys

import numpy as np
import pytest

from signdigits.cli import main
from signdigits.cnn import CNN
from signdigits.mlp import MLP
from signdigits.modelfile import load_model, save_model

onnx = pytest.importorskip("onnx")  # part of requirements-dev.txt: CI has it, and fails on any skip
onnxruntime = pytest.importorskip("onnxruntime")
from signdigits.export import OPSET, to_onnx  # noqa: E402  (needs onnx)

KERNEL = {"relu": 3, "tanh": 5, "sigmoid": 1}  # each kernel size once, without multiplying the cases
# (model, activation, n_outputs, standardize, batch_norm, photo_norm, temperature): every combination
OPTIONS = [
    options
    for options in itertools.product(
        ("mlp", "cnn"), ("sigmoid", "tanh", "relu"), (1, 3), (False, True), (False, True), (False, True), (1.0, 0.7)
    )
    if options[0] == "cnn" or not options[4]  # the MLP has no batch normalisation
]


def random_network(
    model, activation, n_outputs, standardize, batch_norm, photo_norm, temperature, seed=0, other_output=False
):
    """A small untrained network with every number away from its initial value: biases and batch-norm shifts
    random, γ of both signs, running statistics far from (0, 1), a per-pixel input mean. The CNN's 11-pixel side
    leaves an odd row and column for each pooling to drop (11 → 5 → 2). photo_norm and the temperature are set
    by hand, as the train stage stores them."""
    rng = np.random.default_rng(seed)
    if model == "mlp":
        net = MLP(49, 6, n_outputs, activation, seed=seed, standardize=standardize, other_output=other_output)
    else:
        net = CNN(121, n_outputs, (3, 2), KERNEL[activation], 5, activation, seed, standardize=standardize,
                  batch_norm=batch_norm, other_output=other_output)  # fmt: skip
    for name, value in net.params.items():
        if name.startswith("b"):
            value[...] = rng.normal(0, 0.5, value.shape)
        elif name.startswith("gamma"):
            value[...] = rng.uniform(-1.5, 1.5, value.shape)
    for name, value in net.running.items():
        value[...] = rng.uniform(0.2, 3, value.shape) if "var" in name else rng.normal(0, 0.5, value.shape)
    if standardize:
        net.input_mean = rng.uniform(0.2, 0.8, net.n_inputs).astype(net.dtype)
        net.input_scale = net.dtype.type(0.3)
    net.photo_norm = photo_norm
    side = int(np.sqrt(net.n_inputs))
    net.metadata = {"classes": [str(d) for d in range(max(2, n_outputs))], "image_size": side, "pixel_scale": 255.0}
    net.temperature = temperature
    return net


def photos(net, n=24, seed=1):
    """Random pixels in [0, 1], and two flat photos (black; mid grey), where a photo's variance is 0."""
    X = np.random.default_rng(seed).uniform(0, 1, (n, net.n_inputs)).astype(np.float32)
    X[0], X[1] = 0.0, 0.5
    return X


@pytest.mark.parametrize("options", OPTIONS, ids=lambda o: "-".join(map(str, o)))
def test_the_graph_gives_our_probabilities_and_classes(options, onnx_parity):
    net = random_network(*options)
    differences = onnx_parity(net, to_onnx(net).SerializeToString(), photos(net))
    assert max(differences.values()) <= 1e-5
    ops = {node.op_type for node in to_onnx(net).graph.node}
    assert "Dropout" not in ops and ("Transpose" in ops) == (options[0] == "cnn")


@pytest.mark.parametrize("other_output", [False, True])
@pytest.mark.parametrize("n_outputs", [1, 3])
@pytest.mark.parametrize("model", ["mlp", "cnn"])
@pytest.mark.parametrize("temperature", [1.0, 1.3])
def test_a_model_that_refuses_by_energy_exports_its_score(model, n_outputs, other_output, temperature, onnx_parity):
    """The energy score cannot be computed from the probabilities (softmax forgets where the logits sit), so the
    graph gives it as an output of its own, which onnx_parity checks against refusal.ood_score in both runtimes; a
    model refusing by msp has no such output."""
    net = random_network(model, "relu", n_outputs, True, model == "cnn", True, temperature, other_output=other_output)
    outputs = {}
    for score in ("msp", "energy"):
        net.refusal = {"score": score, "threshold": 0.0}
        graph = to_onnx(net)
        assert max(onnx_parity(net, graph.SerializeToString(), photos(net)).values()) <= 1e-5
        outputs[score] = [output.name for output in graph.graph.output]
    other = ["other"] if other_output else []
    assert outputs == {"msp": ["probabilities", *other], "energy": ["probabilities", *other, "energy"]}


@pytest.mark.parametrize("n_outputs", [1, 3])
@pytest.mark.parametrize("model", ["mlp", "cnn"])
def test_a_model_that_averages_over_the_mirror_image_exports_it(model, n_outputs, onnx_parity):
    """With mirror_average, the graph runs each photo and its mirror image and averages the output layer's units,
    before the probabilities, P(other) and the energy: onnx_parity checks all three against the network's, which
    differ from those of the same network without it; and the graph answers a photo as its mirror image."""
    net = random_network(model, "relu", n_outputs, True, model == "cnn", True, 1.3, other_output=True)
    net.mirror_average, net.refusal = True, {"score": "energy", "threshold": 0.0}
    X, graph = photos(net), to_onnx(net).SerializeToString()
    assert max(onnx_parity(net, graph, X).values()) <= 1e-5
    side = int(np.sqrt(net.n_inputs))
    pixels = X.reshape(-1, 1, side, side)
    session = onnxruntime.InferenceSession(graph, providers=["CPUExecutionProvider"])
    answers, mirrored = (session.run(None, {"pixels": p}) for p in (pixels, np.ascontiguousarray(pixels[..., ::-1])))
    for output, output_mirrored in zip(answers, mirrored):
        np.testing.assert_allclose(output_mirrored, output, atol=1e-6)
    one_view = copy.deepcopy(net)
    one_view.mirror_average = False
    assert not np.allclose(one_view.predict_proba(X), net.predict_proba(X), atol=1e-3)


@pytest.fixture
def model_file(tmp_path):
    """A saved binary CNN with batch norm, standardization, a temperature and a refusal rule."""
    net = random_network("cnn", "relu", 1, True, True, False, 1.0)
    net.temperature, net.refusal = 1.5, {"score": "energy", "threshold": 0.25}
    path = tmp_path / "model.npz"
    save_model(net, path)
    return path


def test_export_writes_a_checked_model_with_its_metadata(model_file, tmp_path, capsys, onnx_parity):
    out = tmp_path / "exported" / "model.onnx"
    assert main(["export", str(model_file), str(out)]) == 0
    assert capsys.readouterr().out == f"{out}\t{out.stat().st_size} bytes\tONNX opset {OPSET}\n"
    model = onnx.load(out)
    onnx.checker.check_model(model, full_check=True)
    assert [(o.domain, o.version) for o in model.opset_import] == [("", OPSET)]
    props = {prop.key: prop.value for prop in model.metadata_props}
    assert json.loads(props["classes"]) == [str(d) for d in range(2)]
    assert (props["image_size"], props["pixel_scale"], props["opset"]) == ("11", "255.0", str(OPSET))
    assert json.loads(props["refusal"]) == {"score": "energy", "threshold": 0.25}
    assert props["temperature"] == "1.5" and props["format"] == CNN.FORMAT
    assert "(N, 2)" in props["output"] and "classes[k]" in props["output"] and "pixel_scale" in props["input"]
    net = load_model(model_file)
    onnx_parity(net, out.read_bytes(), photos(net))


def test_without_onnx_it_says_what_to_install(model_file, tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "onnx", None)  # `import onnx` now raises ImportError
    assert main(["export", str(model_file), str(tmp_path / "model.onnx")]) == 1
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and 'pip install -e ".[onnx]"' in error
    assert not (tmp_path / "model.onnx").exists()


def test_bad_input_is_one_line_and_no_file(model_file, tmp_path, capsys):
    (tmp_path / "notes.txt").write_text("not a model")
    unknown = tmp_path / "unknown.npz"
    with np.load(model_file) as archive:
        content = {key: archive[key] for key in archive.files}
    header = json.loads(str(content["header"]))
    header["architecture"]["format"] = "signdigits-rnn-1"
    np.savez(unknown, **content | {"header": np.array(json.dumps(header))})
    out = tmp_path / "out" / "model.onnx"
    cases = [
        ((tmp_path / "notes.txt", out), "is not a readable model file"),
        ((tmp_path / "absent.npz", out), "model file"),
        ((unknown, out), "is not a signdigits model"),
        ((model_file, tmp_path / "notes.txt" / "model.onnx"), "cannot write"),  # its folder is a file
        ((model_file, tmp_path), "cannot write"),  # a folder
        ((model_file, model_file), "is the model file itself"),
    ]
    before = model_file.read_bytes()
    for (model, target), message in cases:
        assert main(["export", str(model), str(target)]) == 1
        captured = capsys.readouterr()
        assert captured.out == "" and captured.err.count("\n") == 1, captured.err
        assert captured.err.startswith("error: ") and message in captured.err, captured.err
    assert model_file.read_bytes() == before
    leftovers = [p.name for p in tmp_path.rglob("*") if p.suffix in (".onnx", ".tmp")]
    assert not leftovers, leftovers


def test_the_default_model_on_the_test_split(built_copy, exported_parity):
    """The default 0-vs-5 model of the real run, on every photo of its test split."""
    assert max(exported_parity(built_copy).values()) <= 1e-5
