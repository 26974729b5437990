"""A small convolutional network in NumPy: the seed's "advanced architecture", written out like the MLP.

For a batch of N square grayscale images (rows of X reshaped to N × side × side × 1, channels last):

    for each block l = 1 … L:   Z_l = A_{l−1} ⋆ W_l              k × k convolution, stride 1, zero "same" padding
                                M_l = maxpool₂(Z_l)              2 × 2 windows, stride 2 (an odd last row/column
                                                                 is dropped)
                                A_l = g(M_l + b_l)               g = relu (or sigmoid, tanh)
    dense:                      Z_h = flat(A_L) W_h + b_h,  A_h = g(Z_h)
    output:                     Z_o = A_h W_o + b_o         sigmoid or softmax, as the MLP (network.py)

This is the usual block, conv → + bias → g → pool, in a cheaper order: the maximum of a window commutes with
adding the channel's bias b_l and with g (every g here is increasing), so maxpool₂(g(Z_l + b_l)) =
g(maxpool₂(Z_l) + b_l), and g and the bias touch a quarter of the elements.

With ``batch_norm``, each block normalizes its pooled map before the bias (Ioffe & Szegedy, 2015), channel by
channel: A_l = g(γ_l M̂_l + b_l), M̂_l = (M_l − μ_l) / √(σ²_l + ε), where b_l is the normalization's shift β.
While training, μ_l and σ²_l are the batch's mean and (biased) variance over images and positions, and each
batch moves the running estimates by BN_MOMENTUM towards them (the variance's unbiased n / (n − 1) form, as
PyTorch does); prediction and the per-epoch figures use the running estimates. Normalizing after pooling, not
before as is usual, costs a quarter as much; it is a different network, not a reordering (γ_l may be negative,
and the batch's statistics are those of the pooled map), and benchmarks/cnn.py's PyTorch twin builds the same.

"⋆" is cross-correlation, as in every deep-learning library. It is computed as one matrix product: im2col lays
each k × k × C window of the padded input out as a row (a strided view, then one copy), so Z_l = cols W_mat with
W_mat the kernels as a (k·k·C) × F matrix. Backward, dW_mat = colsᵀ dZ, and the input's gradient is a
correlation again, with the kernels rotated by 180° (see ``flipped``). Max-pooling sends each window's gradient
to the element that was the maximum; on a tie, to the first maximum in row-major order (see ``max_pool``).

The layers are ``blocks`` (W_l of shape (F_l, C_l, k, k), the PyTorch layout), ``dense`` and ``output``: records
of layout.py, which names and shapes every parameter (W1, b1 … for the blocks, then the dense layer and the
output; with batch normalisation gamma_l in ``params`` and running_mean_l, running_var_l in ``running``). Left out:
strides and dilations other than 1. Dropout (network.py) applies to the dense layer: Z_o = (A_h · keep) W_o + b_o
while training.
"""

import math

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from signdigits.choices import ACTIVATIONS
from signdigits.layout import CHUNK, cnn_layers, pooled_side
from signdigits.network import GAIN_AFTER, Network, activate, activation_slope


def im2col(A, k):
    """Rows of the k × k windows (zero-padded, "same" size) of A (N, H, W, C): shape (N·H·W, k·k·C), each row
    ordered (window row, window column, channel), so that a row's channels stay side by side in memory: a strided
    view of the padded input's windows, copied once."""
    N, H, W, C = A.shape
    p = k // 2
    padded = np.zeros((N, H + 2 * p, W + 2 * p, C), A.dtype)  # np.pad's result, without its per-call overhead
    padded[:, p : p + H, p : p + W] = A
    windows = sliding_window_view(padded, (k, k), axis=(1, 2))  # (N, H, W, C, k, k)
    return windows.transpose(0, 1, 2, 4, 5, 3).reshape(N * H * W, k * k * C)


def kernel_matrix(W):
    """The kernels W (F, C, k, k) as the (k·k·C) × F matrix that multiplies im2col's rows."""
    return W.transpose(2, 3, 1, 0).reshape(-1, len(W))


def correlate(A, W):
    """A ⋆ W for A (N, H, W, C) and kernels W (F, C, k, k): (N, H, W, F), "same" size, and the im2col rows."""
    N, H, Wd, _ = A.shape
    cols = im2col(A, W.shape[-1])
    return (cols @ kernel_matrix(W)).reshape(N, H, Wd, len(W)), cols


def flipped(W):
    """The kernels for the backward pass of ⋆: each rotated by 180°, input and output channels swapped. With
    Z[y, x, f] = Σ_{i,j,c} A[y + i − p, x + j − p, c] W[f, c, i, j], the gradient dA[y, x, c] =
    Σ_{i,j,f} dZ[y − i + p, x − j + p, f] W[f, c, i, j] is dZ ⋆ flipped(W), zero padding and all."""
    return W[:, :, ::-1, ::-1].transpose(1, 0, 2, 3)


def max_pool(Z):
    """2 × 2 max-pooling of Z (N, H, W, C) → (M, route): the pooled map, and what ``max_pool_backward`` needs.

    A window's maximum is taken as two maxima of pairs: first of the two columns in each row, then of the two
    rows. Each pair remembers which side won, the right (later) one only if it is strictly larger, so a tie
    goes to the first maximum in row-major order (as numpy's argmax would). An odd last row or column is
    dropped. Pairs instead of the textbook argmax over each window's four elements, because it is faster:
    `benchmarks/cnn.py --tricks` measures the two (the README's CNN: 16 % of a fit); tests/test_cnn.py checks it,
    and ``max_pool_backward``, against pooling by loops."""
    N, H, W, C = Z.shape
    H2, W2 = H // 2, W // 2
    pairs = Z[:, : 2 * H2, : 2 * W2].reshape(N, 2 * H2, W2, 2, C)  # column pairs, row by row
    right = pairs[:, :, :, 1] > pairs[:, :, :, 0]
    rows = np.maximum(pairs[:, :, :, 0], pairs[:, :, :, 1]).reshape(N, H2, 2, W2, C)  # row pairs
    lower = rows[:, :, 1] > rows[:, :, 0]
    return np.maximum(rows[:, :, 0], rows[:, :, 1]), (right, lower, Z.shape)


def max_pool_backward(dM, route):
    """dZ: each pooled gradient goes back through the two pair maxima to its window's winner; every other element
    (and a dropped odd edge) gets 0. Backward through m = max(u, v): du = dm·[v did not win], dv = dm·[v won]."""
    right, lower, shape = route
    N, H2, W2, C = dM.shape
    drows = np.empty((N, H2, 2, W2, C), dM.dtype)
    np.multiply(dM, lower, out=drows[:, :, 1])
    np.subtract(dM, drows[:, :, 1], out=drows[:, :, 0])  # dM − dM·[lower] is exactly dM·[not lower]
    dpairs = np.empty((N, 2 * H2, W2, 2, C), dM.dtype)
    drows = drows.reshape(N, 2 * H2, W2, C)
    np.multiply(drows, right, out=dpairs[:, :, :, 1])
    np.subtract(drows, dpairs[:, :, :, 1], out=dpairs[:, :, :, 0])
    dpairs = dpairs.reshape(N, 2 * H2, 2 * W2, C)
    if dpairs.shape == shape:
        return dpairs
    dZ = np.zeros(shape, dM.dtype)
    dZ[:, : 2 * H2, : 2 * W2] = dpairs
    return dZ


# Batch normalisation's ε and the weight of a batch in the running statistics: PyTorch's defaults.
BN_EPSILON, BN_MOMENTUM = 1e-5, 0.1


def normalization_backward(dMhat, Mhat, scale):
    """dM from dM̂ for M̂ = (M − μ) / s with the batch's own μ = mean(M) and s = √(var(M) + ε), every mean over
    all but the last (channel) axis. M̂ depends on M directly and through μ and s; the chain rule with
    ∂μ/∂M = 1/n and ∂s/∂M = (M − μ) / (n s) = M̂ / n collapses to dM = (dM̂ − mean(dM̂) − M̂ · mean(dM̂ · M̂)) / s."""
    axes = tuple(range(dMhat.ndim - 1))
    return (dMhat - dMhat.mean(axis=axes) - Mhat * (dMhat * Mhat).mean(axis=axes)) / scale


class CNN(Network):
    FORMAT = "signdigits-cnn-1"
    MODEL = "cnn"
    CHUNK = CHUNK["cnn"]

    def __init__(
        self,
        n_inputs,
        n_outputs=1,
        channels=(16, 32),
        kernel_size=3,
        n_hidden=128,
        activation="relu",
        seed=0,
        dtype=np.float32,
        standardize=False,
        batch_norm=False,
        photo_norm=False,
        other_output=False,
        mirror_average=False,
    ):
        side = math.isqrt(n_inputs)
        if side * side != n_inputs:
            raise ValueError(f"n_inputs must be a square number of pixels, not {n_inputs}")
        if kernel_size < 1 or kernel_size % 2 == 0:
            raise ValueError(f"kernel_size must be odd (for 'same' padding), not {kernel_size}")
        if activation not in ACTIVATIONS or not channels or min(channels) < 1 or n_hidden < 1:
            raise ValueError("activation, channels or n_hidden is invalid")
        if pooled_side(side, len(channels)) < 1:
            raise ValueError(f"{len(channels)} pooling layers would shrink a {side}-pixel image to nothing")
        super().__init__(n_inputs, n_outputs, seed, dtype, standardize, photo_norm, other_output, mirror_average)
        self.side, self.channels, self.kernel_size = side, [int(c) for c in channels], int(kernel_size)
        self.n_hidden, self.activation, self.batch_norm = int(n_hidden), activation, bool(batch_norm)
        self.blocks, self.dense, self.output = cnn_layers(
            self.n_inputs, self.n_units, self.channels, self.kernel_size, self.n_hidden, self.batch_norm
        )
        self.WEIGHTS = tuple(layer.W for layer in (*self.blocks, self.dense, self.output))
        gain = GAIN_AFTER[activation]
        first_gain = GAIN_AFTER["relu"] if activation == "relu" else 1.0  # the pixels feed the first block
        for block in self.blocks:
            shapes = block.shapes()
            fan_in = block.in_channels * block.kernel_size**2
            self.params[block.W] = self.normal(shapes[block.W], fan_in, first_gain if block is self.blocks[0] else gain)
            self.params[block.b] = np.zeros(shapes[block.b], self.dtype)
            if block.norm:  # γ = 1, β = b = 0: the block starts out passing on the normalized map
                gamma, running_mean, running_var = block.norm
                self.params[gamma] = np.ones(shapes[gamma], self.dtype)
                self.running[running_mean] = np.zeros(shapes[running_mean], self.dtype)
                self.running[running_var] = np.ones(shapes[running_var], self.dtype)
        for layer in (self.dense, self.output):
            self.params[layer.W] = self.normal((layer.inputs, layer.outputs), layer.inputs, gain)
            self.params[layer.b] = np.zeros(layer.outputs, self.dtype)

    def _normalized(self, block, M, training):
        """(M̂, s) of the block's batch normalisation: M̂ = (M − μ) / s, s = √(σ² + ε), with the batch's statistics
        while training (which also move the running ones), the running ones otherwise. A batch with a single
        value per channel (one image pooled to 1 × 1) has no variance to estimate: it leaves the running ones."""
        _, mean_name, var_name = block.norm
        running_mean, running_var = self.running[mean_name], self.running[var_name]
        if training:
            axes = (0, 1, 2)
            mean = M.mean(axis=axes)
            centred = M - mean
            var = np.square(centred).mean(axis=axes)  # M.var(axis=axes), without computing M − μ a second time
            n = M.size // M.shape[-1]
            if n > 1:
                running_mean += BN_MOMENTUM * (mean - running_mean)
                running_var += BN_MOMENTUM * (var * (n / (n - 1)) - running_var)
        else:
            centred, var = M - running_mean, running_var
        scale = np.sqrt(var + self.dtype.type(BN_EPSILON))
        return centred / scale, scale

    def _forward(self, X0, keep=None, training=False):
        """The cache for backpropagation and the logits Zo. ``keep`` is the dense layer's dropout mask (None: no
        dropout); ``training``: batch normalisation uses the batch's statistics (and updates the running ones),
        which ``_backward`` assumes."""
        p, g = self.params, self.activation
        A = X0.reshape(len(X0), self.side, self.side, 1)
        caches = []
        for block in self.blocks:
            Z, cols = correlate(A, p[block.W])  # the bias: after pooling
            M, route = max_pool(Z)
            if block.norm:
                Mhat, scale = self._normalized(block, M, training)
                norm = (Mhat, scale)
                Mb = p[block.norm[0]] * Mhat + p[block.b]  # the pooled pre-activation
            else:
                norm = None
                Mb = M + p[block.b]
            A = activate(g, Mb)
            caches.append((cols, route, norm, Mb, A))
        flat = A.reshape(len(A), -1)
        dense, output = self.dense, self.output
        Zh = flat @ p[dense.W] + p[dense.b]
        Ah = activate(g, Zh)
        Dh = Ah if keep is None else Ah * keep  # what the output layer sees
        Zo = Dh @ p[output.W] + p[output.b]
        return (caches, flat, Zh, Ah, Dh, keep), Zo

    def _backward(self, cache, dZo):
        """From the output error dZo = (A − Y) / N back through the dense layer, then each block in turn."""
        caches, flat, Zh, Ah, Dh, keep = cache
        p, g, dense, output = self.params, self.activation, self.dense, self.output
        grads = {output.W: Dh.T @ dZo, output.b: dZo.sum(axis=0)}
        dAh = dZo @ p[output.W].T
        if keep is not None:  # Dh = Ah · keep
            dAh = dAh * keep
        dZh = dAh * activation_slope(g, Zh, Ah)
        grads[dense.W], grads[dense.b] = flat.T @ dZh, dZh.sum(axis=0)
        dA = (dZh @ p[dense.W].T).reshape(caches[-1][-1].shape)
        for block, (cols, route, norm, Mb, A) in reversed(list(zip(self.blocks, caches))):
            W, k = p[block.W], block.kernel_size
            dMb = dA * activation_slope(g, Mb, A)  # Mb = M + b (or γ M̂ + b): db sums dMb over images and positions
            grads[block.b] = dMb.sum(axis=(0, 1, 2))
            if norm is None:
                dM = dMb
            else:
                Mhat, scale = norm
                gamma = block.norm[0]
                grads[gamma] = (dMb * Mhat).sum(axis=(0, 1, 2))
                dM = normalization_backward(dMb * p[gamma], Mhat, scale)
            dZ = max_pool_backward(dM, route)
            dW_mat = cols.T @ dZ.reshape(-1, len(W))  # Z = cols W_mat
            grads[block.W] = dW_mat.reshape(k, k, -1, len(W)).transpose(3, 2, 0, 1)
            if block is not self.blocks[0]:  # the pixels need no gradient
                dA = correlate(dZ, flipped(W))[0]
        return grads

    def _last_hidden(self, cache):
        return cache[3]  # Ah

    def architecture(self):
        return {
            "n_inputs": self.n_inputs,
            "n_outputs": self.n_outputs,
            "channels": self.channels,
            "kernel_size": self.kernel_size,
            "n_hidden": self.n_hidden,
            "activation": self.activation,
            "seed": self.seed,
            "standardize": self.standardize,
            "batch_norm": self.batch_norm,
            "photo_norm": self.photo_norm,
            "other_output": self.other_output,
            "mirror_average": self.mirror_average,
        }
