"""The named ten-digit CNN configuration (README), on the real data: accuracy, training time and peak memory
of the train stage, and PyTorch's time for the same architecture and training if torch is installed (it is
optional, never a dependency of the project).

    SIGN_DIGITS_DATA=/path/to/dataset python benchmarks/cnn.py

Goals (issue 6): test accuracy ≥ 0.97; training ≤ 3 minutes on 2 cores; train stage peak memory ≤ 1 GB.
"""

import json
import shlex
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import yaml
from common import ROOT, copy_of_project, run

CONFIGURATION = "dvc exp run -n ten-digits-cnn"
MEASURE = (  # run the train stage as DVC does, as this process's only child; write its peak resident set (KiB)
    "import pathlib, resource, subprocess, sys; subprocess.run([sys.executable, 'stages/train.py'], check=True); "
    "pathlib.Path('{report}').write_text(str(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss))"
)


def readme_command():
    for line in (ROOT / "README.md").read_text().splitlines():
        if line.startswith(CONFIGURATION):
            return shlex.split(line)
    sys.exit(f"README.md has no line starting with {CONFIGURATION!r}")


def torch_time(project: Path, params: dict):
    """Seconds and test accuracy of the same network and training in PyTorch, or None without torch."""
    try:
        import torch
    except ImportError:
        return None
    from signdigits.augment import shift_images

    torch.manual_seed(params["seed"])
    torch.set_num_threads(2)
    split = {name: np.load(project / f"data/split/{name}.npy") for name in ("X_train", "y_train", "X_test", "y_test")}
    mean, scale = split["X_train"].mean(axis=0), split["X_train"].std()
    side, k = int(np.sqrt(split["X_train"].shape[1])), params["kernel_size"]
    layers, channels, size = [], 1, side
    for out in params["conv_channels"]:
        layers += [torch.nn.Conv2d(channels, out, k, padding=k // 2), torch.nn.ReLU(), torch.nn.MaxPool2d(2)]
        channels, size = out, size // 2
    classes = int(split["y_train"].max()) + 1
    layers += [
        torch.nn.Flatten(),
        torch.nn.Linear(channels * size * size, params["hidden_units"]),
        torch.nn.ReLU(),
        torch.nn.Linear(params["hidden_units"], classes),
    ]
    model = torch.nn.Sequential(*layers)
    weights = [p for name, p in model.named_parameters() if name.endswith("weight")]
    biases = [p for name, p in model.named_parameters() if name.endswith("bias")]
    optimizer = torch.optim.Adam(
        [{"params": weights, "weight_decay": params["weight_decay"]}, {"params": biases, "weight_decay": 0.0}],
        lr=params["learning_rate"],
    )
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda e: 1 / (1 + params["lr_decay"] * e))
    rng = np.random.default_rng(params["seed"])

    def as_tensor(X):
        return torch.from_numpy(((X - mean) / scale).astype(np.float32).reshape(-1, 1, side, side))

    y_train = torch.from_numpy(split["y_train"])
    start = time.perf_counter()
    for _ in range(params["epochs"]):
        X_epoch = as_tensor(shift_images(split["X_train"], params["augment_shift"], rng))
        order = torch.from_numpy(rng.permutation(len(X_epoch)))
        model.train()
        for first in range(0, len(order), params["batch_size"]):
            batch = order[first : first + params["batch_size"]]
            optimizer.zero_grad()
            torch.nn.functional.cross_entropy(model(X_epoch[batch]), y_train[batch]).backward()
            optimizer.step()
        schedule.step()
    seconds = time.perf_counter() - start
    with torch.no_grad():
        predicted = model(as_tensor(split["X_test"])).argmax(dim=1).numpy()
    return seconds, float(np.mean(predicted == split["y_test"]))


def main():
    command = readme_command()
    with tempfile.TemporaryDirectory() as folder:
        project = copy_of_project(Path(folder))
        run(project, sys.executable, "-m", *command)  # dvc exp run … (every stage)
        accuracy = json.loads((project / "reports/metrics.json").read_text())
        model = (project / "models/model.npz").read_bytes()
        # The train stage again, alone, to time it and read its own peak resident memory.
        report = project / "peak_rss_kib"
        seconds = run(project, sys.executable, "-c", MEASURE.format(report=report))
        peak_mib = int(report.read_text()) / 1024
        same = (project / "models/model.npz").read_bytes() == model
        params = yaml.safe_load((project / "params.yaml").read_text())["train"]
        reference = torch_time(project, params)
    print(
        f"ten-digit CNN {params['conv_channels']}, kernel {params['kernel_size']}, dense {params['hidden_units']}, "
        f"{params['epochs']} epochs, batch {params['batch_size']}, {params['optimizer']}"
    )
    print(
        f"test accuracy      {accuracy['test_accuracy']:.4f} (95 % {accuracy['test_accuracy_low']:.3f}–"
        f"{accuracy['test_accuracy_high']:.3f}; goal ≥ 0.97)"
    )
    print(f"train stage        {seconds:.1f} s (goal ≤ 180 s), peak memory {peak_mib:.0f} MiB (goal ≤ 1024 MiB)")
    print(f"rerun reproduces the model bit for bit: {same}")
    if reference is None:
        print("PyTorch            not installed: no reference time (pip install torch to compare)")
    else:
        torch_seconds, torch_accuracy = reference
        print(
            f"PyTorch, same net  {torch_seconds:.1f} s of training, test accuracy {torch_accuracy:.4f}; "
            f"ours / PyTorch = {seconds / torch_seconds:.2f}× (ours includes start-up and per-epoch evaluation)"
        )


if __name__ == "__main__":
    main()
