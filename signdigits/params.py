"""params.yaml: the schema of every stage's section, and the checked loader.

Each stage reads only its own section. A missing or unknown key (a typo such as ``test_sise``), a value of
the wrong type or out of range is a UsageError naming the key, the value and what is allowed.
"""

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from signdigits.errors import UsageError

DIGITS = tuple(str(d) for d in range(10))


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
        if isinstance(value, (int, float)) and not isinstance(value, bool):
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


SCHEMA = {
    "ingest": {"source": text(), "image_size": integer(8, 512)},
    "filter": {"classes": digit_classes()},
    "split": {"test_size": number(0, 1, low_open=True, high_open=True), "seed": integer(0)},
    "train": {
        "model": choice("mlp", "cnn"),
        "conv_channels": channel_list(),
        "kernel_size": odd_integer(1, 9),
        "hidden_units": integer(1, 65536),
        "standardize": boolean(),
        "augment_shift": integer(0, 8),
        "activation": choice("sigmoid", "tanh", "relu"),
        "optimizer": choice("sgd", "adam"),
        "learning_rate": number(0, low_open=True),
        "momentum": number(0, 1, high_open=True),
        "weight_decay": number(0),
        "lr_decay": number(0),
        "epochs": integer(1, 100000),
        "batch_size": integer(1),
        "seed": integer(0),
    },
}


def check_section(section: str, values: Any) -> dict:
    """Check one section's values against SCHEMA; return them normalised."""
    rules = SCHEMA[section]
    if not isinstance(values, dict):
        raise UsageError(f"params.yaml: section '{section}' must be a mapping of {', '.join(rules)}")
    unknown = sorted(set(values) - set(rules))
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
            raise UsageError(f"params.yaml: {section}.{key} = {values[key]!r} is not allowed; expected {rule.allowed}")
        checked[key] = value
    if section == "filter" and len(set(checked["classes"])) != len(checked["classes"]):
        raise UsageError(f"params.yaml: filter.classes = {values['classes']!r} lists a class twice; list each once")
    if section == "filter" and len(checked["classes"]) < 2:
        raise UsageError(
            f"params.yaml: filter.classes = {values['classes']!r} has fewer than two classes; list two or more"
        )
    return checked


def load_params(section: str, path: str | Path = "params.yaml") -> dict:
    """Read ``path`` and return its checked ``section``."""
    path = Path(path)
    try:
        document = yaml.safe_load(path.read_text())
    except FileNotFoundError:
        raise UsageError(f"{path} not found; run from the project root, where params.yaml lives") from None
    except yaml.YAMLError as error:
        raise UsageError(f"{path} is not valid YAML ({error}); fix the syntax") from None
    if not isinstance(document, dict) or section not in document:
        raise UsageError(f"{path} has no '{section}' section; add it (see README.md for the keys)")
    return check_section(section, document[section])
