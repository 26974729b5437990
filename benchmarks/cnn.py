"""The named ten-digit CNN configuration (README), on the real data, against PyTorch (optional, never a
dependency of the project).

    SIGN_DIGITS_DATA=/path/to/dataset python benchmarks/cnn.py [--epochs 3] [--repeats 3] [--threads 2]
                                                                [--batch-size N] [--fit-only]

1. ``CNN.fit`` against PyTorch on identical work: the same network, the same initial weights, the same epochs of
   the same (augmented) rows in the same batches (the configuration's batch size unless --batch-size is given),
   the same dropout masks, Adam with the same settings, and after every epoch the same full pass over the
   training rows (``fit``'s history: loss and accuracy). Same number of threads on both sides, one process, runs
   alternating; the ratio ours / PyTorch of each pair, and its range over the repeats.
2. The whole pipeline of the README's ``dvc exp run`` line in a copy of the project: cross-validated and test
   accuracy; then the train stage again, alone, as this process's only child: its wall time and peak resident
   memory (the child's own peak, from getrusage).

Goals (issue 14): ours / PyTorch ≤ 1.5; cross-validated mean ≥ 0.985 and test accuracy ≥ 0.98; train stage
≤ 2 minutes on 2 cores and ≤ 250 MiB.

OpenBLAS reads OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE when it loads; where they are set (they slow current
NumPy down on some machines), this script runs itself again without them, says so, and prints the BLAS kernel
in use either way. Only this command's environment changes.
"""

import os
import sys

BLAS_VARIABLES = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")
if any(name in os.environ for name in BLAS_VARIABLES):  # before NumPy loads OpenBLAS
    unset = [f"{name}={os.environ[name]}" for name in BLAS_VARIABLES if name in os.environ]
    print(f"unsetting {', '.join(unset)} for this benchmark (run again without them)", flush=True)
    environment = {key: value for key, value in os.environ.items() if key not in BLAS_VARIABLES}
    os.execve(sys.executable, [sys.executable, *sys.argv], environment)

import argparse  # noqa: E402
import json  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
from common import copy_of_project, readme_command, readme_configuration, real_split, run  # noqa: E402
from threadpoolctl import threadpool_info, threadpool_limits  # noqa: E402

from signdigits.cnn import BN_EPSILON, BN_MOMENTUM  # noqa: E402
from signdigits.network import TrainingConfig, standardization  # noqa: E402
from signdigits.training import build_model, fit_options  # noqa: E402

CONFIGURATION = "dvc exp run -n ten-digits-cnn-clean "
MEASURE = (  # run the train stage as DVC does, as this process's only child; write its peak resident set (KiB)
    "import pathlib, resource, subprocess, sys; subprocess.run([sys.executable, 'stages/train.py'], check=True); "
    "pathlib.Path('{report}').write_text(str(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss))"
)


def blas_kernel():
    blas = [f"{i['internal_api']} {i['version']} ({i.get('architecture')} kernel)" for i in threadpool_info()]
    return ", ".join(i for i in blas if "blas" in i) or "unknown"


class TorchTwin:
    """The same network in PyTorch, started from our network's initial weights, trained on the same batches."""

    def __init__(self, net, params, torch):
        if params["optimizer"] != "adam" or params["activation"] != "relu":
            sys.exit("the PyTorch twin is Adam with relu: the README line must use them for identical work")
        self.torch, self.side, self.k, self.net = torch, net.side, net.kernel_size, net
        layers, channels = [], 1
        for out in net.channels:
            if net.batch_norm:  # ours normalizes the pooled map, and its shift is the block's bias (cnn.py)
                layers += [
                    torch.nn.Conv2d(channels, out, self.k, padding=self.k // 2, bias=False),
                    torch.nn.MaxPool2d(2),
                    torch.nn.BatchNorm2d(out, eps=BN_EPSILON, momentum=BN_MOMENTUM),
                    torch.nn.ReLU(),
                ]
            else:
                layers += [
                    torch.nn.Conv2d(channels, out, self.k, padding=self.k // 2),
                    torch.nn.ReLU(),
                    torch.nn.MaxPool2d(2),
                ]
            channels = out
        size = net.side >> net.n_conv
        layers += [torch.nn.Flatten(), torch.nn.Linear(channels * size * size, net.n_hidden), torch.nn.ReLU()]
        self.hidden = torch.nn.Sequential(*layers)  # up to the dense layer's output, where dropout applies
        self.output = torch.nn.Linear(net.n_hidden, net.n_outputs)
        self.model = torch.nn.Sequential(self.hidden, self.output)
        convs = [m for m in self.model.modules() if isinstance(m, torch.nn.Conv2d)]
        norms = [m for m in self.model.modules() if isinstance(m, torch.nn.BatchNorm2d)]
        dense, output = [m for m in self.model.modules() if isinstance(m, torch.nn.Linear)]
        with torch.no_grad():
            for l, conv in enumerate(convs, start=1):
                conv.weight.copy_(torch.from_numpy(net.params[f"W{l}"]))
                if net.batch_norm:
                    norms[l - 1].weight.copy_(torch.from_numpy(net.params[f"gamma{l}"]))
                    norms[l - 1].bias.copy_(torch.from_numpy(net.params[f"b{l}"]))
                else:
                    conv.bias.copy_(torch.from_numpy(net.params[f"b{l}"]))
            # ours flattens (row, column, channel), PyTorch (channel, row, column)
            W = net.params[f"W{net.n_conv + 1}"].reshape(size, size, channels, -1).transpose(3, 2, 0, 1)
            dense.weight.copy_(torch.from_numpy(W.reshape(net.n_hidden, -1).copy()))
            dense.bias.copy_(torch.from_numpy(net.params[f"b{net.n_conv + 1}"]))
            output.weight.copy_(torch.from_numpy(net.params[f"W{net.n_conv + 2}"].T.copy()))
            output.bias.copy_(torch.from_numpy(net.params[f"b{net.n_conv + 2}"]))
        # weight decay on the conv and dense weights only, as ours (not on biases, nor batch normalisation's γ)
        weights = [m.weight for m in convs + [dense, output]]
        others = [p for p in self.model.parameters() if all(p is not w for w in weights)]
        self.optimizer = torch.optim.Adam(
            [{"params": weights, "weight_decay": params["weight_decay"]}, {"params": others, "weight_decay": 0.0}],
            lr=params["learning_rate"],
        )

    def images(self, X):
        return self.torch.from_numpy(np.ascontiguousarray(X).reshape(-1, 1, self.side, self.side))

    def fit(self, X, y, params):
        """Our ``fit``'s loop, with our network's generator, standardization, chunk size and TrainingConfig: the
        loss over the training rows before training (for the divergence rule), then per epoch the augmented rows,
        batches in the order of the generator, each with our dropout mask, Adam at the epoch's learning rate, and
        loss and accuracy over the training rows."""
        torch, net, config = self.torch, self.net, TrainingConfig(**fit_options(params))
        mean, scale = standardization(X)
        y_all, X_plain = torch.from_numpy(y), self.images((X - mean) / scale)

        def scores():
            self.model.eval()  # batch normalisation: the running statistics, as our per-epoch figures
            with torch.no_grad():
                Z = torch.cat([self.model(X_plain[i : i + net.CHUNK]) for i in range(0, len(X), net.CHUNK)])
                return float(torch.nn.functional.cross_entropy(Z, y_all)), float((Z.argmax(1) == y_all).float().mean())

        scores()
        for epoch in range(config.epochs):
            for group in self.optimizer.param_groups:
                group["lr"] = config.rate(epoch)
            X_epoch = X_plain if config.augment is None else self.images((config.augment(X, net.rng) - mean) / scale)
            order = torch.from_numpy(net.rng.permutation(len(X)))
            self.model.train()
            for first in range(0, len(X), config.batch_size):
                batch = order[first : first + config.batch_size]
                self.optimizer.zero_grad()
                hidden = self.hidden(X_epoch[batch])
                keep = net.dropout_mask(len(batch), config.dropout)
                if keep is not None:
                    hidden = hidden * torch.from_numpy(keep)
                torch.nn.functional.cross_entropy(self.output(hidden), y_all[batch]).backward()
                self.optimizer.step()
            last = scores()
        return last


def compare_fit(params, classes, epochs, repeats, threads):
    """Seconds of ours and PyTorch's identical training, alternating; None without torch."""
    try:
        import torch
    except ImportError:
        return None
    torch.set_num_threads(threads)
    X, _, y, _ = real_split(classes=classes)
    params = params | {"epochs": epochs}

    def ours():
        net = build_model(params, X.shape[1], len(classes))
        history = net.fit(X, y, **fit_options(params))
        return history[-1]["train_loss"], history[-1]["train_accuracy"]

    def theirs():
        net = build_model(params, X.shape[1], len(classes))  # the same initial weights and generator state
        return TorchTwin(net, params, torch).fit(X, y, params)

    pairs = []
    with threadpool_limits(limits=threads, user_api="blas"):
        scores = ours(), theirs()  # warm-up: imports, first allocations; the same training, the same scores?
        for _ in range(repeats):
            times = []
            for run_one in (ours, theirs):
                start = time.perf_counter()
                run_one()
                times.append(time.perf_counter() - start)
            pairs.append(times)
    return pairs, scores, torch.__version__


def read_json(project: Path, *paths: str) -> dict:
    """The figures of the JSON files ``paths`` of ``project``, merged (a headline file and its details)."""
    return {key: value for path in paths for key, value in json.loads((project / path).read_text()).items()}


def pipeline():
    """(crossval.json with crossval_details.json or None, metrics.json with test_details.json, train stage seconds,
    peak MiB, whether the rerun wrote the same model file bit for bit) from the README line in a copy."""
    command = readme_command(CONFIGURATION)
    with tempfile.TemporaryDirectory() as folder:
        project = copy_of_project(Path(folder))
        run(project, sys.executable, "-m", *command)  # dvc exp run … (every stage)
        crossval = None
        if (project / "reports/crossval.json").exists():
            crossval = read_json(project, "reports/crossval.json", "reports/crossval_details.json")
        metrics = read_json(project, "reports/metrics.json", "reports/test_details.json")
        model = (project / "models/model.npz").read_bytes()
        report = project / "peak_rss_kib"
        seconds = run(project, sys.executable, "-c", MEASURE.format(report=report))
        same = (project / "models/model.npz").read_bytes() == model
        return crossval, metrics, seconds, int(report.read_text()) / 1024, same


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--epochs", type=int, default=3, help="epochs of the fit comparison (default 3)")
    parser.add_argument("--repeats", type=int, default=3, help="alternating pairs of runs (default 3)")
    parser.add_argument("--threads", type=int, default=os.cpu_count(), help="threads on both sides (default: cores)")
    parser.add_argument(
        "--batch-size", type=int, help="batch size of the fit comparison (default: the configuration's)"
    )
    parser.add_argument("--fit-only", action="store_true", help="skip the pipeline run (accuracy, stage, memory)")
    options = parser.parse_args()
    configured = readme_configuration(CONFIGURATION)
    params, classes = configured["train"], configured["filter"]["classes"]
    batch_size = params["batch_size"] if options.batch_size is None else options.batch_size
    print(
        f"ten-digit CNN {params['conv_channels']}, kernel {params['kernel_size']}, dense {params['hidden_units']}, "
        f"{'batch norm, ' if params['batch_norm'] else ''}{params['activation']}, {params['optimizer']}, "
        f"batch {params['batch_size']}, augment shift "
        f"{params['augment_shift']} rotate {params['augment_rotate']} zoom {params['augment_zoom']}, dropout "
        f"{params['dropout']}; {os.cpu_count()} cores; BLAS: {blas_kernel()}"
    )
    compared = compare_fit(
        params | {"batch_size": batch_size}, classes, options.epochs, options.repeats, options.threads
    )
    if compared is None:
        print("PyTorch            not installed: no reference time (pip install torch to compare)")
    else:
        pairs, scores, version = compared
        ratios = [ours / theirs for ours, theirs in pairs]
        print(
            f"fit, {options.epochs} epochs, batch {batch_size}, {options.threads} threads, each followed by a "
            "pass over the training rows; "
            f"NumPy (ours) against PyTorch {version}, alternating:"
        )
        (ours_loss, ours_accuracy), (torch_loss, torch_accuracy) = scores
        print(
            f"  after training, loss and accuracy on the training rows: ours {ours_loss:.4f} {ours_accuracy:.4f}, "
            f"PyTorch {torch_loss:.4f} {torch_accuracy:.4f}"
        )
        for ours, theirs in pairs:
            print(f"  ours {ours:6.2f} s   PyTorch {theirs:6.2f} s   ours / PyTorch = {ours / theirs:.2f}")
        print(f"ours / PyTorch     {min(ratios):.2f}–{max(ratios):.2f} (median {np.median(ratios):.2f}; goal ≤ 1.5)")
    if options.fit_only:
        return
    crossval, metrics, seconds, peak_mib, same = pipeline()
    if crossval is not None and crossval.get("cv_folds"):
        print(
            f"cross-validation   {crossval['cv_acc']:.4f} ± {crossval['cv_accuracy_std']:.4f} "
            f"(mean ± std over {crossval['cv_folds']} folds; goal ≥ 0.985)"
        )
    print(
        f"test accuracy      {metrics['test_acc']:.4f} (95 % {metrics['test_accuracy_low']:.3f}–"
        f"{metrics['test_accuracy_high']:.3f}; goal ≥ 0.98)"
    )
    print(f"train stage        {seconds:.1f} s (goal ≤ 120 s), peak memory {peak_mib:.0f} MiB (goal ≤ 250 MiB)")
    print(f"the rerun wrote the same model file bit for bit: {same}")


if __name__ == "__main__":
    main()
