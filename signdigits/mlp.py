"""A one-hidden-layer neural network in NumPy, trained by mini-batch gradient descent with backpropagation.

The course project's network, written out as its report derives it, for a batch X of N rows:

    Z1 = X W1 + b1      A1 = g(Z1)          hidden layer, g = sigmoid (the seed's), tanh or relu
    Z2 = A1 W2 + b2     A2 = σ(Z2)          one output: sigmoid, with binary cross-entropy
                        A2 = softmax(Z2)    K ≥ 2 outputs: softmax, with categorical cross-entropy

Both output/loss pairs give the same output error, dZ2 = (A2 − Y) / N, from which everything else follows by
the chain rule (``_backward``). The output layer, the loss, training, prediction and the model file are shared
with the CNN and live in ``network.py``.

Plain SGD on fewer rows than inputs (the seed's 329 photos of 784 pixels) is computed through the Gram matrix of
the rows instead of W1 (``_gram_epochs``): the same steps, about three times faster.

What it leaves out, on purpose: more than one hidden layer, dropout, batch normalisation, early stopping.
Options past the seed: momentum or Adam, L2 weight decay, inverse-time learning-rate decay, input
standardization.
"""

import numpy as np

from signdigits.network import ACTIVATIONS, GAIN_AFTER, Network, activate, activation_slope, batches, make_optimizer


class MLP(Network):
    """n_inputs → n_hidden → 1 (sigmoid) or K (softmax). ``params`` holds W1 (n_inputs, n_hidden), b1 (n_hidden,),
    W2 (n_hidden, n_outputs), b2 (n_outputs,); computations run in ``dtype`` (float64 for gradient checks)."""

    FORMAT = "signdigits-mlp-1"
    WEIGHTS = ("W1", "W2")
    # One BLAS thread: a batch's products are a few MFLOP, and handing them to a second thread cost more than it
    # saved (fit ran 1.7× slower with two threads on the 2-core machines this was measured on).
    BLAS_THREADS = 1

    def __init__(
        self, n_inputs, n_hidden, n_outputs=1, activation="sigmoid", seed=0, dtype=np.float32, standardize=False
    ):
        if activation not in ACTIVATIONS:
            raise ValueError(f"activation must be one of {ACTIVATIONS}, not {activation!r}")
        if n_hidden < 1:
            raise ValueError("n_hidden must be positive")
        super().__init__(n_inputs, n_outputs, seed, dtype, standardize)
        self.n_hidden, self.activation = int(n_hidden), activation
        # fit computes plain SGD through the Gram matrix of the rows when there are fewer rows than inputs
        # (``_gram_epochs``); False keeps the batch loop, as the tests and the benchmark do to compare the two.
        self.gram_when_fewer_rows = True
        # Weights ~ N(0, gain² / fan_in), biases 0; the gains are explained at GAIN_AFTER.
        gain_hidden = GAIN_AFTER[activation]
        gain_input = GAIN_AFTER["relu"] if activation == "relu" else 1.0
        self.params = {
            "W1": self.normal((self.n_inputs, self.n_hidden), self.n_inputs, gain_input),
            "b1": np.zeros(self.n_hidden, self.dtype),
            "W2": self.normal((self.n_hidden, self.n_outputs), self.n_hidden, gain_hidden),
            "b2": np.zeros(self.n_outputs, self.dtype),
        }

    def _forward(self, X0):
        """The cache for backpropagation, (X0, Z1, A1), and the logits Z2; X0 is the (standardized) input."""
        Z1 = X0 @ self.params["W1"] + self.params["b1"]
        A1, Z2 = self._from_hidden(Z1)
        return (X0, Z1, A1), Z2

    def _from_hidden(self, Z1):
        """A1 = g(Z1) and Z2 = A1 W2 + b2."""
        A1 = activate(self.activation, Z1)
        return A1, A1 @ self.params["W2"] + self.params["b2"]

    def _backward(self, cache, dZ2):
        """From the output error dZ2 = (A2 − Y) / N to the gradient of every parameter, by the chain rule."""
        X0, Z1, A1 = cache
        grads, dZ1 = self._backward_to_hidden(Z1, A1, dZ2)
        grads["W1"] = X0.T @ dZ1  # Z1 = X0 W1 + b1
        return grads

    def _backward_to_hidden(self, Z1, A1, dZ2):
        """The gradients of W2, b2 and b1, and dZ1: all of backpropagation but the product dW1 = X0ᵀ dZ1."""
        dW2 = A1.T @ dZ2  # Z2 = A1 W2 + b2
        db2 = dZ2.sum(axis=0)
        dA1 = dZ2 @ self.params["W2"].T  # the error flows back through W2 …
        dZ1 = dA1 * activation_slope(self.activation, Z1, A1)  # … then through g, elementwise
        return {"b1": dZ1.sum(axis=0), "W2": dW2, "b2": db2}, dZ1

    def _epochs(self, X, y, rates, batch_size, optimizer, momentum, weight_decay, augment, held_out):
        plain_sgd = optimizer == "sgd" and not momentum and not weight_decay and augment is None
        if plain_sgd and self.gram_when_fewer_rows and len(X) < self.n_inputs:
            yield from self._gram_epochs(X, y, rates, batch_size, held_out)
        else:
            yield from super()._epochs(X, y, rates, batch_size, optimizer, momentum, weight_decay, augment, held_out)

    def _gram_epochs(self, X, y, rates, batch_size, held_out):
        """Plain SGD, the same steps as the batch loop of ``Network._epochs``, computed through the N × N Gram
        matrix G = X0 X0ᵀ of the training rows. Used when N is smaller than n_inputs (the seed's 329 photos of
        784 pixels).

        Each step W1 ← W1 − η X0_bᵀ dZ1 adds a combination of training rows to W1, so W1 = W1⁰ − X0ᵀ C for an
        N × n_hidden matrix C that the step changes only in the batch's rows: C_b += η dZ1. The hidden
        pre-activations of all training rows, H = X0 W1 (without b1), change by −η X0 X0_bᵀ dZ1 = −η G[:, b] dZ1.
        Keeping H and C instead of W1, a batch's forward pass is H_b + b1 (no product with W1), and its update
        costs N · B · n_hidden multiply-adds instead of the 2 · n_inputs · B · n_hidden of X0_b W1 and X0_bᵀ dZ1.
        The epoch's training loss comes from H; held-out rows V use V W1 = V W1⁰ − (V X0ᵀ) C. W1 itself is
        formed once, at the end. The results equal the batch loop's up to rounding (a test compares them)."""
        X0 = self._standardized(X)
        p, W1_start = self.params, self.params["W1"]
        G = X0 @ X0.T
        H = X0 @ W1_start
        C = np.zeros_like(H)
        Y = self._targets(y, self.dtype)
        if held_out is not None:
            V0 = self._standardized(held_out[0])
            H_val_start, G_val = V0 @ W1_start, V0 @ X0.T
        update = make_optimizer("sgd", {name: p[name] for name in ("b1", "W2", "b2")})  # W1 is kept as C
        try:
            for rate in rates:
                for batch in batches(self.rng.permutation(len(X)), batch_size):
                    Z1 = H[batch] + p["b1"]
                    A1, Z2 = self._from_hidden(Z1)
                    grads, dZ1 = self._backward_to_hidden(Z1, A1, self._output_error(Z2, Y[batch]))
                    update(grads, rate)
                    step = rate * dZ1
                    C[batch] += step
                    H -= G[batch].T @ step  # G is symmetric: G[:, b] = G[b]ᵀ
                test = None
                if held_out is not None:
                    test = self._scores(self._from_hidden(H_val_start - G_val @ C + p["b1"])[1], held_out[1])
                finite = all(np.isfinite(value).all() for value in (H, p["b1"], p["W2"], p["b2"]))
                yield self._scores(self._from_hidden(H + p["b1"])[1], y), test, finite
        finally:
            p["W1"] = W1_start - X0.T @ C

    def architecture(self):
        return {
            "n_inputs": self.n_inputs,
            "n_hidden": self.n_hidden,
            "n_outputs": self.n_outputs,
            "activation": self.activation,
            "seed": self.seed,
            "standardize": self.standardize,
        }
