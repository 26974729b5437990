"""ONNX export (``signdigits export MODEL.npz OUT.onnx``): a trained network, MLP or CNN, written as an ONNX graph,
so that an ONNX runtime (onnxruntime on servers, phones and browsers, and others) runs it without this package.
The graph is written node by node with the ``onnx`` package's helper API (no PyTorch round trip), opset OPSET,
float32 throughout (whatever the model file's dtype):

    pixels (N, 1, side, side), a photo's pixels divided by pixel_scale (in [0, 1])
      → probabilities (N, K), K = len(classes): column k is P(classes[k]), each row sums to 1.

A binary model (one sigmoid output p = P(classes[1])) gives the two columns (1 − p, p), so that every model
answers in the same shape and a consumer takes the argmax and indexes ``classes`` without a special case.
Inside, the steps of the network's own prediction (network.py, mlp.py, cnn.py), in its order:

    mirror_average:  pixels ← Concat(pixels, pixels with the width reversed) along N: 2N rows
    X  = Flatten(pixels)                                (N, side²): a row in the model's pixel order (row-major)
    photo_norm:   X ← (X − mean(X)) / √(var(X) + 1e-4)  per row, var the population variance
    standardize:  X0 = (X − μ) / s                      μ per pixel, s one number, both from the model file
    MLP:  Z = Gemm(g(Gemm(X0, W1, b1)), W2, b2)
    CNN:  per block  Conv (k × k, "same" zero padding, bias b_l) → MaxPool 2 × 2 stride 2 → g, or with batch norm
          Conv (no bias) → MaxPool → BatchNormalization (γ_l, shift b_l, running mean and variance, ε 1e-5) → g;
          then Transpose NCHW → NHWC and Flatten (the model's flat order is channels last), Gemm → g → Gemm
    mirror_average:  U ← ReduceMean(Reshape(U, (2, N, units)), axis 0): each photo's mean over its two views
    temperature T (the calibration, if not 1): Z / T
    output: Softmax(Z), or for one output p = Sigmoid(Z) and Concat(1 − p, p)

With the "other" output (train.other_hands), Z is the classes' part of the output layer's U (Network.class_logits:
its first K columns, or U₂ − U₁ for two classes), and a second output gives P(other) = Softmax(U / T)'s last
column, (N, 1), from which the refusal's msp score is (1 − other) · max(probabilities). A model whose refusal reads
the energy score gets an output of it, (N, 1): T · ReduceLogSumExp(V / T) of the classes' units V (Z; with the
"other" output U without its last column; a one-output network's [0, z]), which the probabilities cannot give back
(softmax forgets where the logits sit).

Folded, i.e. not a node of its own: the block's bias b_l, which cnn.py adds after pooling, is the Conv's bias
when the block has no batch norm: adding a per-channel constant commutes with a window's maximum (in floats
too, rounding being monotonic, when the runtime adds the bias after the sum). Nothing else: batch norm's
running statistics stay a BatchNormalization node (merging them into the Conv before the pooling would need
γ > 0), and standardization, per-photo normalization and the temperature are nodes of their own, so the graph
computes what ``Network.predict_proba`` does, step by step.

Left out: what only training uses (dropout: prediction uses the whole network; augmentation; the batch's own
statistics); reading a photo (EXIF orientation, sRGB, grayscale, centre crop, resize), which the consumer does as
``signdigits predict`` does (metadata says how); and applying a refusal rule, whose settings go into the metadata.
"""

import json
import math
from pathlib import Path

import numpy as np

from signdigits import __version__
from signdigits.cnn import BN_EPSILON, CNN
from signdigits.errors import UsageError
from signdigits.files import write_outputs
from signdigits.network import PHOTO_EPSILON

OPSET = 17  # ONNX 1.12 (2022): onnxruntime ≥ 1.13, OpenCV's DNN module and TensorRT read it
INSTALL = 'pip install -e ".[onnx]"'
INPUT, OUTPUT, OTHER, ENERGY = "pixels", "probabilities", "other", "energy"
INT64_MIN = np.iinfo(np.int64).min  # Slice's end for "through index 0" when stepping backwards


def require_onnx():
    """The ``onnx`` module, or a UsageError saying in one line how to install it."""
    try:
        import onnx
    except ImportError:
        raise UsageError(f"signdigits export needs the onnx package: {INSTALL}") from None
    return onnx


class GraphBuilder:
    """Nodes and constants (initializers) of one graph; every node has one output, named as in the math."""

    def __init__(self, onnx):
        self.onnx, self.nodes, self.constants = onnx, [], []

    def constant(self, name, value, dtype=np.float32):
        self.constants.append(self.onnx.numpy_helper.from_array(np.asarray(value, dtype), name))
        return name

    def node(self, op, inputs, output, **attributes):
        self.nodes.append(self.onnx.helper.make_node(op, list(inputs), [output], name=output, **attributes))
        return output

    def activation(self, name, Z, output):
        return self.node({"sigmoid": "Sigmoid", "tanh": "Tanh", "relu": "Relu"}[name], [Z], output)


def _views(graph, net):
    """The pixels the network runs on: the input, or with ``mirror_average`` (Network._views) the input and then
    every photo mirrored left–right (its width read backwards), stacked along N."""
    if not net.mirror_average:
        return INPUT
    backwards = [graph.constant(name, [value], np.int64) for name, value in (("last", -1), ("before_first", INT64_MIN))]
    width, step = graph.constant("width_axis", [3], np.int64), graph.constant("backwards", [-1], np.int64)
    mirrored = graph.node("Slice", [INPUT, *backwards, width, step], "pixels_mirrored")
    return graph.node("Concat", [INPUT, mirrored], "pixels_both", axis=0)


def _view_mean(graph, net, U):
    """U (N, units) from the output layer's logits of ``_views``' rows: each photo's mean over its views."""
    if not net.mirror_average:
        return U
    by_view = graph.node("Reshape", [U, graph.constant("by_view", [2, -1, net.n_units], np.int64)], "U_by_view")
    return graph.node("ReduceMean", [by_view], "U", axes=[0], keepdims=0)


def _preprocessing(graph, net, pixels):
    """X0 (rows, side²) from the pixels: flattened, normalized per photo and standardized as the model says."""
    X = graph.node("Flatten", [pixels], "X", axis=1)
    if net.photo_norm:
        mean = graph.node("ReduceMean", [X], "photo_mean", axes=[1], keepdims=1)
        D = graph.node("Sub", [X, mean], "photo_centred")
        var = graph.node("ReduceMean", [graph.node("Mul", [D, D], "photo_squares")], "photo_var", axes=[1])
        epsilon = graph.constant("photo_epsilon", PHOTO_EPSILON)
        scale = graph.node("Sqrt", [graph.node("Add", [var, epsilon], "photo_var_eps")], "photo_scale")
        X = graph.node("Div", [D, scale], "X_photo")
    if net.input_mean is not None:
        centred = graph.node("Sub", [X, graph.constant("input_mean", net.input_mean)], "X_centred")
        X = graph.node("Div", [centred, graph.constant("input_scale", net.input_scale)], "X0")
    return X


def _mlp_logits(graph, net, X0):
    p = {name: graph.constant(name, value) for name, value in net.params.items()}
    A1 = graph.activation(net.activation, graph.node("Gemm", [X0, p["W1"], p["b1"]], "Z1"), "A1")
    return graph.node("Gemm", [A1, p["W2"], p["b2"]], "Z2")


def _cnn_logits(graph, net, X0):
    p = {name: graph.constant(name, value) for name, value in (net.params | net.running).items()}
    k, pad = net.kernel_size, net.kernel_size // 2
    shape = graph.constant("image_shape", [0, 1, net.side, net.side], np.int64)  # 0: keep N
    A = graph.node("Reshape", [X0, shape], "A0")
    for l, block in enumerate(net.blocks, start=1):
        conv_inputs = [A, p[block.W]] if block.norm else [A, p[block.W], p[block.b]]
        Z = graph.node("Conv", conv_inputs, f"Z{l}", kernel_shape=[k, k], pads=[pad] * 4, strides=[1, 1])
        M = graph.node("MaxPool", [Z], f"M{l}", kernel_shape=[2, 2], strides=[2, 2])  # floor: odd edge dropped
        if block.norm:  # γ (M − μ) / √(σ² + ε) + b, with the running μ and σ²
            gamma, running_mean, running_var = block.norm
            statistics = [p[gamma], p[block.b], p[running_mean], p[running_var]]
            M = graph.node("BatchNormalization", [M, *statistics], f"Mb{l}", epsilon=BN_EPSILON)
        A = graph.activation(net.activation, M, f"A{l}")
    # cnn.py flattens (N, H, W, C) maps: channels last, so the dense weights' rows are in NHWC order
    flat = graph.node("Flatten", [graph.node("Transpose", [A], "A_nhwc", perm=[0, 2, 3, 1])], "flat", axis=1)
    Zh = graph.node("Gemm", [flat, p[net.dense.W], p[net.dense.b]], "Zh")
    Ah = graph.activation(net.activation, Zh, "Ah")
    return graph.node("Gemm", [Ah, p[net.output.W], p[net.output.b]], "Zo")


def _other_probability(graph, net, U):
    """The second output of a network with the "other" output: P(other) = softmax(U / T)'s last column, (N, 1)
    (refusal.other_probability)."""
    if net.temperature != 1.0:
        U = graph.node("Div", [U, graph.constant("temperature_other", net.temperature)], "U_calibrated")
    joint = graph.node("Softmax", [U], "joint", axis=1)
    last = graph.constant("other_column", [net.n_units - 1], np.int64)
    return graph.node("Gather", [joint, last], OTHER, axis=1)


def _refuses_by_energy(net) -> bool:
    return net.refusal is not None and net.refusal["score"] == "energy"


def _energy(graph, net, U):
    """The output of a model whose refusal reads the energy score (refusal.ood_score): T · logsumexp(V / T) over the
    classes' units V, (N, 1); the temperature's Div and Mul only if the model records one, as for the
    probabilities."""
    V = U
    if net.other_output:
        columns = graph.constant("energy_columns", list(range(net.n_units - 1)), np.int64)
        V = graph.node("Gather", [U, columns], "V", axis=1)
    calibrated = net.temperature != 1.0
    if calibrated:
        T = graph.constant("temperature_energy", net.temperature)
        V = graph.node("Div", [V, T], "V_calibrated")
    name = "logsumexp" if calibrated else ENERGY
    if net.binary and not net.other_output:  # one logit z is the pair [0, z]: logsumexp(0, z / T) = softplus(z / T)
        logsumexp = graph.node("Softplus", [V], name)
    else:
        logsumexp = graph.node("ReduceLogSumExp", [V], name, axes=[1])
    return graph.node("Mul", [logsumexp, T], ENERGY) if calibrated else logsumexp


def _class_logits(graph, net, U):
    """The classes' logits from the output layer's U (Network.class_logits): U, or without the "other" unit."""
    if not net.other_output:
        return U

    def take(columns, name):
        return graph.node("Gather", [U, graph.constant(f"{name}_columns", columns, np.int64)], name, axis=1)

    if net.binary:
        return graph.node("Sub", [take([1], "U1"), take([0], "U0")], "Z")
    return take(list(range(net.n_outputs)), "Z")


def _probabilities(graph, net, Z):
    if net.temperature != 1.0:
        Z = graph.node("Div", [Z, graph.constant("temperature", net.temperature)], "Z_calibrated")
    if not net.binary:
        return graph.node("Softmax", [Z], OUTPUT, axis=1)
    P1 = graph.node("Sigmoid", [Z], "P1")  # P(classes[1]), as predict_proba gives it
    P0 = graph.node("Sub", [graph.constant("one", 1.0), P1], "P0")
    return graph.node("Concat", [P0, P1], OUTPUT, axis=1)


def _metadata(net) -> dict:
    """The metadata_props: what a consumer needs to prepare a photo and read the output (strings, JSON where
    not a single number)."""
    meta = net.metadata
    image_size, classes = int(meta["image_size"]), list(meta["classes"])
    props = {
        "classes": json.dumps(classes),
        "image_size": str(image_size),
        "pixel_scale": str(float(meta["pixel_scale"])),
        "input": (
            f"{INPUT}: float32 (N, 1, {image_size}, {image_size}), each a photo read as a viewer shows it (EXIF "
            f"orientation applied, sRGB, grayscale), centre-cropped square, resized to {image_size}² (Lanczos), "
            f"its 0-255 values divided by pixel_scale"
        ),
        "output": (
            f"{OUTPUT}: float32 (N, {len(classes)}), column k the probability of classes[k]; each row sums to 1"
            + ("; a binary model's one sigmoid output p is the pair (1 - p, p)" if net.binary else "")
            + (
                f"; {OTHER}: float32 (N, 1), P(none of the classes), and the probabilities are those of the classes "
                f"given one of them: the refusal's msp score is (1 - {OTHER}) * max({OUTPUT})"
                if net.other_output
                else ""
            )
            + (
                f"; {ENERGY}: float32 (N, 1), the refusal's energy score T * logsumexp(logits / T) over the classes"
                if _refuses_by_energy(net)
                else ""
            )
        ),
        "opset": str(OPSET),
        "format": net.FORMAT,
        "architecture": json.dumps(net.architecture()),
        "temperature": repr(float(net.temperature)),
    }
    if net.refusal is not None:
        props["refusal"] = json.dumps(net.refusal)
    return props


def to_onnx(net):
    """The network as an onnx.ModelProto, checked by onnx.checker (with shape inference). ``net.metadata`` must
    hold classes, image_size and pixel_scale (``cli.load_predictor`` checks them)."""
    onnx = require_onnx()
    helper, TensorProto = onnx.helper, onnx.TensorProto
    graph = GraphBuilder(onnx)
    X0 = _preprocessing(graph, net, _views(graph, net))
    U = _view_mean(graph, net, (_cnn_logits if isinstance(net, CNN) else _mlp_logits)(graph, net, X0))
    _probabilities(graph, net, _class_logits(graph, net, U))
    side, n_classes = int(round(math.sqrt(net.n_inputs))), max(2, net.n_outputs)
    outputs = [helper.make_tensor_value_info(OUTPUT, TensorProto.FLOAT, ["N", n_classes])]
    if net.other_output:
        _other_probability(graph, net, U)
        outputs.append(helper.make_tensor_value_info(OTHER, TensorProto.FLOAT, ["N", 1]))
    if _refuses_by_energy(net):
        _energy(graph, net, U)
        outputs.append(helper.make_tensor_value_info(ENERGY, TensorProto.FLOAT, ["N", 1]))
    proto = helper.make_graph(
        graph.nodes,
        f"signdigits {net.FORMAT}",
        [helper.make_tensor_value_info(INPUT, TensorProto.FLOAT, ["N", 1, side, side])],
        outputs,
        graph.constants,
        doc_string=__doc__.split("\n\n")[0],
    )
    opset = [helper.make_opsetid("", OPSET)]
    model = helper.make_model(
        proto,
        opset_imports=opset,
        ir_version=helper.find_min_ir_version_for(opset),  # the newest IR would lock out older runtimes
        producer_name="signdigits",
        producer_version=__version__,
    )
    helper.set_model_props(model, _metadata(net))
    onnx.checker.check_model(model, full_check=True)
    return model


def write_onnx(net, path):
    """``to_onnx(net)`` written to ``path`` all-or-nothing (``write_outputs``); returns the size in bytes."""
    content = to_onnx(net).SerializeToString()
    write_outputs({Path(path): content})
    return len(content)
