"""What the networks here (``mlp.MLP``, ``cnn.CNN``) share: the activations, the output layer and its loss,
backpropagation's first step, prediction and the mini-batch training loop.

A subclass builds ``params`` (a dict of arrays, named and shaped by its layers in layout.py, which it finds by
its ``MODEL``), lists which of them are weights (L2 weight decay applies to those, never to biases), and writes
four methods: ``_forward(X0, keep=None, training=False) -> (cache, Z)``,
the logits Z of the last layer (``keep``: the dropout mask of its last hidden layer, of ``n_hidden`` units;
``training``: the call is a training step, which batch normalisation (cnn.py) treats differently);
``_backward(cache, dZ) -> grads``; ``_last_hidden(cache)``, the last hidden layer's activations; and
``architecture()``, its constructor's arguments (the model file stores
them: ``modelfile.py``). Arrays that are learnt but not trained by gradient (batch normalisation's running
statistics) live in ``running``, beside ``params``. Everything else lives here, once:

- prediction: ``logits(X)``, from which ``probabilities(Z)`` (after the temperature) and ``classes(Z)`` follow;
  ``predict_proba`` and ``predict`` are the two composed. ``loss`` and ``gradients`` are training's, with the
  dropout mask and batch normalisation's batch statistics a training step uses;
- one output: sigmoid with binary cross-entropy; K ≥ 2 outputs: softmax with categorical cross-entropy. Both
  give the same output error, dL/dZ = (A − Y) / N (see ``output_error``);
- the loss is computed from the logits (softplus / log-sum-exp): no probability is clipped, nothing overflows;
- ``photo_norm``: each photo (row) x is first scaled by its own mean and spread, x ← (x − mean(x)) /
  √(var(x) + PHOTO_EPSILON): a brighter or darker room, or a flatter or harsher light, changes a photo's mean and
  spread far more than its shape, and this takes both out before the network sees it. A flat image (var 0)
  becomes all zeros, not a division by zero;
- ``mirror_average``: a sign made with the other hand is the same digit, and the network answers a photo with the
  mean of its output layer's logits for the photo and for its mirror image (left–right), U = (U(x) + U(x̄)) / 2,
  wherever it is scored: its predictions, the history's losses and accuracies, the refusal's scores (and the
  Mahalanobis score's features, averaged alike). Both images then get the same answer, and the two views' errors
  partly cancel (test-time augmentation; the flip is the one that changes no label here). Training is unchanged: each
  step sees one view of a photo (train.augment_mirror draws which);
- ``standardize``: the network sees X0 = (X − μ) / s, μ the per-pixel mean and s the standard deviation of all
  pixels of the training data, learnt by the first fit and saved with the weights. Centring removes the large
  common component of raw pixels that makes gradient descent zig-zag (LeCun et al., 1998, "Efficient
  BackProp"). The seed did not do it; the pipeline does by default (train.standardize);
- training (``fit``): mini-batch gradient descent with an optimizer of ``optim.py``, stopped with an error when
  it diverges (``diverged``);
- outlier exposure (Hendrycks, Mazeika & Dietterich, 2019): each epoch, ``outlier_exposure`` × N images that are no
  hands (``outliers``) join the training rows with the uniform distribution as their target (1/K for each of K
  classes, 0.5 for one sigmoid output), so that the network learns to spread its probability over images unlike
  any class. Softmax with cross-entropy against a soft target Y has the same output error, (A − Y) / N;
- the "other" output (``other_output``, train.other_hands): the output layer has K + 1 softmax units (three for
  two classes), the last one "none of these": each epoch, ``other_hands`` × N photos of other hands (the digits
  outside the classes) join the training rows with it as their class, and so do the outliers, instead of the
  uniform target. Softmax over all units U gives the joint P(class k, one of the classes) and P(other); the
  classes' units alone give P(class k | one of the classes) = softmax(U₁…U_K), since the common factor
  1 / Σ exp(U) cancels. Prediction reads that: ``logits`` are U₁…U_K (for two classes the one sigmoid logit
  U₂ − U₁, since softmax(U₁, U₂)₂ = σ(U₂ − U₁)), so every reader of class logits and probabilities is unchanged,
  and refusal.py reads the joint one. Training is plain softmax cross-entropy on all K + 1 units;
- dropout (Srivastava et al., 2014), "inverted": while training, each unit of the last hidden layer is dropped
  (set to 0) with probability p, independently per row and batch, and the kept ones are scaled by 1 / (1 − p).
  A unit's expected output is then what it is without dropout, so prediction uses the whole network as it is.
"""

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from threadpoolctl import threadpool_limits

from signdigits.errors import UsageError
from signdigits.layout import output_units
from signdigits.optim import make_optimizer
from signdigits.perturbations import mirror

DIVERGENCE_FACTOR = 10.0  # see ``diverged``
PHOTO_EPSILON = 1e-4  # ``photo_normalized``: a spread below √ε = 0.01 of the pixel range is not amplified


def sigmoid(Z):
    """σ(z) = 1 / (1 + e^−z) = (1 + tanh(z/2)) / 2, written with tanh, which never overflows."""
    return 0.5 + 0.5 * np.tanh(0.5 * Z)


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
    """g'(Z), written with A = g(Z) where that is simpler: σ' = A(1 − A), tanh' = 1 − A², relu' = [Z > 0]."""
    if name == "sigmoid":
        return A * (1 - A)
    if name == "tanh":
        return 1 - A * A
    return (Z > 0).astype(Z.dtype)


# The gain of a layer that reads g(Z): weights ~ N(0, gain² / fan_in) undo the slope of g (Glorot & Bengio,
# 2010). Sigmoid's slope at 0 is 1/4, so its gain is 4; tanh's is 1; relu passes half its inputs (He et al.,
# 2015: gain √2, which the networks also use for the layer that reads the pixels when g is relu).
GAIN_AFTER = {"sigmoid": 4.0, "tanh": 1.0, "relu": float(np.sqrt(2.0))}


class TrainingDiverged(UsageError):
    """The training loss exploded (see ``diverged``): a params problem, reported as a one-line error."""


def diverged(batch_loss, untrained_loss, params) -> bool:
    """The divergence rule, checked after every epoch: training has diverged when the mean cross-entropy of the epoch's
    batches is not finite, or is more than DIVERGENCE_FACTOR (10) times the untrained network's (over the training rows
    before the first step, as prediction scores them: with ``mirror_average``, of the two views' mean, where a batch's
    loss is of one view; near ln K either way), or a parameter is no longer finite. Gradient descent at a workable
    learning rate lowers the loss from where it started; ten times the starting loss means the steps overshoot (too
    large a learning rate) or the decay term dominates (too large a weight decay)."""
    if not np.isfinite(batch_loss) or batch_loss > DIVERGENCE_FACTOR * untrained_loss:
        return True
    return not all(np.isfinite(value).all() for value in params.values())


@dataclass(frozen=True)
class TrainingConfig:
    """How ``fit`` trains: every training option, named once. Each field but the two functions is the ``train``
    param of the same name (``training.training_config`` builds it from the params; docs/model.md explains each).
    The learning rate of epoch e (counted from 0) is learning_rate / (1 + lr_decay · e); ``dropout`` is the
    probability of dropping a unit of the last hidden layer (0: none); each epoch adds round(outlier_exposure · N)
    images that are no hands (outlier exposure, see the module docstring), and round(other_hands · N) photos of
    other hands, if the network has the ``other_output`` output. The functions: ``augment(X)``, if given, is called
    once with the training rows X (and once with the other hands), and returns a function of the model's generator
    (and optionally of a selection of rows) that returns each epoch's (randomly altered) copy of them;
    ``outliers(n, side, rng)`` returns n images of side² pixels that are no hands."""

    epochs: int = 100
    batch_size: int = 32
    learning_rate: float = 0.01
    optimizer: str = "sgd"
    momentum: float = 0.0
    weight_decay: float = 0.0
    lr_decay: float = 0.0
    dropout: float = 0.0
    outlier_exposure: float = 0.0
    other_hands: float = 0.0
    augment: Callable | None = None
    outliers: Callable | None = None

    def __post_init__(self):
        if self.epochs < 1 or self.batch_size < 1:
            raise ValueError("epochs and batch_size must be positive")
        if not 0 <= self.dropout < 1:
            raise ValueError(f"dropout must be in [0, 1), not {self.dropout}")
        if self.outlier_exposure < 0 or (self.outlier_exposure > 0 and self.outliers is None):
            raise ValueError("outlier_exposure must be ≥ 0, and needs an outliers function")
        if self.other_hands < 0:
            raise ValueError(f"other_hands must be ≥ 0, not {self.other_hands}")

    def rate(self, epoch):
        return self.learning_rate / (1.0 + self.lr_decay * epoch)


def photo_normalized(X):
    """Each row x of X as (x − mean(x)) / √(var(x) + PHOTO_EPSILON), mean and (population) variance over the
    row's pixels: ``photo_norm``."""
    mean = X.mean(axis=1, keepdims=True)
    var = X.var(axis=1, keepdims=True)
    return (X - mean) / np.sqrt(var + X.dtype.type(PHOTO_EPSILON))


def standardization(X):
    """(μ, s) of ``standardize``: the mean of each input column, and one standard deviation over all of X."""
    return X.mean(axis=0), X.std()


def batches(order, batch_size):
    """``order`` cut into consecutive batches of ``batch_size`` rows; the last one is smaller, not dropped."""
    return [order[start : start + batch_size] for start in range(0, len(order), batch_size)]


class Network:
    FORMAT = None  # the model file's format tag, one per subclass
    WEIGHTS = ()  # names of the params that weight decay applies to
    BLAS_THREADS = None  # BLAS threads while fitting and in ``blas_threads`` (None: all)
    MODEL = None  # its train.model name, which layout.py knows its layers by
    CHUNK = None  # rows per forward pass when predicting or scoring (layout.CHUNK)

    def __init__(
        self, n_inputs, n_outputs, seed, dtype, standardize, photo_norm=False, other_output=False, mirror_average=False
    ):
        if n_outputs < 1 or n_inputs < 1:
            raise ValueError("n_inputs and n_outputs must be positive")
        self.n_inputs, self.n_outputs = int(n_inputs), int(n_outputs)
        # ``other_output``: the output layer has one unit more than the classes need, "other"
        # (``n_units``, see the module docstring); ``n_outputs`` stays what the predictions have (1 or K).
        self.other_output = bool(other_output)
        self.n_units = output_units(self.n_outputs, self.other_output)
        self.seed, self.dtype, self.standardize = int(seed), np.dtype(dtype), bool(standardize)
        self.photo_norm, self.mirror_average = bool(photo_norm), bool(mirror_average)
        # Set after training from the validation folds (stage train; refusal.py), stored in the model file:
        # the logits are divided by ``temperature`` before the output's sigmoid / softmax when predicting
        # probabilities (temperature scaling, Guo et al. 2017), and ``refusal`` ({"score", "threshold"}, with the
        # arrays of ``ood_stats``) says when the network answers "I don't know". 1 and None: neither.
        # ``calibrated`` is False only for a model file from before calibration existed (modelfile.py).
        self.temperature, self.refusal, self.ood_stats, self.calibrated = 1.0, None, {}, True
        self.rng = np.random.default_rng(self.seed)
        self.metadata = {}  # what the pipeline stores beside the weights: classes, image size, params
        self.input_mean, self.input_scale = None, None
        self.params = {}
        self.running = {}  # arrays the model file stores but the optimizer leaves alone (see the module docstring)

    def normal(self, shape, fan_in, gain):
        """Weights ~ N(0, gain² / fan_in): Var(Z) stays near gain² · Var(input) (LeCun; He for gain √2)."""
        return (self.rng.standard_normal(shape) * (gain / np.sqrt(fan_in))).astype(self.dtype)

    def architecture(self) -> dict:
        """The constructor's arguments: with the params, enough to rebuild the network (``modelfile.py``)."""
        raise NotImplementedError

    @property
    def binary(self):
        return self.n_outputs == 1

    # --- the input ------------------------------------------------------------------------------------------
    def _checked(self, X):
        """X as an (N, n_inputs) array in the network's dtype; any other shape is a ValueError."""
        X = np.asarray(X)
        if X.ndim != 2 or X.shape[1] != self.n_inputs:
            raise ValueError(f"X must have shape (N, {self.n_inputs}), not {X.shape}")
        return X.astype(self.dtype, copy=False)

    def _photos(self, X):
        """X checked, then each photo normalized by itself if the network does (``photo_norm``)."""
        X = self._checked(X)
        return photo_normalized(X) if self.photo_norm else X

    def _input(self, X):
        """X0, the rows as the first layer sees them: X checked, photo-normalized if the network does, then
        standardized if the network standardizes (and has learnt μ and s)."""
        X = self._photos(X)
        return (X - self.input_mean) / self.input_scale if self.input_mean is not None else X

    def _views(self, X):
        """The rows as the first layer sees them (``_input``), once for each view prediction averages over: [X0],
        and with ``mirror_average`` also the mirror images' rows. Mirrored before ``_input``: μ is not symmetric."""
        X = self._checked(X)
        return [self._input(X), self._input(mirror(X))] if self.mirror_average else [self._input(X)]

    # --- prediction: ``logits``, and what the rest is built on -----------------------------------------------
    def logits(self, X):
        """Z (N, n_outputs), the classes' logits before any temperature: what every prediction is computed from
        (with ``other_output``, from the output layer's units by ``class_logits``)."""
        return self._logits(self._views(X))

    def outputs(self, X):
        """U (N, n_units), the output layer's logits: ``logits`` and, with ``other_output``, the last unit's."""
        return self._outputs(self._views(X))

    def class_logits(self, U):
        """The classes' logits Z from the output layer's U: U itself, but with ``other_output`` the classes' units
        only, whose softmax is P(class | one of the classes); for two classes the one logit U₂ − U₁, since
        softmax(U₁, U₂) = (1 − σ(U₂ − U₁), σ(U₂ − U₁))."""
        if not self.other_output:
            return U
        return U[:, 1:2] - U[:, 0:1] if self.binary else U[:, :-1]

    def probabilities(self, Z):
        """From logits Z: P(class 1) as (N,) for one output, class probabilities (N, K) for K outputs, of Z divided
        by ``temperature``."""
        Z = Z / self.dtype.type(self.temperature)
        return sigmoid(Z[:, 0]) if self.binary else softmax(Z)

    def classes(self, Z):
        """From logits Z: class indices (N,), P(class 1) ≥ 0.5 for one output, the most probable class otherwise.
        σ(z) ≥ 0.5 ⇔ z ≥ 0, and softmax is monotonic in the logits (a temperature changes no class)."""
        return (Z[:, 0] >= 0).astype(np.int64) if self.binary else Z.argmax(axis=1)

    def predict_proba(self, X):
        return self.probabilities(self.logits(X))

    def predict(self, X):
        return self.classes(self.logits(X))

    def features(self, X):
        """The last hidden layer's activations (N, n_hidden) (the MLP's hidden layer, the CNN's dense layer), as
        prediction computes them: what the Mahalanobis score of refusal.py measures distances in."""
        return self._averaged(self._views(X), lambda cache, Z: self._last_hidden(cache), self.n_hidden)

    def _logits(self, views):
        """The classes' logits Z for every row of ``views`` (rows prepared by ``_views``)."""
        return self.class_logits(self._outputs(views))

    def _outputs(self, views):
        """The output layer's logits U for every row of ``views`` (rows prepared by ``_views``)."""
        return self._averaged(views, lambda cache, Z: Z, self.n_units)

    def _averaged(self, views, part, width):
        """``part`` of the prediction's forward pass (``_in_chunks``), the mean over the views (``_views``)."""
        return sum(self._in_chunks(X0, part, width) for X0 in views) / self.dtype.type(len(views))

    def _in_chunks(self, X0, part, width):
        """``part(cache, Z)`` of a prediction's forward pass (N, width), CHUNK rows of X0 at a time."""
        parts = [part(*self._forward(X0[i : i + self.CHUNK])) for i in range(0, len(X0), self.CHUNK)]
        return np.concatenate(parts) if parts else np.zeros((0, width), self.dtype)

    # --- the loss and its gradients: on the output layer's units ---------------------------------------------
    def _output(self, Z):
        return sigmoid(Z) if Z.shape[1] == 1 else softmax(Z)

    def _targets(self, y, dtype, width=None):
        """Y: the labels as the output layer sees them, (N, 1) of 0/1 or (N, n_units) one-hot; with
        ``other_output``, label K (the number of classes) is the "other" unit's. ``width``: as logits of that
        many columns see them instead (n_outputs: the classes' logits)."""
        y, width = np.asarray(y), self.n_units if width is None else width
        if width == 1:
            return y.reshape(-1, 1).astype(dtype)
        return np.eye(width, dtype=dtype)[y]

    def _cross_entropy(self, Z, Y):
        """Mean cross-entropy from logits Z: the output layer's, or the classes' (``class_logits``).

        One column: −[y log σ(z) + (1 − y) log(1 − σ(z))] = softplus(z) − y z, and softplus(z) = max(z, 0) +
        log(1 + e^−|z|). Softmax: −log softmax(z)_y = logsumexp(z) − z_y, with the row maximum taken out."""
        if Z.shape[1] == 1:
            losses = np.maximum(Z, 0) - Z * Y + np.log1p(np.exp(-np.abs(Z)))
            return float(losses.mean())
        top = Z.max(axis=1, keepdims=True)
        log_sum = top[:, 0] + np.log(np.exp(Z - top).sum(axis=1))
        return float((log_sum - (Z * Y).sum(axis=1)).mean())

    def _penalty(self, weight_decay):
        if not weight_decay:
            return 0.0
        return 0.5 * weight_decay * float(sum(np.sum(self.params[name] ** 2) for name in self.WEIGHTS))

    def loss(self, X, y, weight_decay=0.0, keep=None, training=False):
        """Mean cross-entropy over (X, y), plus (weight_decay / 2) Σ ‖W‖² over the weights if > 0: the loss
        prediction sees (of the classes' probabilities, as ``_scores``); with ``training``, the loss a training step
        sees, whose derivatives ``gradients`` computes: over all the output layer's units (label K: "other"), the
        network thinned by the dropout mask ``keep`` (if given), batch normalisation with the batch's own statistics
        (which moves the running ones, as a training step does)."""
        if training:
            U = self._forward(self._input(X), keep, training=True)[1]
            return self._cross_entropy(U, self._targets(y, U.dtype)) + self._penalty(weight_decay)
        Z = self._logits(self._views(X))
        return self._cross_entropy(Z, self._targets(y, Z.dtype, self.n_outputs)) + self._penalty(weight_decay)

    def _scores(self, views, y):
        """(mean cross-entropy, accuracy) on prepared rows (``_views``) against the class indices y: the history's
        figures, of the classes' probabilities as prediction states them (with ``other_output``, P(class | one of
        the classes); with ``mirror_average``, of the two views' mean), so that they compare across networks with
        and without either."""
        Z, y = self._logits(views), np.asarray(y)
        return self._cross_entropy(Z, self._targets(y, Z.dtype, self.n_outputs)), float(np.mean(self.classes(Z) == y))

    def output_error(self, Z, Y):
        """dL/dZ of the last layer for a batch with targets Y. For sigmoid + BCE, dL/dA = (A − Y) / (A (1 − A))
        and dA/dZ = A (1 − A); for softmax + CE the Jacobian of softmax collapses the same way: both give
        dZ = (A − Y) / N (the 1/N because the loss is a mean over the batch)."""
        return (self._output(Z) - Y) / len(Y)

    def gradients(self, X, y, weight_decay=0.0, keep=None):
        """dLoss/dθ for every θ in params, by backpropagation (same keys and shapes as params), of
        ``loss(X, y, weight_decay, keep, training=True)``. It is a training step's pass: batch normalisation's
        running statistics move towards this batch's."""
        return self._gradients(self._input(X), self._targets(y, self.dtype), weight_decay, keep)[0]

    def dropout_mask(self, rows, dropout):
        """A fresh mask for ``rows`` rows of the last hidden layer: 0 for a dropped unit (probability ``dropout``),
        1 / (1 − dropout) for a kept one; None for no dropout."""
        if not dropout:
            return None
        return (self.rng.random((rows, self.n_hidden)) >= dropout) * self.dtype.type(1 / (1 - dropout))

    def _gradients(self, X0, Y, weight_decay, keep=None):
        """``gradients`` for rows X0 already prepared by ``_input`` and targets Y from ``_targets``: a training step's
        forward pass (see ``_forward``'s ``training``)."""
        cache, Z = self._forward(X0, keep, training=True)
        grads = self._backward(cache, self.output_error(Z, Y))  # back through the layers
        if weight_decay:  # d/dW of (λ/2)‖W‖² is λW
            for name in self.WEIGHTS:
                grads[name] = grads[name] + weight_decay * self.params[name]
        return grads, Z

    # --- training ------------------------------------------------------------------------------------------
    def fit(self, X, y, config: TrainingConfig, *, validation=None, on_epoch=None, others=None):
        """Mini-batch gradient descent as ``config`` says; returns the history, one row per epoch: epoch and
        batch_loss, the mean loss of the epoch's batches as they were trained (the rows as augmented, with the
        outliers and the dropout masks, each batch before its step); with ``validation`` = (X_val, y_val), also
        train_loss and train_accuracy over the training rows as they are and val_loss and val_accuracy over the
        validation rows, both as the epoch left the model: the pair of learning curves. The final training, which
        keeps no curve, skips that pass over every training row (a fifth of a CNN's epoch; two fifths with
        ``mirror_average``, which scores each photo and its mirror image) but after the last
        epoch, whose steps no batch's loss shows: the divergence rule checks the batch loss of every epoch and the
        training rows' loss at the end. Losses are without the weight-decay term.

        Each epoch visits the rows in an order drawn from the model's seeded generator, in batches of
        ``batch_size`` (the last batch is smaller, not dropped); gradients are averaged over the batch, and the
        optimizer ("sgd" with optional momentum, or "adam") takes one step per batch. The learning-rate schedule,
        ``augment`` and the outliers are described at TrainingConfig. ``others``: photos of other hands, of which
        each epoch draws round(other_hands · N) (at most all of them, without repetition) for the ``other_output``
        output, altered as the training rows are. ``on_epoch(row)`` is called after each epoch, with the model as
        that epoch left it. Training that diverges (``diverged``) raises TrainingDiverged.
        """
        history = []
        with self.blas_threads():
            for row in self.training(X, y, config, validation, others):
                history.append(row)
                if on_epoch is not None:
                    on_epoch(row)
        return history

    def _other_targets(self, n, dtype):
        """n one-hot rows of the "other" unit: the targets of other hands (label K)."""
        return np.tile(np.eye(self.n_units, dtype=dtype)[-1], (n, 1))

    def _outlier_targets(self, n, dtype):
        """The targets of n outliers (images that are no hands): the "other" unit's (``_other_targets``) if the
        network has one (it then learns "none of the classes"), else the uniform distribution (1/K each, 0.5 for
        one sigmoid output)."""
        if self.other_output:
            return self._other_targets(n, dtype)
        return np.full((n, self.n_units), 1 / max(2, self.n_units), dtype)

    def _other_hands(self, others, config: TrainingConfig, n_rows):
        """(how many other hands each epoch draws, the function that alters a draw of them or None) for
        ``training``: (0, None) when config.other_hands is 0. Other hands need the ``other_output`` output."""
        n_others = 0 if others is None else min(int(round(config.other_hands * n_rows)), len(others))
        if not n_others:
            return 0, None
        if not self.other_output:
            raise ValueError("other hands need a network with the other_output output")
        return n_others, None if config.augment is None else config.augment(others)

    def blas_threads(self):
        """A context in which BLAS runs on BLAS_THREADS threads, as in ``fit``: where a stage predicts many small
        batches (each validation fold or test split under the perturbation suite), a second thread for the MLP's
        products makes them slower, by tens of times on a busy machine."""
        return threadpool_limits(limits=self.BLAS_THREADS, user_api="blas")

    def training(self, X, y, config: TrainingConfig, validation=None, others=None):
        """``fit`` one epoch at a time: a generator that trains an epoch and yields its history row. It leaves
        the BLAS threads to its caller (``fit`` limits them to BLAS_THREADS), so that a caller training several
        networks at once can share the cores between them (cross-validation's folds: fold_processes.py)."""
        X, y = self._checked(X), np.asarray(y)
        if self.standardize and self.input_mean is None:
            mean, scale = standardization(self._photos(X))
            self.input_mean, self.input_scale = mean.astype(self.dtype), self.dtype.type(scale)
        scored = self._views(X)  # prepared once per fit, not once per epoch; the first view is the rows as they are
        X0, Y = scored[0], self._targets(y, self.dtype)
        if validation is not None:
            validation = self._views(validation[0]), np.asarray(validation[1])
        step = make_optimizer(config.optimizer, self.params, config.momentum)
        augment = None if config.augment is None else config.augment(X)
        untrained_loss, _ = self._scores(scored, y)
        n_outliers = int(round(config.outlier_exposure * len(X)))
        others = None if others is None else self._checked(others)
        n_others, augment_others = self._other_hands(others, config, len(X))
        for epoch in range(config.epochs):
            with np.errstate(over="ignore", invalid="ignore"):  # a diverging epoch is caught just below
                X0_epoch = X0 if augment is None else self._input(augment(self.rng))
                Y_epoch = Y
                if n_others:  # a fresh draw of other hands each epoch, labelled K: the "other" unit
                    drawn = self.rng.permutation(len(others))[:n_others]
                    photos = others[drawn] if augment_others is None else augment_others(self.rng, drawn)
                    X0_epoch = np.concatenate([X0_epoch, self._input(photos)])
                    Y_epoch = np.concatenate([Y_epoch, self._other_targets(n_others, Y.dtype)])
                if n_outliers:
                    side = int(round(np.sqrt(self.n_inputs)))
                    X0_epoch = np.concatenate([X0_epoch, self._input(config.outliers(n_outliers, side, self.rng))])
                    Y_epoch = np.concatenate([Y_epoch, self._outlier_targets(n_outliers, Y.dtype)])
                summed_loss = 0.0
                for batch in batches(self.rng.permutation(len(X0_epoch)), config.batch_size):
                    keep = self.dropout_mask(len(batch), config.dropout)
                    gradients, Z = self._gradients(X0_epoch[batch], Y_epoch[batch], config.weight_decay, keep)
                    step(gradients, config.rate(epoch))
                    summed_loss += self._cross_entropy(Z, Y_epoch[batch]) * len(batch)
                row = {"epoch": epoch + 1, "batch_loss": summed_loss / len(X0_epoch)}
                if validation is not None:
                    train_loss, train_accuracy = self._scores(scored, y)
                    val_loss, val_accuracy = self._scores(*validation)
                    row |= {"train_loss": train_loss, "train_accuracy": train_accuracy}
                    row |= {"val_loss": val_loss, "val_accuracy": val_accuracy}
                losses = [row["batch_loss"]]
                if epoch + 1 == config.epochs:  # no batch's loss shows the last steps: the rows as the fit leaves them
                    losses.append(row["train_loss"] if validation is not None else self._scores(scored, y)[0])
            for loss in losses:
                if diverged(loss, untrained_loss, self.params | self.running):
                    raise TrainingDiverged(
                        f"training diverged at epoch {epoch + 1}: the training loss went from {untrained_loss:.4g} "
                        f"to {loss:.4g}; the usual suspects are train.learning_rate "
                        f"({config.learning_rate}, try it smaller) and train.weight_decay ({config.weight_decay})"
                    )
            yield row
