"""The named ten-digit CNN configuration (README), on the real data, against PyTorch (optional, never a
dependency of the project).

    SIGN_DIGITS_DATA=/path/to/dataset python benchmarks/cnn.py [--epochs 3] [--repeats 3] [--threads 2]
                                                                [--batch-size N] [--fit-only] [--tricks]

1. ``CNN.fit`` against PyTorch on identical work: the same network, the same initial weights, the same epochs of
   the same (augmented) rows in the same batches (the configuration's batch size unless --batch-size is given),
   the same dropout masks, Adam with the same settings, and the same passes over the training rows: one before
   training and one after it (``fit``'s divergence rule), then one for the loss and accuracy compared. Same number
   of threads on both sides, one process, runs alternating; the ratio ours / PyTorch of each pair, and its range
   over the repeats.
2. The whole pipeline of the README's ``dvc exp run`` line in a copy of the project: cross-validated and test
   accuracy; then the train stage again, alone, as this process's only child: its wall time and peak resident
   memory (the child's own peak, from getrusage).

3. With --tricks (instead of 1 and 2): each speed trick of cnn.py against the plain textbook version of the same
   step: ``CNN.fit`` of the configuration with the one or the other, alternating (--repeats pairs of --epochs
   epochs), the same training bit for bit; then one epoch's training steps and scoring pass with the one and the
   other alternating call by call (steadier on a loaded machine), against a whole epoch's fit. cnn.py keeps a
   trick only if it saves more than 10 % of a fit.

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
from common import blas_kernel, copy_of_project, readme_command, readme_configuration, real_split, run  # noqa: E402
from threadpoolctl import threadpool_limits  # noqa: E402

from signdigits import cnn  # noqa: E402
from signdigits.cnn import BN_EPSILON, BN_MOMENTUM  # noqa: E402
from signdigits.layout import pooled_side  # noqa: E402
from signdigits.network import batches, standardization  # noqa: E402
from signdigits.training import build_model, training_config  # noqa: E402

CONFIGURATION = "dvc exp run -n ten-digits-cnn-clean "
MEASURE = (  # run the train stage as DVC does, as this process's only child; write its peak resident set (KiB)
    "import pathlib, resource, subprocess, sys; subprocess.run([sys.executable, 'stages/train.py'], check=True); "
    "pathlib.Path('{report}').write_text(str(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss))"
)


class TorchTwin:
    """The same network in PyTorch, started from our network's initial weights, trained on the same batches."""

    def __init__(self, net, params, torch):
        if params["optimizer"] != "adam" or params["activation"] != "relu":
            sys.exit("the PyTorch twin is Adam with relu: the README line must use them for identical work")
        if params["mirror_average"]:
            sys.exit("the PyTorch twin answers from the photo alone: the README line must set mirror_average false")
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
        layers += [torch.nn.Flatten(), torch.nn.Linear(net.dense.inputs, net.n_hidden), torch.nn.ReLU()]
        self.hidden = torch.nn.Sequential(*layers)  # up to the dense layer's output, where dropout applies
        self.output = torch.nn.Linear(net.n_hidden, net.n_outputs)
        self.model = torch.nn.Sequential(self.hidden, self.output)
        convs = [m for m in self.model.modules() if isinstance(m, torch.nn.Conv2d)]
        norms = [m for m in self.model.modules() if isinstance(m, torch.nn.BatchNorm2d)]
        dense, output = [m for m in self.model.modules() if isinstance(m, torch.nn.Linear)]
        with torch.no_grad():
            for i, (block, conv) in enumerate(zip(net.blocks, convs)):
                conv.weight.copy_(torch.from_numpy(net.params[block.W]))
                if block.norm:
                    norms[i].weight.copy_(torch.from_numpy(net.params[block.norm[0]]))
                    norms[i].bias.copy_(torch.from_numpy(net.params[block.b]))
                else:
                    conv.bias.copy_(torch.from_numpy(net.params[block.b]))
            # ours flattens (row, column, channel), PyTorch (channel, row, column)
            size = pooled_side(net.side, len(net.blocks))
            W = net.params[net.dense.W].reshape(size, size, channels, -1).transpose(3, 2, 0, 1)
            dense.weight.copy_(torch.from_numpy(W.reshape(net.n_hidden, -1).copy()))
            dense.bias.copy_(torch.from_numpy(net.params[net.dense.b]))
            output.weight.copy_(torch.from_numpy(net.params[net.output.W].T.copy()))
            output.bias.copy_(torch.from_numpy(net.params[net.output.b]))
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
        batches in the order of the generator, each with our dropout mask, Adam at the epoch's learning rate; then
        the pass over the training rows of our divergence rule, and the loss and accuracy over them."""
        torch, net, config = self.torch, self.net, training_config(params)
        mean, scale = standardization(X)
        y_all, X_plain = torch.from_numpy(y), self.images((X - mean) / scale)

        def scores():
            self.model.eval()  # batch normalisation: the running statistics, as our per-epoch figures
            with torch.no_grad():
                Z = torch.cat([self.model(X_plain[i : i + net.CHUNK]) for i in range(0, len(X), net.CHUNK)])
                return float(torch.nn.functional.cross_entropy(Z, y_all)), float((Z.argmax(1) == y_all).float().mean())

        scores()
        augment = None if config.augment is None else config.augment(X)
        for epoch in range(config.epochs):
            for group in self.optimizer.param_groups:
                group["lr"] = config.rate(epoch)
            X_epoch = X_plain if augment is None else self.images((augment(net.rng) - mean) / scale)
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
        scores()  # our fit's look at the training rows after the last epoch (the divergence rule)
        return scores()


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
        net.fit(X, y, training_config(params))
        return net._scores(net._views(X), y)  # the training rows' loss and accuracy, as prediction scores them

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


# --- the plain textbook versions of cnn.py's speed tricks (--tricks) ------------------------------------------------
def plain_max_pool(Z):
    """2 × 2 max-pooling as textbooks write it: the four elements of each window side by side, their argmax (the
    first maximum in row-major order, as cnn.max_pool), and the maximum it points at."""
    N, H, W, C = Z.shape
    H2, W2 = H // 2, W // 2
    windows = Z[:, : 2 * H2, : 2 * W2].reshape(N, H2, 2, W2, 2, C).transpose(0, 1, 3, 5, 2, 4).reshape(N, H2, W2, C, 4)
    winner = windows.argmax(axis=-1)
    return np.take_along_axis(windows, winner[..., None], axis=-1)[..., 0], (winner, Z.shape)


def plain_max_pool_backward(dM, route):
    """Each pooled gradient to its window's winner (a one-hot of the argmax), zeros elsewhere."""
    winner, shape = route
    N, H2, W2, C = dM.shape
    dwindows = (np.arange(4) == winner[..., None]) * dM[..., None]
    dZ = np.zeros(shape, dM.dtype)
    dZ[:, : 2 * H2, : 2 * W2] = (
        dwindows.reshape(N, H2, W2, C, 2, 2).transpose(0, 1, 4, 2, 5, 3).reshape(N, 2 * H2, 2 * W2, C)
    )
    return dZ


TRICKS = {  # trick → the module functions of cnn.py that the plain version replaces
    "pair-max pooling, in-place backward": {"max_pool": plain_max_pool, "max_pool_backward": plain_max_pool_backward},
}


def compare_tricks(params, classes, epochs, repeats, threads):
    """For each trick, (trick, [(with it, with the plain version)]) as soon as it is measured, each a pair (wall
    seconds, CPU seconds of this process: on a machine others load, the CPU time is the steadier measure):
    CNN.fit of ``epochs`` epochs each, the two alternating (which goes first alternates too), after one warm-up
    fit; each pair must train the same."""
    X, _, y, _ = real_split(classes=classes)
    config = training_config(params | {"epochs": epochs})

    def fit(replacements):
        saved = {name: getattr(cnn, name) for name in replacements}
        for name, function in replacements.items():
            setattr(cnn, name, function)
        try:
            net = build_model(params, X.shape[1], len(classes))
            start, cpu = time.perf_counter(), time.process_time()
            history = net.fit(X, y, config)
            seconds = (time.perf_counter() - start, time.process_time() - cpu)
            return seconds, history[-1]["batch_loss"]
        finally:
            for name, function in saved.items():
                setattr(cnn, name, function)

    with threadpool_limits(limits=threads, user_api="blas"):
        fit({})  # warm-up
        for trick, replacements in TRICKS.items():
            pairs = []
            for repeat in range(repeats):
                if repeat % 2 == 0:
                    (with_trick, loss), (plain, plain_loss) = fit({}), fit(replacements)
                else:
                    (plain, plain_loss), (with_trick, loss) = fit(replacements), fit({})
                if loss != plain_loss:
                    sys.exit(f"{trick}: the plain version trains differently ({plain_loss} against {loss})")
                pairs.append((with_trick, plain))
            yield trick, pairs


def compare_tricks_by_batch(params, classes, threads):
    """For each trick, (trick, {with it: (wall, CPU), plain: (wall, CPU)}, fit) as soon as it is measured: seconds
    of one epoch's training steps (``gradients`` of each batch) and scoring pass (``logits`` of each chunk), the
    trick and its plain version alternating call by call, so that a load that comes and goes weighs on both alike;
    ``fit`` is (wall, CPU) of a whole one-epoch fit with every trick, the share's denominator."""
    X, _, y, _ = real_split(classes=classes)
    net = build_model(params, X.shape[1], len(classes))

    def clock():
        return np.array([time.perf_counter(), time.process_time()])

    with threadpool_limits(limits=threads, user_api="blas"):
        start = clock()
        net.fit(X, y, training_config(params | {"epochs": 1}))
        fit = clock() - start
        order = np.random.default_rng(0).permutation(len(X))
        calls = [(net.gradients, (X[b], y[b])) for b in batches(order, params["batch_size"])]
        calls += [(net.logits, (X[i : i + net.CHUNK],)) for i in range(0, len(X), net.CHUNK)]
        for trick, replacements in TRICKS.items():
            totals = {"with it": np.zeros(2), "plain": np.zeros(2)}
            for i, (function, arguments) in enumerate(calls):
                for name in ("with it", "plain") if i % 2 == 0 else ("plain", "with it"):
                    saved = {attribute: getattr(cnn, attribute) for attribute in replacements}
                    if name == "plain":
                        for attribute, replacement in replacements.items():
                            setattr(cnn, attribute, replacement)
                    start = clock()
                    function(*arguments)
                    totals[name] += clock() - start
                    for attribute, original in saved.items():
                        setattr(cnn, attribute, original)
            yield trick, totals, fit


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
    parser.add_argument("--tricks", action="store_true", help="only cnn.py's speed tricks against plain versions")
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
    if options.tricks:
        if options.repeats:
            print(
                f"CNN.fit, {options.epochs} epochs, batch {batch_size}, {options.threads} threads; each speed trick "
                "of cnn.py against its plain version, alternating:"
            )
        for trick, pairs in compare_tricks(
            params | {"batch_size": batch_size}, classes, options.epochs, options.repeats, options.threads
        ):
            if not pairs:  # --repeats 0: only the call-by-call comparison
                continue
            print(f"  {trick}, seconds with / without it:")
            for measure, index in (("wall", 0), ("CPU", 1)):
                saved = [1 - with_trick[index] / plain[index] for with_trick, plain in pairs]
                times = "  ".join(f"{with_trick[index]:.1f}/{plain[index]:.1f}" for with_trick, plain in pairs)
                print(
                    f"    {measure:4} {times}   saves {min(saved):.0%} to {max(saved):.0%} of the plain fit "
                    f"(median {np.median(saved):.0%}; kept if > 10 %)",
                    flush=True,
                )
        print("each trick and its plain version alternating call by call over one epoch's training steps and scoring:")
        for trick, totals, fit in compare_tricks_by_batch(
            params | {"batch_size": batch_size}, classes, options.threads
        ):
            (wall, cpu), (plain_wall, plain_cpu) = totals["with it"], totals["plain"]
            print(
                f"  {trick}: wall {wall:.1f}/{plain_wall:.1f} s, CPU {cpu:.1f}/{plain_cpu:.1f} s with / without; "
                f"saves {(plain_wall - wall) / wall:.1%} (wall) and {(plain_cpu - cpu) / cpu:.1%} (CPU) of the "
                f"steps and scoring, which are most of a fit (a one-epoch fit, measured once: {fit[0]:.1f} s wall, "
                f"{fit[1]:.1f} s CPU; kept if > 10 %)",
                flush=True,
            )
        return
    compared = compare_fit(
        params | {"batch_size": batch_size}, classes, options.epochs, options.repeats, options.threads
    )
    if compared is None:
        print("PyTorch            not installed: no reference time (pip install torch to compare)")
    else:
        pairs, scores, version = compared
        ratios = [ours / theirs for ours, theirs in pairs]
        print(
            f"fit, {options.epochs} epochs, batch {batch_size}, {options.threads} threads, each with "
            "passes over the training rows before and after; "
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
