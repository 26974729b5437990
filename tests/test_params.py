import re
from pathlib import Path

import pytest
import yaml

from signdigits.errors import UsageError
from signdigits.params import MEMORY_LIMIT, SCHEMA, check_section, load_all, load_params, read_yaml, training_memory
from signdigits.training import build_model

ROOT = Path(__file__).resolve().parents[1]


def defaults(section):
    return yaml.safe_load((ROOT / "params.yaml").read_text())[section]


def test_committed_params_load():
    assert load_all(ROOT / "params.yaml")["train"]["model"] == "mlp"


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
        ("filter", {"exclude": "Dataset/0/a.JPG"}, "filter.exclude = 'Dataset/0/a.JPG' is not allowed; expected"),
        ("filter", {"exclude": ["Dataset/0/a.JPG", ""]}, "filter.exclude = ['Dataset/0/a.JPG', ''] is not allowed"),
        ("filter", {"exclude": ["Dataset/0/a.JPG"] * 2}, "filter.exclude lists 'Dataset/0/a.JPG' twice"),
        ("filter", {"relabel": ["Dataset/0/a.JPG"]}, "filter.relabel = ['Dataset/0/a.JPG'] is not allowed; expected a"),
        ("filter", {"relabel": {"Dataset/0/a.JPG": "12"}}, "filter.relabel maps 'Dataset/0/a.JPG' to '12', which is"),
        ("filter", {"relabel": {"Dataset/0/a.JPG": 12}}, "maps 'Dataset/0/a.JPG' to 12, which is not a class"),
        ("filter", {"relabel": {"Dataset/0/a.JPG": None}}, "maps 'Dataset/0/a.JPG' to None, which is not a class"),
        (
            "filter",
            {"exclude": ["Dataset/0/a.JPG"], "relabel": {"Dataset/0/a.JPG": "5"}},
            "'Dataset/0/a.JPG' is in both filter.exclude and filter.relabel",
        ),
        ("train", {"activation": "softsign"}, "train.activation = 'softsign' is not allowed; expected one of"),
        ("train", {"learning_rate": 0}, "train.learning_rate = 0 is not allowed; expected a number > 0"),
        ("train", {"momentum": 1.0}, "train.momentum = 1.0 is not allowed"),
        ("train", {"dropout": 1.0}, "train.dropout = 1.0 is not allowed; expected a number in [0, 1)"),
        ("train", {"augment_zoom": 0.6}, "train.augment_zoom = 0.6 is not allowed; expected a number in [0, 0.5]"),
        ("train", {"augment_rotate": -5}, "train.augment_rotate = -5 is not allowed; expected a number in [0, 180]"),
        ("train", {"batch_size": 0}, "train.batch_size = 0 is not allowed"),
        ("train", {"batch_norm": "yes"}, "train.batch_norm = 'yes' is not allowed; expected true or false"),
        (
            "train",
            {"augment_perturb": ["mirror"]},
            "train.augment_perturb = ['mirror'] is not allowed; expected a list",
        ),
        ("train", {"augment_perturb": ["blur", "blur"]}, "expected a list of distinct perturbation families from"),
        ("train", {"augment_perturb": "blur"}, "train.augment_perturb = 'blur' is not allowed"),
        (
            "train",
            {"augment_severity": 6},
            "train.augment_severity = 6 is not allowed; expected an integer ≥ 1 and ≤ 5",
        ),
        (
            "train",
            {"outlier_exposure": 1.5},
            "train.outlier_exposure = 1.5 is not allowed; expected a number in [0, 1]",
        ),
        ("train", {"photo_norm": 1}, "train.photo_norm = 1 is not allowed; expected true or false"),
        ("train", {"kernel_size": 4}, "train.kernel_size = 4 is not allowed; expected an odd integer in [1, 9]"),
        ("train", {"learning_rate": "1e-3"}, "train.learning_rate = '1e-3' is not allowed; expected a number > 0"),
        ("split", {"seed": 2**64}, "split.seed = 18446744073709551616 is not allowed; expected an integer ≥ 0"),
        ("refusal", {"score": "vibes"}, "refusal.score = 'vibes' is not allowed; expected one of 'msp', 'energy'"),
        ("refusal", {"max_refused": 0.9}, "refusal.max_refused = 0.9 is not allowed; expected a number in [0, 0.5]"),
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
    checked = check_section("filter", {"classes": [0, 5], "exclude": [], "relabel": {"Dataset/5/a.JPG": 0}})
    assert checked["classes"] == ["0", "5"] and checked["relabel"] == {"Dataset/5/a.JPG": "0"}


def test_missing_file_and_section(tmp_path):
    with pytest.raises(UsageError, match="not found; run from the project root"):
        load_params("split", tmp_path / "params.yaml")
    document = yaml.safe_load((ROOT / "params.yaml").read_text())
    del document["split"]
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(document))
    with pytest.raises(UsageError, match="has no 'split' section"):
        load_params("train", tmp_path / "params.yaml")  # any section's reader checks the whole file
    (tmp_path / "params.yaml").write_text("split: [1,\n")
    with pytest.raises(UsageError, match="is not valid YAML"):
        load_params("split", tmp_path / "params.yaml")


def write_params(tmp_path, text_edit=None, **changes):
    """The committed params.yaml with ``changes`` ({"section.key": value}) applied, written under tmp_path."""
    document = yaml.safe_load((ROOT / "params.yaml").read_text())
    for dotted, value in changes.items():
        section, key = dotted.split(".")
        document[section][key] = value
    text = yaml.safe_dump(document, sort_keys=False)
    path = tmp_path / "params.yaml"
    path.write_text(text_edit(text) if text_edit else text)
    return path


@pytest.mark.parametrize(
    "written, expected",
    [("1e-5", 1e-5), ("1E-3", 1e-3), (".5", 0.5), ("1.0e-5", 1e-5), ("5e-4", 5e-4), ("+2E+1", 20.0), ("3", 3)],
)
def test_yaml_1_2_floats_are_numbers(written, expected):
    value = read_yaml(f"x: {written}")["x"]
    assert value == expected and isinstance(value, (int, float)) and not isinstance(value, bool)


# Spellings YAML 1.1 (PyYAML) and YAML 1.2 (ruamel.yaml, which DVC reads params.yaml with) read differently,
# and some they read alike.
SPELLINGS = [
    ("train.epochs", "010"),  # 1.1: octal 8; 1.2: 10
    ("train.epochs", "0o12"),  # 1.2 octal
    ("train.epochs", "1:40"),  # 1.1: sexagesimal 100; 1.2: a string
    ("train.epochs", "1_000"),
    ("train.standardize", "off"),  # 1.1: false; 1.2: a string
    ("train.standardize", "yes"),
    ("train.standardize", "True"),
    ("split.seed", "0x2A"),
    ("train.weight_decay", "1e-5"),
    ("train.learning_rate", "+.5"),
]


@pytest.mark.parametrize("key, written", SPELLINGS)
def test_stages_read_each_value_as_dvc_records_it(key, written, tmp_path):
    """What a stage trains is what dvc.lock, `dvc params diff` and `dvc exp show` record: the value DVC's own
    parser reads, or a refusal naming the key."""
    from dvc.utils.serialize import parse_yaml

    section, name = key.split(".")
    path = write_params(tmp_path, lambda text: re.sub(rf"(?m)^(  {name}:) .*$", rf"\1 {written}", text, count=1))
    recorded = parse_yaml(path.read_text(), str(path))[section][name]
    try:
        read = load_all(path)[section][name]
    except UsageError as error:
        assert f"params.yaml: {key} = {recorded!r} is not allowed" in str(error)
    else:
        assert read == recorded and type(read) is type(recorded)


@pytest.mark.parametrize("written", ["1e", "e5", "1e-5x", "'1e-5'", "1.5.3", "0x1p3"])
def test_what_is_not_a_number_stays_a_string(written):
    assert isinstance(read_yaml(f"x: {written}")["x"], str)


def test_exponent_floats_pass_every_number_key(tmp_path):
    path = write_params(
        tmp_path,
        lambda text: (
            text.replace("weight_decay: 0.0", "weight_decay: 1e-5")
            .replace("learning_rate: 0.01", "learning_rate: 1E-3")
            .replace("test_size: 0.2", "test_size: .5")
            .replace("lr_decay: 0.0", "lr_decay: 2e-2")
            .replace("momentum: 0.0", "momentum: 9e-1")
        ),
    )
    assert "weight_decay: 1e-5" in path.read_text()
    params = load_all(path)
    train = params["train"]
    assert (train["weight_decay"], train["learning_rate"], train["lr_decay"], train["momentum"]) == (
        1e-5,
        1e-3,
        2e-2,
        0.9,
    )
    assert params["split"]["test_size"] == 0.5


@pytest.mark.parametrize(
    "text, message",
    [
        ("weight_decay: .inf", "train.weight_decay = inf is not a finite number; expected a number ≥ 0"),
        ("learning_rate: .inf", "train.learning_rate = inf is not a finite number; expected a number > 0"),
        ("learning_rate: .nan", "train.learning_rate = nan is not a finite number"),
        ("momentum: -.inf", "train.momentum = -inf is not a finite number"),
        ("test_size: .nan", "split.test_size = nan is not a finite number"),
    ],
)
def test_non_finite_numbers_are_refused_by_name(tmp_path, text, message):
    key = text.split(":")[0]
    path = write_params(tmp_path, lambda t: re.sub(rf"(?m)^(\s*){key}: .*$", rf"\g<1>{text}", t))
    with pytest.raises(UsageError) as raised:
        load_all(path)
    assert message in str(raised.value)


@pytest.mark.parametrize(
    "edit, message",
    [
        (lambda t: t.replace("\n  classes:", "\n  clases:"), "unknown key filter.clases"),
        (lambda t: t.replace("train:", "trian:"), "unknown section 'trian'; the sections are ingest, filter"),
        (lambda t: t + "evaluate:\n  plots: true\n", "unknown section 'evaluate'"),
        (lambda t: t.replace("  seed: 0\n", "  seed: 0\n  sede: 1\n"), "unknown key train.sede"),
        (lambda t: "- a list\n", "is not a mapping of sections ingest, filter, split, train"),
        (lambda t: "", "is not a mapping of sections"),
        (lambda t: re.sub(r"(?ms)^split:\n.*?(?=^train:)", "split: 3\n", t), "section 'split' must be a mapping"),
    ],
)
def test_unknown_sections_and_keys_are_refused_wherever_they_are(tmp_path, edit, message):
    path = write_params(tmp_path, edit)
    for section in SCHEMA:  # whichever stage reads it
        with pytest.raises(UsageError) as raised:
            load_params(section, path)
        assert message in str(raised.value)


def test_cnn_whose_poolings_leave_no_pixel(tmp_path):
    path = write_params(tmp_path, **{"train.model": "cnn", "train.conv_channels": [4, 4, 4, 4], "ingest.image_size": 8})
    with pytest.raises(UsageError) as raised:
        load_params("ingest", path)
    assert str(raised.value) == (
        "params.yaml: train.conv_channels = [4, 4, 4, 4] has 4 conv blocks, whose 2×2 poolings shrink "
        "ingest.image_size = 8 pixels to nothing; use at most 3 blocks or a larger image_size"
    )
    three = write_params(tmp_path, **{"train.model": "cnn", "train.conv_channels": [4, 4, 4], "ingest.image_size": 8})
    assert load_params("train", three)["conv_channels"] == [4, 4, 4]  # 8 → 4 → 2 → 1 pixel: fine
    mlp = write_params(tmp_path, **{"train.conv_channels": [4, 4, 4, 4], "ingest.image_size": 8})
    assert load_params("train", mlp)["model"] == "mlp"  # the conv blocks matter only to the CNN


def test_batch_norm_needs_the_cnn(tmp_path):
    path = write_params(tmp_path, **{"train.batch_norm": True})
    with pytest.raises(UsageError) as raised:
        load_params("train", path)
    assert str(raised.value) == (
        "params.yaml: train.batch_norm = true needs train.model = cnn (it normalizes the conv blocks; the mlp has "
        "none); set train.batch_norm: false"
    )
    cnn = write_params(tmp_path, **{"train.batch_norm": True, "train.model": "cnn"})
    assert load_params("train", cnn)["batch_norm"] is True


def test_busy_backgrounds_need_other_backgrounds(tmp_path):
    path = write_params(tmp_path, **{"train.augment_background": False, "train.augment_busy_background": 0.5})
    with pytest.raises(UsageError) as raised:
        load_params("train", path)
    assert str(raised.value) == (
        "params.yaml: train.augment_busy_background = 0.5 needs train.augment_background = true (it is a share of "
        "the photos given another background); set train.augment_background: true or train.augment_busy_background: 0"
    )
    on = write_params(tmp_path, **{"train.augment_background": True, "train.augment_busy_background": 0.5})
    assert load_params("train", on)["augment_busy_background"] == 0.5


def test_natural_images_need_synthetic_non_hands_to_be_a_share_of(tmp_path):
    none = {"train.outlier_exposure": 0, "train.augment_busy_background": 0, "train.natural_images": 0.5}
    with pytest.raises(UsageError) as raised:
        load_params("train", write_params(tmp_path, **none))
    assert str(raised.value) == (
        "params.yaml: train.natural_images = 0.5 needs train.outlier_exposure > 0 or train.augment_busy_background > 0 "
        "(it is a share of the synthetic non-hands they draw); set one of them or train.natural_images: 0"
    )
    for drawn in ({"train.outlier_exposure": 0.1}, {"train.augment_busy_background": 0.5}):
        assert load_params("train", write_params(tmp_path, **(none | drawn)))["natural_images"] == 0.5


def test_absurd_memory_is_refused_before_anything_runs(tmp_path):
    path = write_params(tmp_path, **{"ingest.image_size": 256, "train.hidden_units": 65536, "train.optimizer": "sgd"})
    with pytest.raises(UsageError) as raised:
        load_params("split", path)
    assert "ingest.image_size = 256 and train.hidden_units = 65536 need about 32 GiB to train (limit 4 GiB)" in str(
        raised.value
    )


@pytest.mark.parametrize("model", ["mlp", "cnn"])
def test_the_memory_estimate_counts_the_arrays_of_the_network_built(model):
    """Adam keeps two arrays per array of the network, plain SGD none: the estimates differ by exactly what the
    built network holds, twice, 4 bytes a value."""
    train = defaults("train") | {"model": model, "optimizer": "sgd", "batch_norm": model == "cnn"}
    net = build_model(train, 28 * 28, 10)
    held = sum(array.size for array in (net.params | net.running).values())
    adam = training_memory(train | {"optimizer": "adam"}, 28)
    assert adam - training_memory(train, 28) == 4 * 2 * held
    assert adam < MEMORY_LIMIT
