"""The model file: one .npz (a zip of .npy arrays, never a pickle) holding a network's params, its running
statistics if it has any (batch normalisation), its input scaling if it standardizes, the arrays of its refusal
score if it has any (``ood_*``: refusal.py), and a JSON ``header`` = {"architecture": {"format": ..., constructor
arguments}, "metadata": {...}, "calibration": {"temperature": T, "refusal": {"score", "threshold"} or null}}.
This is the one module that knows every network class. A file from before calibration has no "calibration":
it loads with temperature 1 and no refusal, and ``net.calibrated`` is False.

Loading trusts nothing in the file. In order, before the network is built (building allocates its params):
the file is a zip of .npy members; the header is JSON of the right types; the architecture's format is known;
each array's shape and dtype, read from its .npy header (a few bytes), are exactly those the architecture
implies. Only then are the arrays read (their size is now known to match) and checked to be finite (and the
running variances ≥ 0).

Memory is bounded before anything is inflated, from the sizes the zip's directory declares: the file must be a
regular file (not a FIFO or a device); each member's declared size must be that of its .npy header and shape;
the arrays may hold at most MODEL_LIMIT bytes in all; compressed members (np.savez stores them uncompressed, so
only a hand-made file has any) may inflate to at most INFLATED_LIMIT in all; and the stored bytes must fit in
the file. A small file can therefore never make the loader allocate more than INFLATED_LIMIT beyond its own size.
"""

import io
import json
import math
import zipfile
from pathlib import Path

import numpy as np

from signdigits.choices import ACTIVATIONS, REFUSAL_SCORES
from signdigits.cnn import CNN
from signdigits.errors import UsageError
from signdigits.files import NotAFileError, open_regular, write_outputs
from signdigits.layout import shapes
from signdigits.mlp import MLP

NETWORKS = {kind.FORMAT: kind for kind in (MLP, CNN)}
SCALING = ("input_mean", "input_scale")
HEADER_LIMIT = 1 << 20  # bytes: a header is a few hundred; anything past this is not a model file
# The arrays of a model file, in all: the largest network params.yaml lets train (its 4 GiB memory estimate holds
# the weights at least twice) fits.
MODEL_LIMIT = 2 * 2**30
# What compressed members may inflate to, in all: a model np.savez_compressed made by hand; a 2 MB deflated
# member of zeros would otherwise inflate to gigabytes.
INFLATED_LIMIT = 64 * 2**20
FIX = "retrain it with `dvc repro train`"
NPY_HEADERS = {(1, 0): np.lib.format.read_array_header_1_0, (2, 0): np.lib.format.read_array_header_2_0}

# The type of each constructor argument a header may give (anything else is refused before any allocation).
ARGUMENT_TYPES = {
    "n_inputs": "count",
    "n_hidden": "count",
    "n_outputs": "count",
    "kernel_size": "count",
    "channels": "counts",
    "seed": "integer",
    "activation": "activation",
    "standardize": "bool",
    "batch_norm": "bool",
    "photo_norm": "bool",
    "other_output": "bool",
    "mirror_average": "bool",
}


def model_bytes(net) -> bytes:
    """The network as .npz bytes: its params, running statistics, input scaling and refusal arrays if any, and
    the JSON header."""
    architecture = {"format": net.FORMAT, **net.architecture()}
    calibration = {"temperature": net.temperature, "refusal": net.refusal}
    header = json.dumps({"architecture": architecture, "metadata": net.metadata, "calibration": calibration})
    scaling = {}
    if net.input_mean is not None:
        scaling = {"input_mean": net.input_mean, "input_scale": np.asarray(net.input_scale)}
    ood = {f"ood_{name}": value for name, value in net.ood_stats.items()}
    buffer = io.BytesIO()
    np.savez(buffer, header=np.array(header), **net.params, **net.running, **scaling, **ood)
    return buffer.getvalue()


def save_model(net, path):
    write_outputs({path: model_bytes(net)})


def _valid_argument(name, value) -> bool:
    kind = ARGUMENT_TYPES.get(name)
    is_integer = isinstance(value, int) and not isinstance(value, bool)  # JSON true is not a count
    if kind == "count":
        return is_integer and value >= 1
    if kind == "counts":
        return isinstance(value, list) and bool(value) and all(_valid_argument("n_hidden", v) for v in value)
    if kind == "integer":
        return is_integer
    if kind == "activation":
        return isinstance(value, str) and value in ACTIVATIONS
    if kind == "bool":
        return isinstance(value, bool)
    return False  # an argument no network takes


def ood_shapes(spec, refusal) -> dict:
    """{name: shape} of the refusal score's arrays: the Mahalanobis class means (K, n_hidden) and precision
    (n_hidden, n_hidden), K the classes (2 for one sigmoid output); none for the other scores."""
    if refusal is None or refusal["score"] != "mahalanobis":
        return {}
    classes, hidden = max(2, spec["n_outputs"]), spec["n_hidden"]
    return {"ood_means": (classes, hidden), "ood_precision": (hidden, hidden)}


def _calibration(header, path):
    """(temperature, refusal, calibrated) from the header's "calibration", each checked; (1, None, False) when the
    file has none (trained before calibration)."""
    if "calibration" not in header:
        return 1.0, None, False
    calibration = header["calibration"]
    problem = None
    if not isinstance(calibration, dict) or set(calibration) != {"temperature", "refusal"}:
        problem = "calibration is not a mapping of temperature and refusal"
    else:
        T, refusal = calibration["temperature"], calibration["refusal"]
        if isinstance(T, bool) or not isinstance(T, int | float) or not (math.isfinite(T) and 0.01 <= T <= 100):
            problem = f"calibration.temperature {T!r} is not a number in [0.01, 100]"
        elif refusal is not None and not (
            isinstance(refusal, dict)
            and set(refusal) == {"score", "threshold"}
            and refusal["score"] in REFUSAL_SCORES
            and isinstance(refusal["threshold"], int | float)
            and not isinstance(refusal["threshold"], bool)
            and math.isfinite(refusal["threshold"])
        ):
            problem = f"calibration.refusal {refusal!r} is not a score of {', '.join(REFUSAL_SCORES)} and a threshold"
    if problem:
        raise UsageError(f"{path}: {problem}; {FIX}")
    return float(T), refusal, True


def _architecture(header_text, path):
    """(network class, constructor arguments, metadata, calibration) from the header, every argument of the
    right type."""
    try:
        header = json.loads(header_text)
        spec = dict(header["architecture"])
        kind = NETWORKS[spec.pop("format")]
        metadata = header.get("metadata", {})
    except Exception as error:
        raise UsageError(f"{path} is not a signdigits model (header: {type(error).__name__} {error}); {FIX}") from None
    for name, value in spec.items():
        if not _valid_argument(name, value):
            raise UsageError(f"{path}: architecture.{name} = {value!r} is not valid in a model file header; {FIX}")
    if not isinstance(metadata, dict):
        raise UsageError(f"{path}: the header's metadata is not a mapping; {FIX}")
    return kind, spec, metadata, _calibration(header, path)


def _check_declared_sizes(archive, path):
    """The caps of the module's docstring, from the zip's directory alone (nothing inflated)."""
    members = archive.infolist()
    declared = sum(info.file_size for info in members)
    inflated = sum(info.file_size for info in members if info.compress_type != zipfile.ZIP_STORED)
    stored = sum(info.compress_size for info in members)
    if declared > MODEL_LIMIT:
        raise UsageError(
            f"{path} declares {declared / 2**20:,.0f} MiB of arrays, more than the limit of "
            f"{MODEL_LIMIT // 2**30} GiB for a model file; {FIX}"
        )
    if inflated > INFLATED_LIMIT:
        raise UsageError(
            f"{path} holds compressed arrays of {inflated / 2**20:,.0f} MiB, more than the limit of "
            f"{INFLATED_LIMIT // 2**20} MiB (model files store their arrays uncompressed); {FIX}"
        )
    if stored > Path(path).stat().st_size:
        raise UsageError(f"{path} declares more bytes than it holds (truncated or forged); {FIX}")


def _array_headers(archive, path):
    """{name: (shape, dtype)} of every .npy member, read from the members' .npy headers only; each member's
    declared size must be the one its header implies."""
    _check_declared_sizes(archive, path)
    found = {}
    for info in archive.infolist():
        if not info.filename.endswith(".npy"):
            raise UsageError(f"{path} holds {info.filename}, which is not an array; {FIX}")
        with archive.open(info) as member:
            try:
                read_header = NPY_HEADERS[np.lib.format.read_magic(member)]
                shape, _, dtype = read_header(member)
                implied = member.tell() + math.prod(shape) * dtype.itemsize
            except Exception as error:
                raise UsageError(f"{path}: {info.filename} is not a .npy array ({error}); {FIX}") from None
        if implied != info.file_size and not dtype.hasobject:  # an object array (a pickle) is refused below
            raise UsageError(
                f"{path}: {info.filename} declares {info.file_size:,} bytes, but its shape {shape} ({dtype}) "
                f"needs {implied:,}; {FIX}"
            )
        found[info.filename[: -len(".npy")]] = (shape, dtype)
    return found


def _read_array(archive, name):
    with archive.open(f"{name}.npy") as member:
        return np.lib.format.read_array(member, allow_pickle=False)


def load_model(path):
    """The network saved in ``path``; a missing, corrupt, foreign or inconsistent file is a one-line UsageError
    that says what is wrong."""
    path = Path(path)
    start = b""
    try:
        with open_regular(path) as file:  # a FIFO or /dev/zero would block or never end ZipFile's reading
            start = file.read(6)
        archive = zipfile.ZipFile(path)
    except FileNotFoundError:
        raise UsageError(f"model file {path} not found; run from the project root, give --model, or {FIX}") from None
    except (IsADirectoryError, NotAFileError) as error:
        raise UsageError(f"model file {path} {error.strerror}; give the model file (.npz)") from None
    except (OSError, zipfile.BadZipFile) as error:
        what = "a single .npy array" if start == b"\x93NUMPY" else "not a readable model file"
        raise UsageError(f"{path} is {what}, not a model (.npz zip of arrays) ({error}); {FIX}") from None
    with archive:
        try:
            arrays = _array_headers(archive, path)
        except (zipfile.BadZipFile, OSError, EOFError) as error:
            raise UsageError(f"{path} is not a readable model file ({error}); {FIX}") from None
        shape, dtype = arrays.pop("header", ((None,), np.dtype("O")))
        if shape == () and dtype.kind == "U" and dtype.itemsize > HEADER_LIMIT:
            raise UsageError(
                f"{path}: its header is {dtype.itemsize / 2**20:,.1f} MiB, more than the limit of "
                f"{HEADER_LIMIT // 2**20} MiB (a model's is a few hundred bytes); it is not a signdigits model; {FIX}"
            )
        if shape != () or dtype.kind != "U":
            raise UsageError(f"{path} has no JSON header (a text array); it is not a signdigits model; {FIX}")
        header_text = str(_read_array(archive, "header"))
        kind, spec, metadata, (temperature, refusal, calibrated) = _architecture(header_text, path)
        try:
            expected = shapes(kind.MODEL, spec) | ood_shapes(spec, refusal)
            if spec["standardize"]:
                expected |= {"input_mean": (spec["n_inputs"],), "input_scale": ()}
        except KeyError as error:
            raise UsageError(f"{path}: the header's architecture has no {error.args[0]}; {FIX}") from None
        if set(arrays) != set(expected):
            raise UsageError(f"{path} holds arrays {sorted(arrays)}, expected {sorted(expected)}; {FIX}")
        for name, (shape, dtype) in arrays.items():
            if shape != expected[name] or dtype.kind != "f":
                raise UsageError(
                    f"{path}: {name} has shape {shape} ({dtype}), but the header's architecture needs "
                    f"{expected[name]} of floats; {FIX}"
                )
        try:
            values = {name: _read_array(archive, name) for name in arrays}
        except (ValueError, OSError, EOFError, zipfile.BadZipFile) as error:
            raise UsageError(f"{path} is not a readable model file ({error}); {FIX}") from None
    problems = [
        f"{name} holds values that are not finite floats" for name, v in values.items() if not np.isfinite(v).all()
    ]
    problems += [
        f"{name} holds negative variances" for name, v in values.items() if "running_var" in name and (v < 0).any()
    ]
    if spec["standardize"] and not values["input_scale"] > 0:
        problems.append("input_scale is not > 0")
    if problems:  # the first is reported
        raise UsageError(f"{path}: {problems[0]}; {FIX}")
    try:
        net = kind(**spec)  # the sizes are checked: this allocates no more than the file held
    except (ValueError, TypeError) as error:
        raise UsageError(f"{path}: its header's architecture is impossible ({error}); {FIX}") from None
    net.dtype = values[next(iter(net.params))].dtype
    net.params = {name: values[name] for name in net.params}
    net.running = {name: values[name] for name in net.running}
    if net.standardize:
        net.input_mean, net.input_scale = values["input_mean"], values["input_scale"][()]
    net.temperature, net.refusal, net.calibrated = temperature, refusal, calibrated
    net.ood_stats = {name.removeprefix("ood_"): values[name] for name in values if name.startswith("ood_")}
    net.metadata = metadata
    return net
