"""A one-hidden-layer neural network in NumPy, trained by mini-batch gradient descent with backpropagation.

The course project's network, written out as its report derives it, for a batch X of N rows:

    Z1 = X W1 + b1      A1 = g(Z1)          hidden layer, g = sigmoid (the seed's), tanh or relu
                        D1 = A1 · keep      keep: the dropout mask while training (network.py); else D1 = A1
    Z2 = D1 W2 + b2     A2 = σ(Z2)          one output: sigmoid, with binary cross-entropy
                        A2 = softmax(Z2)    K ≥ 2 outputs: softmax, with categorical cross-entropy

Both output/loss pairs give the same output error, dZ2 = (A2 − Y) / N, from which everything else follows by
the chain rule (``_backward``). The output layer, the loss, prediction and the training loop are shared with the
CNN and live in ``network.py``; the optimizers in ``optim.py``.

What it leaves out, on purpose: more than one hidden layer, batch normalisation, early stopping.
Options past the seed: momentum or Adam, L2 weight decay, inverse-time learning-rate decay, input
standardization, dropout of the hidden layer, augmentation of the training images.
"""

import numpy as np

from signdigits.choices import ACTIVATIONS
from signdigits.layout import CHUNK, mlp_layers
from signdigits.network import GAIN_AFTER, Network, activate, activation_slope


class MLP(Network):
    """n_inputs → n_hidden → 1 (sigmoid) or K (softmax), or K + 1 (softmax) with ``other_output``. ``params`` holds
    W1 (n_inputs, n_hidden), b1 (n_hidden,), W2 (n_hidden, n_units), b2 (n_units,); computations run in ``dtype``
    (float64 for gradient checks)."""

    FORMAT = "signdigits-mlp-1"
    MODEL = "mlp"
    CHUNK = CHUNK["mlp"]
    WEIGHTS = ("W1", "W2")
    # One BLAS thread: a batch's products are a few MFLOP, too small to be worth handing to a second thread
    # (benchmarks/train_speed.py measures it).
    BLAS_THREADS = 1

    def __init__(
        self,
        n_inputs,
        n_hidden,
        n_outputs=1,
        activation="sigmoid",
        seed=0,
        dtype=np.float32,
        standardize=False,
        photo_norm=False,
        other_output=False,
        mirror_average=False,
    ):
        if activation not in ACTIVATIONS:
            raise ValueError(f"activation must be one of {ACTIVATIONS}, not {activation!r}")
        if n_hidden < 1:
            raise ValueError("n_hidden must be positive")
        super().__init__(n_inputs, n_outputs, seed, dtype, standardize, photo_norm, other_output, mirror_average)
        self.n_hidden, self.activation = int(n_hidden), activation
        # Weights ~ N(0, gain² / fan_in), biases 0; the gains are explained at GAIN_AFTER.
        gain_hidden = GAIN_AFTER[activation]
        gain_input = GAIN_AFTER["relu"] if activation == "relu" else 1.0
        for layer, gain in zip(mlp_layers(self.n_inputs, self.n_hidden, self.n_units), (gain_input, gain_hidden)):
            self.params[layer.W] = self.normal((layer.inputs, layer.outputs), layer.inputs, gain)
            self.params[layer.b] = np.zeros(layer.outputs, self.dtype)

    def _forward(self, X0, keep=None, training=False):
        """The cache for backpropagation and the logits Z2; X0 is the (standardized) input, ``keep`` the hidden
        layer's dropout mask (None: no dropout). ``training`` changes nothing here: no layer of the MLP computes
        differently while training."""
        Z1 = X0 @ self.params["W1"] + self.params["b1"]
        A1 = activate(self.activation, Z1)
        D1 = A1 if keep is None else A1 * keep  # what the output layer sees
        Z2 = D1 @ self.params["W2"] + self.params["b2"]
        return (X0, Z1, A1, D1, keep), Z2

    def _backward(self, cache, dZ2):
        """From the output error dZ2 = (A2 − Y) / N to the gradient of every parameter, by the chain rule."""
        X0, Z1, A1, D1, keep = cache
        dW2 = D1.T @ dZ2  # Z2 = D1 W2 + b2
        db2 = dZ2.sum(axis=0)
        dA1 = dZ2 @ self.params["W2"].T  # the error flows back through W2 …
        if keep is not None:  # … through the mask (D1 = A1 · keep) …
            dA1 = dA1 * keep
        dZ1 = dA1 * activation_slope(self.activation, Z1, A1)  # … then through g, elementwise
        dW1 = X0.T @ dZ1  # Z1 = X0 W1 + b1
        db1 = dZ1.sum(axis=0)
        return {"W1": dW1, "b1": db1, "W2": dW2, "b2": db2}

    def _last_hidden(self, cache):
        return cache[2]  # A1

    def architecture(self):
        return {
            "n_inputs": self.n_inputs,
            "n_hidden": self.n_hidden,
            "n_outputs": self.n_outputs,
            "activation": self.activation,
            "seed": self.seed,
            "standardize": self.standardize,
            "photo_norm": self.photo_norm,
            "other_output": self.other_output,
            "mirror_average": self.mirror_average,
        }
