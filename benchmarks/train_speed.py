"""Training speed of the course project's network (the README's `course` configuration: 784 → 128 → 1 sigmoid,
SGD lr 0.01, 100 epochs, batch 32, clean photos; plus standardized inputs) on the real 0-vs-5 split, against
scikit-learn's MLPClassifier and, when torch is importable, a PyTorch eager loop, both set up identically (same
hyperparameters, same standardized inputs, same batches per epoch, the same number of epochs), in the same process.
The default params train the same network, with its "other" output, on mirrored and altered photos, photos of the
other digits and synthetic non-hands, which neither contender does: their accuracy over split seeds is measured,
their speed is not raced.

    SIGN_DIGITS_DATA=/path/to/dataset python benchmarks/train_speed.py

Every contender runs on one thread (signdigits.MLP fits on one BLAS thread, scikit-learn is limited to one with
threadpoolctl, PyTorch by torch.set_num_threads(1)); a last row fits the MLP with all BLAS threads, to check
MLP.BLAS_THREADS = 1. The runs alternate, ours / scikit-learn / PyTorch / ours on all threads, and each time
printed is the median of its runs. The BLAS libraries in use (threadpoolctl; PyTorch's own from its build
config) are printed first.

OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE: if either is set (a machine may pin OpenBLAS to a generic kernel), this script
starts itself again once with both unset, for its own command only, so that OpenBLAS picks the kernel of this
CPU; tests and CI never touch them.

Target: the MLP is faster than MLPClassifier and than PyTorch. Over 10 split seeds, mean test accuracy ≥ 0.98,
none < 0.95, for the default params (trained as the pipeline trains them) and the course's network (also printed
on the seed's raw [0, 1] pixels, train.standardize: false).
"""

import os
import sys

BLAS_VARIABLES = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")
if any(name in os.environ for name in BLAS_VARIABLES):  # before NumPy loads OpenBLAS, which reads them once
    os.execve(
        sys.executable, [sys.executable, *sys.argv], {k: v for k, v in os.environ.items() if k not in BLAS_VARIABLES}
    )

import re  # noqa: E402
import time  # noqa: E402
import warnings  # noqa: E402

import numpy as np  # noqa: E402
from common import PARAMS, readme_configuration, real_other_hands, real_split  # noqa: E402
from threadpoolctl import threadpool_info, threadpool_limits  # noqa: E402

from signdigits.mlp import MLP  # noqa: E402
from signdigits.network import TrainingConfig, standardization  # noqa: E402
from signdigits.training import other_hands_to_learn, train  # noqa: E402

REPEATS = 3

try:
    import torch
except ImportError:  # PyTorch is not a dependency: its column is left out without it
    torch = None


def train_ours(params, X_train, y_train, blas_threads=1):
    net = MLP(
        X_train.shape[1],
        params["hidden_units"],
        1,
        params["activation"],
        params["seed"],
        standardize=params["standardize"],
    )
    net.BLAS_THREADS = blas_threads  # MLP's own choice is 1
    options = {name: params[name] for name in ("epochs", "batch_size", "learning_rate")}
    net.fit(X_train, y_train, TrainingConfig(**options))
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
    with warnings.catch_warnings(), threadpool_limits(limits=1, user_api="blas"):
        warnings.simplefilter("ignore")  # "maximum iterations reached": intended
        return model.fit(X, y_train)


def train_torch(params, X_train, y_train):
    """The same network, loss and plain SGD in PyTorch eager mode: a fresh random order of the rows each epoch,
    cut into batches of batch_size (the last one smaller), one optimizer step per batch."""
    torch.manual_seed(params["seed"])
    X = standardized(X_train, X_train) if params["standardize"] else X_train
    X, y = torch.from_numpy(np.ascontiguousarray(X, np.float32)), torch.from_numpy(y_train.astype(np.float32))[:, None]
    model = torch.nn.Sequential(
        torch.nn.Linear(X.shape[1], params["hidden_units"]),
        torch.nn.Sigmoid(),
        torch.nn.Linear(params["hidden_units"], 1),
    )
    optimizer = torch.optim.SGD(model.parameters(), lr=params["learning_rate"])
    loss = torch.nn.BCEWithLogitsLoss()
    for _ in range(params["epochs"]):
        for batch in torch.randperm(len(X)).split(params["batch_size"]):
            optimizer.zero_grad()
            loss(model(X[batch]), y[batch]).backward()
            optimizer.step()
    return model


def torch_accuracy(model, X, y):
    with torch.no_grad():
        return float(((model(torch.from_numpy(np.ascontiguousarray(X, np.float32)))[:, 0] >= 0).numpy() == y).mean())


def accuracy_over_split_seeds(fit):
    """Test accuracy of ``fit(X_train, y_train, X_others)``'s network on the split of each seed 0–9 (X_others: that
    split's training photos of the other digits, as stage split splits them)."""
    accuracies = []
    for seed in range(10):
        X_train, X_test, y_train, y_test = real_split(seed=seed)
        X_others = real_other_hands(PARAMS["filter"]["classes"], seed=seed)[0]
        accuracies.append(np.mean(fit(X_train, y_train, X_others).predict(X_test) == y_test))
    return np.array(accuracies)


def print_blas():
    for library in threadpool_info():
        name = os.path.basename(library["filepath"])
        kernel = library.get("architecture") or "-"
        print(f"threadpoolctl: {library['internal_api']} {library.get('version') or ''} ({name}), kernel {kernel}")
    if torch is not None:  # PyTorch links its BLAS statically, out of threadpoolctl's sight: its build says which
        blas = re.search(r"BLAS_INFO=(\w+)", torch.__config__.show())
        library = [line for line in torch.__config__.parallel_info().splitlines() if "Library Version" in line]
        print(f"PyTorch {torch.__version__}: BLAS {blas[1] if blas else '?'}; {' '.join(library).strip()}")


def main():
    params = readme_configuration("dvc exp run -n course ")["train"]
    assert params["activation"] == "sigmoid" and params["optimizer"] == "sgd" and not params["momentum"]
    X_train, X_test, y_train, y_test = real_split()
    print(
        f"the course's train params: 784 → {params['hidden_units']} → 1 {params['activation']}, SGD lr "
        f"{params['learning_rate']}, {params['epochs']} epochs, batch {params['batch_size']}, standardized inputs: "
        f"{params['standardize']}; {len(X_train)} train / {len(X_test)} test photos"
    )
    print_blas()
    contenders = {"signdigits MLP": train_ours, "sklearn MLPClassifier": train_sklearn}
    if torch is not None:
        torch.set_num_threads(1)
        contenders["PyTorch eager"] = train_torch
    contenders["signdigits MLP, all BLAS threads"] = lambda *data: train_ours(*data, blas_threads=None)
    seconds = {name: [] for name in contenders}
    models = {}
    for _ in range(REPEATS):  # alternating: each repeat runs every contender once, in turn
        for name, contender in contenders.items():
            start = time.perf_counter()
            models[name] = contender(params, X_train, y_train)
            seconds[name].append(time.perf_counter() - start)
    median = {name: float(np.median(times)) for name, times in seconds.items()}
    X_test_standardized = standardized(X_test, X_train) if params["standardize"] else X_test
    accuracy = {
        "signdigits MLP": np.mean(models["signdigits MLP"].predict(X_test) == y_test),
        "signdigits MLP, all BLAS threads": np.mean(
            models["signdigits MLP, all BLAS threads"].predict(X_test) == y_test
        ),
        "sklearn MLPClassifier": models["sklearn MLPClassifier"].score(X_test_standardized, y_test),
    }
    if torch is not None:
        accuracy["PyTorch eager"] = torch_accuracy(models["PyTorch eager"], X_test_standardized, y_test)
    samples = params["epochs"] * len(X_train)
    print(f"{'':34}{'seconds':>9}{'samples/s':>12}{'test acc':>10}   (1 thread each but the last; median of {REPEATS})")
    for name in contenders:
        print(f"{name:34}{median[name]:9.3f}{samples / median[name]:12,.0f}{accuracy[name]:10.4f}")
    for name in ("sklearn MLPClassifier", "PyTorch eager"):
        if name in contenders:
            print(f"signdigits MLP over {name}: {median[name] / median['signdigits MLP']:.2f}× (target > 1×)")

    variants = {
        "the default params": lambda X, y, X_others: train(
            PARAMS["train"], X, y, label=None, others=other_hands_to_learn(PARAMS["train"], X_others)
        )[0],
        "the course's network": lambda X, y, _: train_ours(params, X, y),
        "the course's network on the seed's raw pixels": lambda X, y, _: train_ours(
            params | {"standardize": False}, X, y
        ),
    }
    for label, fit in variants.items():
        accuracies = accuracy_over_split_seeds(fit)
        print(f"test accuracy over split seeds 0–9, {label}:")
        print("  " + " ".join(f"{a:.3f}" for a in accuracies))
        print(f"  mean {accuracies.mean():.4f} (target ≥ 0.98), min {accuracies.min():.4f} (target ≥ 0.95)")


if __name__ == "__main__":
    main()
