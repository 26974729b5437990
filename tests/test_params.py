from pathlib import Path

import pytest
import yaml

from signdigits.errors import UsageError
from signdigits.params import SCHEMA, check_section, load_params

ROOT = Path(__file__).resolve().parents[1]


def defaults(section):
    return yaml.safe_load((ROOT / "params.yaml").read_text())[section]


def test_committed_params_are_valid_and_complete():
    document = yaml.safe_load((ROOT / "params.yaml").read_text())
    for section in SCHEMA:
        assert set(check_section(section, document[section])) == set(SCHEMA[section])


@pytest.mark.parametrize(
    "section, change, message",
    [
        ("split", {"test_sise": 0.2}, "unknown key split.test_sise; the keys of 'split' are test_size, seed"),
        ("split", {"test_size": 1.0}, "split.test_size = 1.0 is not allowed; expected a number in (0, 1)"),
        ("split", {"test_size": 0}, "split.test_size = 0 is not allowed"),
        ("split", {"test_size": "0.2"}, "split.test_size = '0.2' is not allowed"),
        ("split", {"seed": 1.5}, "split.seed = 1.5 is not allowed; expected an integer ≥ 0"),
        ("ingest", {"image_size": 7}, "ingest.image_size = 7 is not allowed; expected an integer ≥ 8 and ≤ 512"),
        ("ingest", {"image_size": True}, "ingest.image_size = True is not allowed"),
        ("filter", {"classes": ["0"]}, "has fewer than two classes"),
        ("filter", {"classes": ["0", "5", "0"]}, "lists a class twice"),
        ("filter", {"classes": ["0", "12"]}, "expected a list of two or more distinct digits"),
        ("train", {"activation": "softsign"}, "train.activation = 'softsign' is not allowed; expected one of"),
        ("train", {"learning_rate": 0}, "train.learning_rate = 0 is not allowed; expected a number > 0"),
        ("train", {"momentum": 1.0}, "train.momentum = 1.0 is not allowed"),
        ("train", {"batch_size": 0}, "train.batch_size = 0 is not allowed"),
    ],
)
def test_bad_values_name_key_value_and_what_is_allowed(section, change, message):
    values = defaults(section)
    if "test_sise" in change:
        values.pop("test_size")
    values.update(change)
    with pytest.raises(UsageError) as raised:
        check_section(section, values)
    assert message in str(raised.value)


def test_missing_key_is_named():
    values = defaults("train")
    del values["epochs"]
    with pytest.raises(UsageError, match="missing key train.epochs; expected an integer"):
        check_section("train", values)


def test_integer_classes_are_accepted_as_digit_names():
    assert check_section("filter", {"classes": [0, 5]})["classes"] == ["0", "5"]


def test_missing_file_and_section(tmp_path):
    with pytest.raises(UsageError, match="not found; run from the project root"):
        load_params("split", tmp_path / "params.yaml")
    (tmp_path / "params.yaml").write_text("ingest: {}\n")
    with pytest.raises(UsageError, match="has no 'split' section"):
        load_params("split", tmp_path / "params.yaml")
    (tmp_path / "params.yaml").write_text("split: [1,\n")
    with pytest.raises(UsageError, match="is not valid YAML"):
        load_params("split", tmp_path / "params.yaml")
