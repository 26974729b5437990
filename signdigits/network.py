"""What the networks here (``mlp.MLP``, ``cnn.CNN``) share: the output layer and its loss, backpropagation's
first step, mini-batch training, prediction and the model file.

A subclass builds ``params`` (a dict of arrays), lists which of them are weights (L2 weight decay applies to
those, never to biases), and writes two methods: ``_forward(X0) -> (cache, Z)``, the logits Z of the last layer,
and ``_backward(cache, dZ) -> grads``; it may also take the same training steps another way by overriding
``_epochs`` (the MLP does, through the Gram matrix of the rows). Everything else lives here, once:

- one output: sigmoid with binary cross-entropy; K ≥ 2 outputs: softmax with categorical cross-entropy. Both
  give the same output error, dL/dZ = (A − Y) / N (see ``gradients``);
- the loss is computed from the logits (softplus / log-sum-exp): no probability is clipped, nothing overflows;
- ``standardize``: the network sees (X − μ) / s, μ the per-pixel mean and s the standard deviation of all pixels
  of the training data, learnt by the first fit and saved with the weights. Centring removes the large common
  component of raw pixels that makes gradient descent zig-zag (LeCun et al., 1998, "Efficient BackProp"). The
  seed did not do it; the pipeline does by default (train.standardize), because with the seed's learning rate
  and 100 epochs the network on raw [0, 1] pixels is still far from trained (train loss 0.15 against 0.015).
"""

import io
import json
from pathlib import Path

import numpy as np
from threadpoolctl import threadpool_limits

from signdigits.errors import UsageError

OPTIMIZERS = ("sgd", "adam")
CHUNK = 512  # rows per forward pass when predicting or evaluating: bounds the memory of large inputs


class TrainingDiverged(UsageError):
    """The loss became NaN or infinite during training."""


def sigmoid(Z):
    """σ(z) = 1 / (1 + e^−z) = (1 + tanh(z/2)) / 2: tanh never overflows, and one tanh costs a third of the
    e^−|z| / where() evaluation (this runs on every hidden unit of every batch)."""
    return 0.5 + 0.5 * np.tanh(0.5 * Z)


def softmax(Z):
    """Row-wise softmax; subtracting the row maximum leaves it unchanged and keeps exp() ≤ 1."""
    E = np.exp(Z - Z.max(axis=1, keepdims=True))
    return E / E.sum(axis=1, keepdims=True)


ACTIVATIONS = ("sigmoid", "tanh", "relu")


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


# The gain of a layer that reads g(Z): weights ~ N(0, gain² / fan_in) undo the slope of g (Glorot & Bengio,
# 2010). Sigmoid's slope at 0 is 1/4, so its gain is 4; tanh's is 1; relu passes half its inputs (He et al.,
# 2015: gain √2, which the networks also use for the layer that reads the pixels when g is relu).
GAIN_AFTER = {"sigmoid": 4.0, "tanh": 1.0, "relu": float(np.sqrt(2.0))}


class Network:
    FORMAT = None  # the model file's format tag, one per subclass
    WEIGHTS = ()  # names of the params that weight decay applies to
    BLAS_THREADS = None  # BLAS threads while fitting (None: all)

    def __init__(self, n_inputs, n_outputs, seed, dtype, standardize):
        if n_outputs < 1 or n_inputs < 1:
            raise ValueError("n_inputs and n_outputs must be positive")
        self.n_inputs, self.n_outputs = int(n_inputs), int(n_outputs)
        self.seed, self.dtype, self.standardize = int(seed), np.dtype(dtype), bool(standardize)
        self.rng = np.random.default_rng(self.seed)
        self.metadata = {}  # what the pipeline stores beside the weights: classes, image size, params
        self.input_mean, self.input_scale = None, None
        self.params = {}

    def normal(self, shape, fan_in, gain):
        """Weights ~ N(0, gain² / fan_in): Var(Z) stays near gain² · Var(input) (LeCun; He for gain √2)."""
        return (self.rng.standard_normal(shape) * (gain / np.sqrt(fan_in))).astype(self.dtype)

    @property
    def binary(self):
        return self.n_outputs == 1

    # --- the output layer and the loss --------------------------------------------------------------------
    def _targets(self, y, dtype):
        """Y: the labels as the output layer sees them, (N, 1) of 0/1 or (N, K) one-hot."""
        y = np.asarray(y)
        if self.binary:
            return y.reshape(-1, 1).astype(dtype)
        return np.eye(self.n_outputs, dtype=dtype)[y]

    def _output(self, Z):
        return sigmoid(Z) if self.binary else softmax(Z)

    def _cross_entropy(self, Z, Y):
        """Mean cross-entropy from the logits.

        Binary: −[y log σ(z) + (1 − y) log(1 − σ(z))] = softplus(z) − y z, and softplus(z) = max(z, 0) +
        log(1 + e^−|z|). Softmax: −log softmax(z)_y = logsumexp(z) − z_y, with the row maximum taken out."""
        if self.binary:
            losses = np.maximum(Z, 0) - Z * Y + np.log1p(np.exp(-np.abs(Z)))
            return float(losses.mean())
        top = Z.max(axis=1, keepdims=True)
        log_sum = top[:, 0] + np.log(np.exp(Z - top).sum(axis=1))
        return float((log_sum - (Z * Y).sum(axis=1)).mean())

    def _classes(self, Z):
        # σ(z) ≥ 0.5 ⇔ z ≥ 0, and softmax is monotonic in the logits: decide on the logits directly.
        return (Z[:, 0] >= 0).astype(np.int64) if self.binary else Z.argmax(axis=1)

    def _check_input(self, X):
        X = np.asarray(X)
        if X.ndim != 2 or X.shape[1] != self.n_inputs:
            raise ValueError(f"X must have shape (N, {self.n_inputs}), not {X.shape}")
        return X.astype(self.dtype, copy=False)

    def _standardized(self, X):
        return (X - self.input_mean) / self.input_scale if self.input_mean is not None else X

    def _logits(self, X):
        """Z of the last layer for every row of X, CHUNK rows at a time."""
        X = self._check_input(X)
        chunks = [self._forward(self._standardized(X[i : i + CHUNK]))[1] for i in range(0, len(X), CHUNK)]
        return np.concatenate(chunks) if chunks else np.zeros((0, self.n_outputs), self.dtype)

    def _penalty(self, weight_decay):
        if not weight_decay:
            return 0.0
        return 0.5 * weight_decay * float(sum(np.sum(self.params[name] ** 2) for name in self.WEIGHTS))

    def loss(self, X, y, weight_decay=0.0):
        """Mean cross-entropy over (X, y), plus (weight_decay / 2) Σ ‖W‖² over the weights if > 0."""
        return self._cross_entropy(self._logits(X), self._targets(y, self.dtype)) + self._penalty(weight_decay)

    def _output_error(self, Z, Y):
        """dL/dZ of the last layer for a batch with targets Y. For sigmoid + BCE, dL/dA = (A − Y) / (A (1 − A))
        and dA/dZ = A (1 − A); for softmax + CE the Jacobian of softmax collapses the same way: both give
        dZ = (A − Y) / N (the 1/N because the loss is a mean over the batch)."""
        return (self._output(Z) - Y) / len(Y)

    def gradients(self, X, y, weight_decay=0.0):
        """dLoss/dθ for every θ in params, by backpropagation (same keys and shapes as params)."""
        X = self._check_input(X)
        cache, Z = self._forward(self._standardized(X))
        grads = self._backward(cache, self._output_error(Z, self._targets(y, Z.dtype)))  # back through the layers
        if weight_decay:  # d/dW of (λ/2)‖W‖² is λW
            for name in self.WEIGHTS:
                grads[name] = grads[name] + weight_decay * self.params[name]
        return grads

    # --- prediction ----------------------------------------------------------------------------------------
    def predict_proba(self, X):
        """P(class 1) as (N,) for one output; class probabilities (N, K) for K outputs."""
        A = self._output(self._logits(X))
        return A[:, 0] if self.binary else A

    def predict(self, X):
        """Class indices (N,): P(class 1) ≥ 0.5 for one output, the most probable class otherwise."""
        return self._classes(self._logits(X))

    def predict_with_proba(self, X):
        """(predict(X), predict_proba(X)) from one forward pass."""
        Z = self._logits(X)
        A = self._output(Z)
        return self._classes(Z), (A[:, 0] if self.binary else A)

    def accuracy(self, X, y):
        return float(np.mean(self.predict(X) == np.asarray(y)))

    def evaluate(self, X, y):
        """(mean cross-entropy, accuracy) from one forward pass."""
        return self._scores(self._logits(X), y)

    def _scores(self, Z, y):
        """(mean cross-entropy, accuracy) of the logits Z against the class indices y."""
        y = np.asarray(y)
        return self._cross_entropy(Z, self._targets(y, Z.dtype)), float(np.mean(self._classes(Z) == y))

    # --- training ------------------------------------------------------------------------------------------
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
            mean, scale = standardization(X)
            self.input_mean, self.input_scale = mean.astype(self.dtype), self.dtype.type(scale)
        if X_val is not None:
            X_val, y_val = self._check_input(X_val), np.asarray(y_val)
        rates = [learning_rate / (1.0 + lr_decay * epoch) for epoch in range(epochs)]
        history = []
        with threadpool_limits(limits=self.BLAS_THREADS, user_api="blas"):
            with np.errstate(over="ignore", invalid="ignore"):  # divergence is caught just below
                held_out = None if X_val is None else (X_val, y_val)
                epochs_run = self._epochs(X, y, rates, batch_size, optimizer, momentum, weight_decay, augment, held_out)
                for epoch, (train, test, finite) in enumerate(epochs_run, start=1):
                    row = {"epoch": epoch, "train_loss": train[0], "train_accuracy": train[1]}
                    if test is not None:
                        row |= {"test_loss": test[0], "test_accuracy": test[1]}
                    if not (finite and np.isfinite(row["train_loss"])):
                        raise TrainingDiverged(
                            f"training diverged at epoch {epoch}: the loss became {row['train_loss']}; "
                            f"use a smaller train.learning_rate than {learning_rate}"
                        )
                    history.append(row)
                    if on_epoch is not None:
                        on_epoch(row)
        return history

    def _epochs(self, X, y, rates, batch_size, optimizer, momentum, weight_decay, augment, held_out):
        """Train one epoch per learning rate in ``rates``. After each, yield ((loss, accuracy) on the training
        rows, (loss, accuracy) on ``held_out`` = (X_val, y_val) or None, whether every parameter is still
        finite). Here: backpropagation on each batch, then an optimizer step; a subclass may compute the same
        updates another way."""
        step = make_optimizer(optimizer, self.params, momentum)
        for rate in rates:
            X_epoch = X if augment is None else augment(X, self.rng).astype(self.dtype, copy=False)
            for batch in batches(self.rng.permutation(len(X)), batch_size):
                step(self.gradients(X_epoch[batch], y[batch], weight_decay), rate)
            test = None if held_out is None else self.evaluate(*held_out)
            yield self.evaluate(X, y), test, all(np.isfinite(value).all() for value in self.params.values())

    # --- files ---------------------------------------------------------------------------------------------
    def architecture(self) -> dict:
        """The constructor's arguments, and the format tag: enough to rebuild the network from its file."""
        raise NotImplementedError

    def to_bytes(self) -> bytes:
        """The model as .npz bytes: the params, the input scaling if any, and a JSON header."""
        header = json.dumps({"architecture": {"format": self.FORMAT, **self.architecture()}, "metadata": self.metadata})
        scaling = {}
        if self.input_mean is not None:
            scaling = {"input_mean": self.input_mean, "input_scale": np.asarray(self.input_scale)}
        buffer = io.BytesIO()
        np.savez(buffer, header=np.array(header), **self.params, **scaling)
        return buffer.getvalue()

    def save(self, path):
        from signdigits.files import write_outputs

        write_outputs({path: self.to_bytes()})

    @classmethod
    def load(cls, path):
        """Read a model saved by ``save`` (of this class, or of any network when called on Network)."""
        net = load_model(path)
        if not isinstance(net, cls):
            raise UsageError(f"{path} holds a {type(net).__name__}, not a {cls.__name__}")
        return net


def network_classes() -> dict:
    from signdigits.cnn import CNN
    from signdigits.mlp import MLP

    return {kind.FORMAT: kind for kind in (MLP, CNN)}


def load_model(path):
    """The network saved in ``path``; a missing, corrupt or foreign file is a UsageError that says so."""
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
        spec = dict(header["architecture"])
        kind = network_classes()[spec.pop("format")]
        net = kind(**spec)
    except Exception as error:
        raise UsageError(f"{path} is not a signdigits model ({type(error).__name__}: {error}); {fix}") from None
    expected = set(net.params) | ({"input_mean", "input_scale"} if net.standardize else set())
    if set(arrays) != expected:
        raise UsageError(f"{path} holds arrays {sorted(arrays)}, expected {sorted(expected)}; {fix}")
    if net.standardize:
        mean, scale = arrays.pop("input_mean"), arrays.pop("input_scale")
        if mean.shape != (net.n_inputs,) or scale.shape != () or not (np.isfinite(mean).all() and scale > 0):
            raise UsageError(f"{path}: input_mean/input_scale are not {net.n_inputs} finite means and a scale > 0")
        net.input_mean, net.input_scale = mean, scale[()]
    for name, expected_array in net.params.items():
        actual = arrays[name]
        if actual.shape != expected_array.shape or actual.dtype.kind != "f" or not np.isfinite(actual).all():
            raise UsageError(
                f"{path}: {name} has shape {actual.shape} ({actual.dtype}), expected {expected_array.shape} "
                f"of finite floats; {fix}"
            )
    net.dtype = arrays[next(iter(net.params))].dtype
    net.params = {name: arrays[name] for name in net.params}
    net.metadata = header.get("metadata", {})
    return net


def standardization(X):
    """(μ, s) of ``standardize``: the mean of each input column, and one standard deviation over all of X."""
    return X.mean(axis=0), X.std()


def batches(order, batch_size):
    """``order`` cut into consecutive batches of ``batch_size`` rows; the last one is smaller, not dropped."""
    return [order[start : start + batch_size] for start in range(0, len(order), batch_size)]


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
