"""The networks' layers, worked out from their constructor arguments alone: each parameter's name and shape, said
once. mlp.py and cnn.py build their params from it, modelfile.py checks a model file's arrays against it before
reading them, and params.py estimates training memory from it. Nothing here allocates or imports NumPy, so that
checking params.yaml stays light.

The parameters are named by layer, counted from 1 in the order the input flows through: the MLP's W1, b1 (hidden)
and W2, b2 (output); the CNN's W_l, b_l per conv block (and gamma_l, running_mean_l, running_var_l with batch
normalisation), then the dense layer's and the output's. These names are the model file's (modelfile.py).
"""

import math
from dataclasses import dataclass
from itertools import count

# Rows per forward pass when predicting or scoring: bounds the activations' memory. A CNN row's im2col rows and
# maps take ~100 times an MLP row's: fewer rows at a time (no slower).
CHUNK = {"mlp": 512, "cnn": 64}


def pooled_side(side: int, poolings: int = 1) -> int:
    """The side of a side × side map after ``poolings`` 2 × 2 max-poolings of stride 2 (each drops an odd last row
    and column): side // 2^poolings."""
    return side >> poolings


@dataclass(frozen=True)
class Dense:
    """A dense layer: weights ``W`` (inputs, outputs) and bias ``b`` (outputs,), by their names in params."""

    W: str
    b: str
    inputs: int
    outputs: int

    def shapes(self) -> dict:
        return {self.W: (self.inputs, self.outputs), self.b: (self.outputs,)}


@dataclass(frozen=True)
class Conv:
    """A conv block: kernels ``W`` (out_channels, in_channels, k, k) over in_channels maps of side × side, then
    2 × 2 max-pooling, and bias ``b`` (out_channels,); with batch normalisation, ``norm`` names γ (in params) and
    the running mean and variance (in running), each (out_channels,)."""

    W: str
    b: str
    in_channels: int
    out_channels: int
    kernel_size: int
    side: int
    norm: tuple[str, str, str] | None

    def shapes(self) -> dict:
        k, channel = self.kernel_size, (self.out_channels,)
        shapes = {self.W: (self.out_channels, self.in_channels, k, k), self.b: channel}
        return shapes | {name: channel for name in self.norm or ()}


def mlp_layers(n_inputs, n_hidden, n_outputs) -> tuple[Dense, Dense]:
    """(hidden, output) of mlp.MLP."""
    return Dense("W1", "b1", n_inputs, n_hidden), Dense("W2", "b2", n_hidden, n_outputs)


def cnn_layers(n_inputs, n_outputs, channels, kernel_size, n_hidden, batch_norm) -> tuple[list[Conv], Dense, Dense]:
    """(blocks, dense, output) of cnn.CNN: each block halves the side of its maps (``pooled_side``); the dense
    layer reads the last block's maps flattened."""
    numbers = count(1)
    side, in_channels, blocks = math.isqrt(n_inputs), 1, []
    for out_channels in channels:
        l = next(numbers)
        norm = (f"gamma{l}", f"running_mean{l}", f"running_var{l}") if batch_norm else None
        blocks.append(Conv(f"W{l}", f"b{l}", in_channels, out_channels, kernel_size, side, norm))
        in_channels, side = out_channels, pooled_side(side)
    l = next(numbers)
    dense = Dense(f"W{l}", f"b{l}", in_channels * side * side, n_hidden)
    l = next(numbers)
    return blocks, dense, Dense(f"W{l}", f"b{l}", n_hidden, n_outputs)


def layers(model: str, architecture: dict):
    """The layers of ``model`` ("mlp" or "cnn") with these constructor arguments (a model file's architecture; one
    from before batch normalisation has no batch_norm)."""
    a = architecture
    if model == "mlp":
        return mlp_layers(a["n_inputs"], a["n_hidden"], output_units(a["n_outputs"], a.get("other_output", False)))
    units = output_units(a["n_outputs"], a.get("other_output", False))
    blocks, dense, output = cnn_layers(
        a["n_inputs"], units, a["channels"], a["kernel_size"], a["n_hidden"], a.get("batch_norm", False)
    )
    return *blocks, dense, output


def output_units(n_outputs: int, other_output: bool) -> int:
    """The output layer's units: n_outputs, or with ``other_output`` one per class (two for one sigmoid output)
    and the "other" unit. (A model file from before other_output has none: ``layers`` reads it as False.)"""
    return max(2, n_outputs) + 1 if other_output else n_outputs


def shapes(model: str, architecture: dict) -> dict:
    """{name: shape} of every array the network holds: its params and running statistics."""
    return {name: shape for layer in layers(model, architecture) for name, shape in layer.shapes().items()}


def row_floats(model: str, architecture: dict) -> int:
    """An estimate of the values one row holds at once in training: the input of the last hidden layer, its
    pre-activation and activation, and the output; per conv block before it, the im2col rows (side² × C·k²), and
    the pre-activation, activation and pooled maps (3 side² F), two more pooled maps with batch normalisation."""
    *blocks, hidden, output = layers(model, architecture)
    floats = hidden.inputs + 2 * hidden.outputs + output.outputs
    for block in blocks:
        floats += block.side**2 * (block.in_channels * block.kernel_size**2 + 3 * block.out_channels)
        if block.norm:
            floats += 2 * pooled_side(block.side) ** 2 * block.out_channels
    return floats


def architecture(train: dict, n_inputs: int, n_classes: int, other_output: bool = False) -> dict:
    """The constructor arguments of the network the ``train`` params describe (train.model: mlp or cnn): one sigmoid
    output for two classes, K softmax outputs for K > 2, and one more, "other", if ``other_output``
    (the output layer is then K + 1 softmax units); hidden_units is the MLP's hidden layer, or the CNN's dense
    layer."""
    arguments = {
        "n_inputs": n_inputs,
        "n_hidden": train["hidden_units"],
        "n_outputs": 1 if n_classes == 2 else n_classes,
        "activation": train["activation"],
        "seed": train["seed"],
        "standardize": train["standardize"],
        "photo_norm": train["photo_norm"],
        "other_output": other_output,
        "mirror_average": train["mirror_average"],
    }
    if train["model"] == "cnn":
        arguments |= {
            "channels": train["conv_channels"],
            "kernel_size": train["kernel_size"],
            "batch_norm": train["batch_norm"],
        }
    return arguments
