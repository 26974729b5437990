"""params.yaml: the schema of every section, and the checked loader.

The whole file is checked whenever any part of it is read, and the ``source`` stage, which runs first on every
`dvc repro`, reads it: a mistake anywhere stops the run before DVC removes any stage's outputs. A missing or
unknown section or key (a typo such as ``test_sise`` or ``trian:``), a value of the wrong type, out of range or
not finite, and a combination the pipeline cannot run (a CNN whose pooling shrinks the image to nothing, a
network too large for memory) is a UsageError naming the key, the value and what is allowed.

The file is read exactly as DVC reads it (ruamel.yaml's safe loader, YAML 1.2), so the stages train what
dvc.lock, `dvc params diff` and `dvc exp show` record: ``010`` is 10 (YAML 1.1 read 8), ``1:40`` and ``off`` are
strings (1.1 read 100 and false), ``1e-5`` is a number. Before any object is built, the file must be a regular
file of at most PARAMS_LIMIT bytes, and its YAML events are checked: no anchor or alias (a 1 KB "billion laughs"
would expand to gigabytes), nesting at most MAX_DEPTH deep.
"""

import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.error import YAMLError
from ruamel.yaml.events import AliasEvent, CollectionEndEvent, CollectionStartEvent, NodeEvent

from signdigits.choices import ACTIVATIONS, DIGITS, MODELS, OPTIMIZERS, PERTURBATIONS, REFUSAL_SCORES
from signdigits.errors import UsageError
from signdigits.files import NotAFileError, open_regular, read_capped
from signdigits.layout import CHUNK, architecture, pooled_side, row_floats, shapes

# A configuration whose estimated training memory exceeds this is refused before it runs (see training_memory).
MEMORY_LIMIT = 4 * 2**30
# params.yaml is 2.5 KB; anything past this is not a parameter file (and parsing it would cost memory).
PARAMS_LIMIT = 64 * 2**10
# Sections hold keys, keys hold lists of numbers: 3 levels. Deeper nesting is refused before it is built
# (10,000 nested "[" would exhaust the recursion of any YAML composer).
MAX_DEPTH = 8
# The largest seed: numpy's legacy seeding and scikit-learn's random_state take 0 … 2**32 − 1.
MAX_SEED = 2**32 - 1


class UnsafeYAML(Exception):
    """What the YAML events show before any object is built: an anchor, an alias, or nesting too deep."""


def _check_events(text: str) -> None:
    depth = 0
    for event in YAML(typ="safe").parse(text):
        if isinstance(event, AliasEvent):
            raise UnsafeYAML(f"line {event.start_mark.line + 1} refers to anchor &{event.anchor} (*{event.anchor})")
        if isinstance(event, NodeEvent) and event.anchor is not None:
            raise UnsafeYAML(f"line {event.start_mark.line + 1} defines anchor &{event.anchor}")
        if isinstance(event, CollectionStartEvent):
            depth += 1
            if depth > MAX_DEPTH:
                raise UnsafeYAML(f"line {event.start_mark.line + 1} nests more than {MAX_DEPTH} levels deep")
        elif isinstance(event, CollectionEndEvent):
            depth -= 1


def read_yaml(text: str):
    """A YAML document as DVC reads params.yaml (dvc.utils.serialize.parse_yaml: ruamel.yaml, typ="safe", YAML
    1.2), after its events are checked (UnsafeYAML: no anchor or alias, nesting at most MAX_DEPTH deep)."""
    _check_events(text)
    return YAML(typ="safe").load(text)


@dataclass(frozen=True)
class Rule:
    """What one key accepts: a check that returns the (normalised) value or None, and its description."""

    allowed: str
    convert: Callable[[Any], Any]


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)  # YAML's true/false are ints to Python


def integer(low, high=None):
    def convert(value):
        return value if _is_int(value) and value >= low and (high is None or value <= high) else None

    upper = f" and ≤ {high}" if high is not None else ""
    return Rule(f"an integer ≥ {low}{upper}", convert)


def number(low, high=None, *, low_open=False, high_open=False):
    def convert(value):
        if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
            value = float(value)
            above = value > low if low_open else value >= low
            below = high is None or (value < high if high_open else value <= high)
            if above and below:
                return value
        return None

    left = "(" if low_open else "["
    right = ")" if high_open else "]"
    span = f"{left}{low}, {high}{right}" if high is not None else f"{'>' if low_open else '≥'} {low}"
    return Rule(f"a number in {span}" if high is not None else f"a number {span}", convert)


def channel_list():
    def convert(value):
        ok = isinstance(value, list) and 1 <= len(value) <= 4
        ok = ok and all(_is_int(c) and 1 <= c <= 512 for c in value)
        return value if ok else None

    return Rule("a list of 1 to 4 channel counts, each an integer in [1, 512], e.g. [16, 32]", convert)


def odd_integer(low, high):
    def convert(value):
        ok = _is_int(value) and low <= value <= high and value % 2 == 1
        return value if ok else None

    return Rule(f"an odd integer in [{low}, {high}]", convert)


def family_list():
    def convert(value):
        ok = isinstance(value, list) and all(isinstance(f, str) and f in PERTURBATIONS for f in value)
        return value if ok and len(set(value)) == len(value) else None

    return Rule("a list of distinct perturbation families from " + ", ".join(PERTURBATIONS) + " (or [])", convert)


def choice(*options):
    return Rule("one of " + ", ".join(repr(o) for o in options), lambda v: v if v in options else None)


def boolean():
    return Rule("true or false", lambda v: v if isinstance(v, bool) else None)


def text():
    return Rule("a non-empty string", lambda v: v if isinstance(v, str) and v.strip() else None)


def digit_classes():
    """Two or more distinct digits, as strings '0'…'9' (bare integers 0…9 are accepted and quoted)."""

    def convert(value):
        if not isinstance(value, list):
            return None
        names = []
        for item in value:
            if _is_int(item):
                item = str(item)
            if item not in DIGITS:
                return None
            names.append(item)
        return names

    return Rule("a list of two or more distinct digits from '0' … '9', e.g. [\"0\", \"5\"]", convert)


def source_paths():
    def convert(value):
        ok = isinstance(value, list) and all(isinstance(path, str) and path.strip() for path in value)
        return value if ok else None

    return Rule("a list of photo paths as reports/label_issues.csv names them, e.g. [Dataset/7/IMG_5874.JPG]", convert)


def relabel_mapping():
    """Photo path → digit; the digits are checked by ``_check_filter``, which names the entry."""

    def convert(value):
        if not isinstance(value, dict) or not all(isinstance(path, str) and path.strip() for path in value):
            return None
        return {path: str(digit) if _is_int(digit) else digit for path, digit in value.items()}

    return Rule("a mapping of photo paths to digits, e.g. {Dataset/7/IMG_5874.JPG: '1'}, or {}", convert)


SCHEMA = {
    "ingest": {"source": text(), "image_size": integer(8, 512)},
    "filter": {"classes": digit_classes(), "exclude": source_paths(), "relabel": relabel_mapping()},
    "split": {
        "test_size": number(0, 1, low_open=True, high_open=True),
        "seed": integer(0, MAX_SEED),
        "folds": integer(0, 100),  # 0 or 1: cross-validation off
    },
    "train": {
        "model": choice(*MODELS),
        "conv_channels": channel_list(),
        "kernel_size": odd_integer(1, 9),
        "hidden_units": integer(1, 65536),
        "standardize": boolean(),
        "batch_norm": boolean(),
        "augment_shift": integer(0, 8),
        "augment_rotate": number(0, 180),
        "augment_zoom": number(0, 0.5),
        "augment_mirror": boolean(),
        "augment_background": boolean(),
        "augment_busy_background": number(0, 1),
        "augment_perturb": family_list(),
        "augment_severity": integer(1, 5),
        "photo_norm": boolean(),
        "mirror_average": boolean(),
        "outlier_exposure": number(0, 1),
        "natural_images": number(0, 1),
        "other_hands": number(0, 4),
        "dropout": number(0, 1, high_open=True),
        "activation": choice(*ACTIVATIONS),
        "optimizer": choice(*OPTIMIZERS),
        "learning_rate": number(0, low_open=True),
        "momentum": number(0, 1, high_open=True),
        "weight_decay": number(0),
        "lr_decay": number(0),
        "epochs": integer(1, 100000),
        "batch_size": integer(1),
        "seed": integer(0, MAX_SEED),
    },
    "refusal": {
        "score": choice(*REFUSAL_SCORES),
        "max_refused": number(0, 0.5),
    },
}


def _refuse(section, key, raw, rule):
    value = f"{section}.{key} = {raw!r}"
    if isinstance(raw, float) and not math.isfinite(raw):
        raise UsageError(f"params.yaml: {value} is not a finite number; expected {rule.allowed}")
    raise UsageError(f"params.yaml: {value} is not allowed; expected {rule.allowed}")


def check_section(section: str, values: Any) -> dict:
    """Check one section's values against SCHEMA; return them normalised."""
    rules = SCHEMA[section]
    if not isinstance(values, dict):
        raise UsageError(f"params.yaml: section '{section}' must be a mapping of {', '.join(rules)}")
    unknown = sorted(set(values) - set(rules), key=str)
    if unknown:
        raise UsageError(
            f"params.yaml: unknown key {section}.{unknown[0]}; the keys of '{section}' are {', '.join(rules)}"
        )
    checked = {}
    for key, rule in rules.items():
        if key not in values:
            raise UsageError(f"params.yaml: missing key {section}.{key}; expected {rule.allowed}")
        value = rule.convert(values[key])
        if value is None:
            _refuse(section, key, values[key], rule)
        checked[key] = value
    if section == "filter":
        _check_filter(checked, values)
    return checked


def _check_filter(checked: dict, values: dict) -> None:
    """Checks within section filter: classes distinct and at least two; each excluded photo listed once; each
    relabelled photo given a digit; no photo both excluded and relabelled. (Whether a path names a photo of the
    data is checked by stage filter, which reads the data.)"""
    if len(set(checked["classes"])) != len(checked["classes"]):
        raise UsageError(f"params.yaml: filter.classes = {values['classes']!r} lists a class twice; list each once")
    if len(checked["classes"]) < 2:
        raise UsageError(
            f"params.yaml: filter.classes = {values['classes']!r} has fewer than two classes; list two or more"
        )
    twice = [path for i, path in enumerate(checked["exclude"]) if path in checked["exclude"][:i]]
    if twice:
        raise UsageError(f"params.yaml: filter.exclude lists {twice[0]!r} twice; list each photo once")
    for path, digit in checked["relabel"].items():
        if digit not in DIGITS:
            raise UsageError(
                f"params.yaml: filter.relabel maps {path!r} to {values['relabel'][path]!r}, which is not a class; "
                "expected a digit '0' … '9'"
            )
    both = [path for path in checked["exclude"] if path in checked["relabel"]]
    if both:
        raise UsageError(
            f"params.yaml: {both[0]!r} is in both filter.exclude and filter.relabel; keep it in one of them"
        )


def training_memory(train: dict, image_size: int, n_classes: int = 10) -> int:
    """An estimate in bytes of what training and scoring the configured network holds at once, in float32: its
    arrays (layout.shapes), their gradients and the optimizer's state (Adam: two arrays per weight, momentum: one),
    and the activations (layout.row_floats) of the larger of a batch and a forward pass's chunk of rows
    (layout.CHUNK)."""
    model, arguments = train["model"], architecture(train, image_size**2, n_classes)
    weights = sum(math.prod(shape) for shape in shapes(model, arguments).values())
    rows = max(CHUNK[model], train["batch_size"])
    copies = 2 + (2 if train["optimizer"] == "adam" else 1 if train["momentum"] else 0)
    return 4 * (weights * copies + rows * row_floats(model, arguments))


def _check_combinations(params: dict) -> None:
    """Checks across keys: options that need another, the CNN's pooling must leave a pixel, memory must be sane."""
    train, image_size = params["train"], params["ingest"]["image_size"]
    if train["batch_norm"] and train["model"] != "cnn":
        raise UsageError(
            f"params.yaml: train.batch_norm = true needs train.model = cnn (it normalizes the conv blocks; the "
            f"{train['model']} has none); set train.batch_norm: false"
        )
    if train["augment_busy_background"] and not train["augment_background"]:
        raise UsageError(
            f"params.yaml: train.augment_busy_background = {train['augment_busy_background']} needs "
            "train.augment_background = true (it is a share of the photos given another background); set "
            "train.augment_background: true or train.augment_busy_background: 0"
        )
    if train["natural_images"] and not (train["outlier_exposure"] or train["augment_busy_background"]):
        raise UsageError(
            f"params.yaml: train.natural_images = {train['natural_images']} needs train.outlier_exposure > 0 or "
            "train.augment_busy_background > 0 (it is a share of the synthetic non-hands they draw); set one of "
            "them or train.natural_images: 0"
        )
    if train["model"] == "cnn":
        blocks = len(train["conv_channels"])
        if pooled_side(image_size, blocks) < 1:
            raise UsageError(
                f"params.yaml: train.conv_channels = {train['conv_channels']} has {blocks} conv blocks, whose 2×2 "
                f"poolings shrink ingest.image_size = {image_size} pixels to nothing; use at most "
                f"{image_size.bit_length() - 1} blocks or a larger image_size"
            )
    needed = training_memory(train, image_size, len(params["filter"]["classes"]))
    if needed > MEMORY_LIMIT:
        sizes = f"ingest.image_size = {image_size} and train.hidden_units = {train['hidden_units']}"
        if train["model"] == "cnn":
            sizes += f", train.conv_channels = {train['conv_channels']}"
        raise UsageError(
            f"params.yaml: {sizes} need about {needed / 2**30:.0f} GiB to train (limit {MEMORY_LIMIT // 2**30} GiB); "
            "make the network or the images smaller"
        )


def load_all(path: str | Path = "params.yaml") -> dict:
    """Read ``path`` and check all of it: every section, every key, and the checks across sections."""
    path = Path(path)
    try:
        with open_regular(path) as file:
            data = read_capped(file, PARAMS_LIMIT)
    except FileNotFoundError:
        raise UsageError(f"{path} not found; run from the project root, where params.yaml lives") from None
    except (IsADirectoryError, NotAFileError) as error:
        raise UsageError(f"{path} {error.strerror}; make it the project's parameter file") from None
    except OSError as error:
        raise UsageError(f"cannot read {path} ({error.strerror or error}); make it readable") from None
    if data is None:
        raise UsageError(f"{path} is larger than the limit of {PARAMS_LIMIT // 2**10} KiB; it is not a parameter file")
    try:
        document = read_yaml(data.decode())
    except UnsafeYAML as error:
        raise UsageError(f"{path}: {error}; write each value out, without anchors, aliases or deep nesting") from None
    except (YAMLError, UnicodeDecodeError) as error:
        raise UsageError(f"{path} is not valid YAML ({error}); fix the syntax") from None
    if not isinstance(document, dict):
        raise UsageError(f"{path} is not a mapping of sections {', '.join(SCHEMA)}; see docs/model.md for the keys")
    unknown = sorted(set(document) - set(SCHEMA), key=str)
    if unknown:
        raise UsageError(f"{path}: unknown section '{unknown[0]}'; the sections are {', '.join(SCHEMA)}")
    missing = [section for section in SCHEMA if section not in document]
    if missing:
        raise UsageError(f"{path} has no '{missing[0]}' section; add it (see docs/model.md for the keys)")
    params = {section: check_section(section, document[section]) for section in SCHEMA}
    _check_combinations(params)
    return params


def load_params(section: str, path: str | Path = "params.yaml") -> dict:
    """Read ``path``, check all of it (``load_all``) and return its checked ``section``."""
    return load_all(path)[section]
