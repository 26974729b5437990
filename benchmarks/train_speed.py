"""Training speed and accuracy of the default train params (the seed's configuration: 784 → 128 → 1 sigmoid, SGD
lr 0.01, 100 epochs, batch 32; plus standardized inputs) on the real 0-vs-5 split, against scikit-learn's
MLPClassifier set up identically (same hyperparameters, same standardized inputs), in the same run.

    SIGN_DIGITS_DATA=/path/to/dataset python benchmarks/train_speed.py

Targets (issue 3): ≥ 3× faster than MLPClassifier; over 10 split seeds, mean test accuracy ≥ 0.98, none < 0.95.
fit trains plain SGD on 329 rows of 784 pixels through the Gram matrix of the rows (MLP._gram_epochs); the batch
loop that computes the same steps with X W1 and Xᵀ dZ1 is timed beside it. The accuracy over split seeds is
also printed for the seed's raw [0, 1] pixels (train.standardize: false).
"""

import warnings

import numpy as np
from common import PARAMS, real_split, timed
from threadpoolctl import threadpool_limits

from signdigits.mlp import MLP
from signdigits.network import standardization


def train_ours(params, X_train, y_train, gram=True):
    net = MLP(
        X_train.shape[1],
        params["hidden_units"],
        1,
        params["activation"],
        params["seed"],
        standardize=params["standardize"],
    )
    net.gram_when_fewer_rows = gram
    net.fit(X_train, y_train, params["epochs"], params["batch_size"], params["learning_rate"])
    return net


def standardized(X, X_train):
    """(X − μ) / s with μ, s learnt from X_train as MLP(standardize=True) learns them."""
    mean, scale = standardization(X_train)
    return (X - mean) / scale


def train_sklearn(params, X_train, y_train):
    from sklearn.neural_network import MLPClassifier

    model = MLPClassifier(
        hidden_layer_sizes=(params["hidden_units"],),
        activation="logistic",
        solver="sgd",
        learning_rate="constant",
        learning_rate_init=params["learning_rate"],
        momentum=0.0,
        nesterovs_momentum=False,
        batch_size=params["batch_size"],
        max_iter=params["epochs"],
        alpha=0.0,
        early_stopping=False,
        n_iter_no_change=params["epochs"] + 1,  # never stop early: exactly `epochs` passes
        tol=0.0,
        shuffle=True,
        random_state=params["seed"],
    )
    X = standardized(X_train, X_train) if params["standardize"] else X_train
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "maximum iterations reached": intended
        return model.fit(X, y_train)


def accuracy_over_split_seeds(params):
    accuracies = []
    for seed in range(10):
        X_train, X_test, y_train, y_test = real_split(seed=seed)
        accuracies.append(train_ours(params, X_train, y_train).accuracy(X_test, y_test))
    return np.array(accuracies)


def main():
    params = PARAMS["train"]
    assert params["activation"] == "sigmoid" and params["optimizer"] == "sgd" and not params["momentum"]
    X_train, X_test, y_train, y_test = real_split()
    samples = params["epochs"] * len(X_train)
    print(
        f"default train params: 784 → {params['hidden_units']} → 1 {params['activation']}, SGD lr "
        f"{params['learning_rate']}, {params['epochs']} epochs, batch {params['batch_size']}, standardized inputs: "
        f"{params['standardize']}; {len(X_train)} train / {len(X_test)} test photos"
    )

    ours, ours_seconds = timed(lambda: train_ours(params, X_train, y_train))
    loop, loop_seconds = timed(lambda: train_ours(params, X_train, y_train, gram=False))
    sklearn, sklearn_seconds = timed(lambda: train_sklearn(params, X_train, y_train))
    with threadpool_limits(limits=1, user_api="blas"):
        _, sklearn_one_thread = timed(lambda: train_sklearn(params, X_train, y_train))
    reference = min(sklearn_seconds, sklearn_one_thread)
    sklearn_test = standardized(X_test, X_train) if params["standardize"] else X_test
    print(f"{'':38}{'seconds':>9}{'samples/s':>12}{'test acc':>10}")
    for name, net, seconds in (
        ("signdigits MLP (fit: Gram path)", ours, ours_seconds),
        ("signdigits MLP, batch loop", loop, loop_seconds),
    ):
        print(f"{name:38}{seconds:9.3f}{samples / seconds:12,.0f}{net.accuracy(X_test, y_test):10.4f}")
    sk_accuracy = sklearn.score(sklearn_test, y_test)
    print(f"{'sklearn MLPClassifier':38}{sklearn_seconds:9.3f}{samples / sklearn_seconds:12,.0f}{sk_accuracy:10.4f}")
    print(f"{'sklearn MLPClassifier, 1 BLAS thread':38}{sklearn_one_thread:9.3f}{samples / sklearn_one_thread:12,.0f}")
    print(f"speed-up over the faster sklearn run: {reference / ours_seconds:.2f}× (target ≥ 3×)")
    print(
        f"the batch loop alone: {reference / loop_seconds:.2f}×; the Gram path over the batch loop: "
        f"{loop_seconds / ours_seconds:.2f}×"
    )

    variants = [("default params", params["standardize"])]
    if params["standardize"]:
        variants.append(("the seed's raw pixels", False))
    for label, standardize in variants:
        accuracies = accuracy_over_split_seeds(params | {"standardize": standardize})
        print(f"test accuracy over split seeds 0–9, {label} (standardize: {standardize}):")
        print("  " + " ".join(f"{a:.3f}" for a in accuracies))
        print(f"  mean {accuracies.mean():.4f} (target ≥ 0.98), min {accuracies.min():.4f} (target ≥ 0.95)")


if __name__ == "__main__":
    main()
