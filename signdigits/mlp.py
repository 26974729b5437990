"""A one-hidden-layer neural network in NumPy, trained by mini-batch gradient descent with backpropagation.

The course project's network, written out as its report derives it, for a batch X of N rows:

    Z1 = X W1 + b1      A1 = g(Z1)          hidden layer, g = sigmoid (the seed's), tanh or relu
    Z2 = A1 W2 + b2     A2 = σ(Z2)          one output: sigmoid, with binary cross-entropy
                        A2 = softmax(Z2)    K ≥ 2 outputs: softmax, with categorical cross-entropy

Both output/loss pairs give the same output error, dL/dZ2 = (A2 − Y) / N, from which everything else follows
by the chain rule (see ``gradients``). What it leaves out, on purpose: more than one hidden layer, dropout,
batch normalisation, early stopping. Options past the seed: momentum or Adam, L2 weight decay, and
inverse-time learning-rate decay.

Numerics: the loss is computed from the logits Z2 (softplus / log-sum-exp), never from log(A2), so no
probability is clipped and nothing overflows for large weights or inputs.
"""

import json
from pathlib import Path

import numpy as np
from threadpoolctl import threadpool_limits

from signdigits.errors import UsageError

ACTIVATIONS = ("sigmoid", "tanh", "relu")
OPTIMIZERS = ("sgd", "adam")
PARAM_NAMES = ("W1", "b1", "W2", "b2")
FORMAT = "signdigits-mlp-1"


class TrainingDiverged(UsageError):
    """The loss became NaN or infinite during training."""


def sigmoid(Z):
    """σ(z) = 1 / (1 + e^−z), evaluated through e^−|z| ≤ 1 so that it never overflows."""
    E = np.exp(-np.abs(Z))
    return np.where(Z >= 0, 1.0 / (1.0 + E), E / (1.0 + E))


def softmax(Z):
    """Row-wise softmax; subtracting the row maximum leaves it unchanged and keeps exp() ≤ 1."""
    E = np.exp(Z - Z.max(axis=1, keepdims=True))
    return E / E.sum(axis=1, keepdims=True)


def activate(name, Z):
    if name == "sigmoid":
        return sigmoid(Z)
    if name == "tanh":
        return np.tanh(Z)
    return np.maximum(Z, 0)


def activation_slope(name, Z, A):
    """g'(Z), written with A = g(Z) where that is cheaper: σ' = A(1 − A), tanh' = 1 − A², relu' = [Z > 0]."""
    if name == "sigmoid":
        return A * (1 - A)
    if name == "tanh":
        return 1 - A * A
    return (Z > 0).astype(Z.dtype)


class MLP:
    """784 → hidden → 1 (sigmoid) or K (softmax). ``params`` holds W1 (n_inputs, n_hidden), b1 (n_hidden,),
    W2 (n_hidden, n_outputs), b2 (n_outputs,); computations run in ``dtype`` (float64 for gradient checks)."""

    def __init__(
        self, n_inputs, n_hidden, n_outputs=1, activation="sigmoid", seed=0, dtype=np.float32, standardize=False
    ):
        if activation not in ACTIVATIONS:
            raise ValueError(f"activation must be one of {ACTIVATIONS}, not {activation!r}")
        if n_outputs < 1 or n_hidden < 1 or n_inputs < 1:
            raise ValueError("n_inputs, n_hidden and n_outputs must be positive")
        self.n_inputs, self.n_hidden, self.n_outputs = int(n_inputs), int(n_hidden), int(n_outputs)
        self.activation, self.seed, self.dtype = activation, int(seed), np.dtype(dtype)
        self.metadata = {}  # what the pipeline stores beside the weights: classes, image size, params
        # standardize: the network sees (X − μ) / s, μ the per-pixel mean and s the standard deviation of all
        # pixels of the training data, both learnt by the first fit and saved with the weights. Centring removes
        # the large common component of raw pixels that makes gradient descent zig-zag (LeCun et al., 1998,
        # "Efficient BackProp"); the seed did not do it, so it is off by default.
        self.standardize = bool(standardize)
        self.input_mean, self.input_scale = None, None
        self.rng = np.random.default_rng(self.seed)
        # Weights ~ N(0, gain² / fan_in), biases 0. The fan-in keeps Var(Z) near gain² · Var(input); the
        # gain undoes the slope of the activation that feeds the layer (Glorot & Bengio, 2010): W1 reads the
        # pixels (gain 1); W2 reads g(Z1), and sigmoid's slope at 0 is 1/4, so its gain is 4; tanh's slope
        # is 1 (gain 1); relu passes half its inputs (He et al., 2015: gain √2, used for both layers).
        gain_hidden = {"sigmoid": 4.0, "tanh": 1.0, "relu": np.sqrt(2.0)}[activation]
        gain_input = np.sqrt(2.0) if activation == "relu" else 1.0

        def layer(fan_in, fan_out, gain):
            return (self.rng.standard_normal((fan_in, fan_out)) * (gain / np.sqrt(fan_in))).astype(self.dtype)

        self.params = {
            "W1": layer(self.n_inputs, self.n_hidden, gain_input),
            "b1": np.zeros(self.n_hidden, self.dtype),
            "W2": layer(self.n_hidden, self.n_outputs, gain_hidden),
            "b2": np.zeros(self.n_outputs, self.dtype),
        }

    @property
    def binary(self):
        return self.n_outputs == 1

    # --- forward ---------------------------------------------------------------------------------------
    def _forward(self, X):
        """(X0, Z1, A1, Z2), X0 being the input the first layer sees (standardized if asked)."""
        p = self.params
        X0 = (X - self.input_mean) / self.input_scale if self.input_mean is not None else X
        Z1 = X0 @ p["W1"] + p["b1"]
        A1 = activate(self.activation, Z1)
        Z2 = A1 @ p["W2"] + p["b2"]
        return X0, Z1, A1, Z2

    def _targets(self, y, dtype):
        """Y: the labels as the output layer sees them, (N, 1) of 0/1 or (N, K) one-hot."""
        y = np.asarray(y)
        if self.binary:
            return y.reshape(-1, 1).astype(dtype)
        return np.eye(self.n_outputs, dtype=dtype)[y]

    def _output(self, Z2):
        return sigmoid(Z2) if self.binary else softmax(Z2)

    def _cross_entropy(self, Z2, Y):
        """Mean cross-entropy from the logits.

        Binary: −[y log σ(z) + (1 − y) log(1 − σ(z))] = softplus(z) − y z, and softplus(z) = max(z, 0) +
        log(1 + e^−|z|). Softmax: −log softmax(z)_y = logsumexp(z) − z_y, with the row maximum taken out."""
        if self.binary:
            losses = np.maximum(Z2, 0) - Z2 * Y + np.log1p(np.exp(-np.abs(Z2)))
            return float(losses.mean())
        top = Z2.max(axis=1, keepdims=True)
        log_sum = top[:, 0] + np.log(np.exp(Z2 - top).sum(axis=1))
        return float((log_sum - (Z2 * Y).sum(axis=1)).mean())

    def _check_input(self, X):
        X = np.asarray(X)
        if X.ndim != 2 or X.shape[1] != self.n_inputs:
            raise ValueError(f"X must have shape (N, {self.n_inputs}), not {X.shape}")
        return X.astype(self.dtype, copy=False)

    def loss(self, X, y, weight_decay=0.0):
        """Mean cross-entropy over (X, y), plus (weight_decay / 2)(‖W1‖² + ‖W2‖²) if weight_decay > 0."""
        X = self._check_input(X)
        Z2 = self._forward(X)[-1]
        return self._cross_entropy(Z2, self._targets(y, self.dtype)) + self._penalty(weight_decay)

    def _penalty(self, weight_decay):
        if not weight_decay:
            return 0.0
        return 0.5 * weight_decay * float(np.sum(self.params["W1"] ** 2) + np.sum(self.params["W2"] ** 2))

    def gradients(self, X, y, weight_decay=0.0):
        """dLoss/dθ for every θ in params, by backpropagation (same keys and shapes as params)."""
        X = self._check_input(X)
        p = self.params
        X0, Z1, A1, Z2 = self._forward(X)
        A2 = self._output(Z2)
        N = X.shape[0]
        # Output layer. For sigmoid + BCE, dL/dA2 = (A2 − Y) / (A2 (1 − A2)) and dA2/dZ2 = A2 (1 − A2);
        # for softmax + CE the Jacobian of softmax collapses the same way: both give dZ2 = (A2 − Y) / N
        # (the 1/N because the loss is a mean over the batch).
        dZ2 = (A2 - self._targets(y, A2.dtype)) / N
        dW2 = A1.T @ dZ2
        db2 = dZ2.sum(axis=0)
        # Hidden layer: the error flows back through W2, then through g elementwise.
        dA1 = dZ2 @ p["W2"].T
        dZ1 = dA1 * activation_slope(self.activation, Z1, A1)
        dW1 = X0.T @ dZ1
        db1 = dZ1.sum(axis=0)
        if weight_decay:  # d/dW of (λ/2)‖W‖² is λW; biases are not decayed
            dW1 = dW1 + weight_decay * p["W1"]
            dW2 = dW2 + weight_decay * p["W2"]
        return {"W1": dW1, "b1": db1, "W2": dW2, "b2": db2}

    # --- prediction --------------------------------------------------------------------------------------
    def predict_proba(self, X):
        """P(class 1) as (N,) for one output; class probabilities (N, K) for K outputs."""
        Z2 = self._forward(self._check_input(X))[-1]
        A2 = self._output(Z2)
        return A2[:, 0] if self.binary else A2

    def predict(self, X):
        """Class indices (N,): P(class 1) ≥ 0.5 for one output, the most probable class otherwise."""
        Z2 = self._forward(self._check_input(X))[-1]
        return self._classes(Z2)

    def _classes(self, Z2):
        # σ(z) ≥ 0.5 ⇔ z ≥ 0, and softmax is monotonic in the logits: decide on Z2 directly.
        return (Z2[:, 0] >= 0).astype(np.int64) if self.binary else Z2.argmax(axis=1)

    def accuracy(self, X, y):
        return float(np.mean(self.predict(X) == np.asarray(y)))

    def evaluate(self, X, y):
        """(mean cross-entropy, accuracy) from one forward pass."""
        X, y = self._check_input(X), np.asarray(y)
        Z2 = self._forward(X)[-1]
        return self._cross_entropy(Z2, self._targets(y, Z2.dtype)), float(np.mean(self._classes(Z2) == y))

    # --- training ----------------------------------------------------------------------------------------
    def fit(
        self,
        X,
        y,
        epochs=100,
        batch_size=32,
        learning_rate=0.01,
        X_val=None,
        y_val=None,
        optimizer="sgd",
        momentum=0.0,
        weight_decay=0.0,
        lr_decay=0.0,
        augment=None,
        on_epoch=None,
    ):
        """Mini-batch gradient descent; returns the history, one row per epoch.

        Each epoch visits the rows in an order drawn from the model's seeded generator, in batches of
        ``batch_size`` (the last batch is smaller, not dropped); gradients are averaged over the batch.
        The learning rate of epoch e (counted from 0) is learning_rate / (1 + lr_decay · e).
        Optimizers: "sgd" with optional momentum, "adam". ``augment(X, rng)``, if given, returns the epoch's
        (randomly altered) copy of the training rows. ``on_epoch(row)`` is called after each epoch.
        """
        if optimizer not in OPTIMIZERS:
            raise ValueError(f"optimizer must be one of {OPTIMIZERS}, not {optimizer!r}")
        X, y = self._check_input(X), np.asarray(y)
        if self.standardize and self.input_mean is None:
            self.input_mean = X.mean(axis=0).astype(self.dtype)
            self.input_scale = self.dtype.type(X.std())
        if X_val is not None:
            X_val, y_val = self._check_input(X_val), np.asarray(y_val)
        step = make_optimizer(optimizer, self.params, momentum)
        history = []
        # One BLAS thread: a batch's products are a few MFLOP, and handing them to a second thread cost more
        # than it saved (fit ran 1.7× slower with two threads on the 2-core machines this was measured on).
        with threadpool_limits(limits=1, user_api="blas"):
            for epoch in range(epochs):
                rate = learning_rate / (1.0 + lr_decay * epoch)
                X_epoch = X if augment is None else augment(X, self.rng).astype(self.dtype, copy=False)
                order = self.rng.permutation(len(X))
                with np.errstate(over="ignore", invalid="ignore"):  # divergence is caught just below
                    for start in range(0, len(X), batch_size):
                        batch = order[start : start + batch_size]
                        step(self.gradients(X_epoch[batch], y[batch], weight_decay), rate)
                    row = dict(zip(("epoch", "train_loss", "train_accuracy"), (epoch + 1, *self.evaluate(X, y))))
                    if X_val is not None:
                        row |= dict(zip(("test_loss", "test_accuracy"), self.evaluate(X_val, y_val)))
                finite = np.isfinite(row["train_loss"]) and all(np.isfinite(v).all() for v in self.params.values())
                if not finite:
                    raise TrainingDiverged(
                        f"training diverged at epoch {epoch + 1}: the loss became {row['train_loss']}; "
                        f"use a smaller train.learning_rate than {learning_rate}"
                    )
                history.append(row)
                if on_epoch is not None:
                    on_epoch(row)
        return history

    # --- files -------------------------------------------------------------------------------------------
    def architecture(self):
        return {
            "format": FORMAT,
            "n_inputs": self.n_inputs,
            "n_hidden": self.n_hidden,
            "n_outputs": self.n_outputs,
            "activation": self.activation,
            "seed": self.seed,
            "standardize": self.standardize,
        }

    def to_bytes(self) -> bytes:
        """The model as .npz bytes: the four arrays and a JSON header (architecture and metadata)."""
        import io

        header = json.dumps({"architecture": self.architecture(), "metadata": self.metadata})
        buffer = io.BytesIO()
        scaling = {}
        if self.input_mean is not None:
            scaling = {"input_mean": self.input_mean, "input_scale": np.asarray(self.input_scale)}
        np.savez(buffer, header=np.array(header), **self.params, **scaling)
        return buffer.getvalue()

    def save(self, path):
        from signdigits.files import write_outputs

        write_outputs({path: self.to_bytes()})

    @classmethod
    def load(cls, path):
        """Read a model saved by ``save``; a missing, corrupt or foreign file is a UsageError."""
        path = Path(path)
        fix = "retrain it with `dvc repro train`"
        try:
            with np.load(path, allow_pickle=False) as archive:
                arrays = {key: archive[key] for key in archive.files}
        except FileNotFoundError:
            raise UsageError(f"model file {path} not found; {fix}") from None
        except Exception as error:  # a truncated zip, a pickle, a non-npz file …
            raise UsageError(f"{path} is not a readable model file ({error}); {fix}") from None
        try:
            header = json.loads(str(arrays.pop("header")))
            spec = header["architecture"]
            if spec.get("format") != FORMAT:
                raise ValueError(f"format {spec.get('format')!r}, expected {FORMAT!r}")
            net = cls(
                spec["n_inputs"],
                spec["n_hidden"],
                spec["n_outputs"],
                spec["activation"],
                spec["seed"],
                standardize=spec.get("standardize", False),
            )
        except Exception as error:
            raise UsageError(f"{path} is not a signdigits model ({error}); {fix}") from None
        expected_names = set(PARAM_NAMES) | ({"input_mean", "input_scale"} if net.standardize else set())
        if set(arrays) != expected_names:
            raise UsageError(f"{path} holds arrays {sorted(arrays)}, expected {sorted(expected_names)}; {fix}")
        if net.standardize:
            mean, scale = arrays.pop("input_mean"), arrays.pop("input_scale")
            if mean.shape != (net.n_inputs,) or scale.shape != () or not (np.isfinite(mean).all() and scale > 0):
                raise UsageError(f"{path}: input_mean/input_scale are not {net.n_inputs} finite means and a scale > 0")
            net.input_mean, net.input_scale = mean, scale[()]
        for name, expected in net.params.items():
            actual = arrays[name]
            if actual.shape != expected.shape or actual.dtype.kind != "f" or not np.isfinite(actual).all():
                raise UsageError(
                    f"{path}: {name} has shape {actual.shape} ({actual.dtype}), expected {expected.shape} "
                    f"of finite floats; {fix}"
                )
        net.dtype = arrays["W1"].dtype
        net.params = {name: arrays[name] for name in PARAM_NAMES}
        net.metadata = header.get("metadata", {})
        return net


def make_optimizer(name, params, momentum=0.0, beta1=0.9, beta2=0.999, eps=1e-8):
    """A function step(grads, rate) that updates ``params`` in place.

    sgd:  v ← μ v − η g;  θ ← θ + v          (μ = 0 is the seed's plain θ ← θ − η g)
    adam: m ← β1 m + (1 − β1) g;  s ← β2 s + (1 − β2) g²;  θ ← θ − η m̂ / (√ŝ + ε),
          with the bias corrections m̂ = m / (1 − β1^t), ŝ = s / (1 − β2^t) (Kingma & Ba, 2015).
    """
    if name == "sgd":
        velocity = {key: np.zeros_like(value) for key, value in params.items()}

        def sgd(grads, rate):
            for key, value in params.items():
                if momentum:
                    velocity[key] = momentum * velocity[key] - rate * grads[key]
                    value += velocity[key]
                else:
                    value -= rate * grads[key]

        return sgd

    first = {key: np.zeros_like(value) for key, value in params.items()}
    second = {key: np.zeros_like(value) for key, value in params.items()}
    t = [0]

    def adam(grads, rate):
        t[0] += 1
        for key, value in params.items():
            g = grads[key]
            first[key] = beta1 * first[key] + (1 - beta1) * g
            second[key] = beta2 * second[key] + (1 - beta2) * g * g
            m_hat = first[key] / (1 - beta1 ** t[0])
            s_hat = second[key] / (1 - beta2 ** t[0])
            value -= (rate * m_hat / (np.sqrt(s_hat) + eps)).astype(value.dtype)

    return adam
