"""The optimizers: how a parameter moves, given its gradient, in one training step."""

import numpy as np

from signdigits.choices import OPTIMIZERS


def make_optimizer(name, params, momentum=0.0, beta1=0.9, beta2=0.999, eps=1e-8):
    """A function step(grads, rate) that updates ``params`` (a dict of arrays) in place.

    sgd:  v ← μ v − η g;  θ ← θ + v          (μ = 0 is the seed's plain θ ← θ − η g)
    adam: m ← β1 m + (1 − β1) g;  s ← β2 s + (1 − β2) g²;  θ ← θ − η m̂ / (√ŝ + ε),
          with the bias corrections m̂ = m / (1 − β1^t), ŝ = s / (1 − β2^t) (Kingma & Ba, 2015).
    """
    if name not in OPTIMIZERS:
        raise ValueError(f"optimizer must be one of {OPTIMIZERS}, not {name!r}")
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
        # m, s and θ are updated in place, which keeps the arrays made per step to a few temporaries: a fresh
        # array for every term costs more in allocation than in arithmetic (the dense layer's are megabytes)
        t[0] += 1
        m_correction, s_correction = 1 - beta1 ** t[0], 1 - beta2 ** t[0]
        for key, value in params.items():
            g, m, s = grads[key], first[key], second[key]
            m *= beta1
            m += (1 - beta1) * g
            s *= beta2
            s += (1 - beta2) * np.square(g)
            denominator = np.sqrt(s / s_correction)  # √ŝ
            denominator += eps
            value -= (rate / m_correction) * m / denominator  # η m̂ / (√ŝ + ε), m̂ = m / (1 − β1^t)

    return adam
