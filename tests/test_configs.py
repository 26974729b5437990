"""The named configurations (config/*.yaml), composed as `dvc exp run -S +config=NAME` composes them (DVC's Hydra
composition, .dvc/config), without training: each equals the long `-S` line it replaces, applied by hand to the
committed params.yaml; params.yaml is laid out as the composition writes it; an edit to params.yaml survives.
The real runs: tests/test_experiments_real.py."""

import configparser
import shutil

import pytest
import yaml
from dvc.utils.hydra import compose_and_dump

# Each named configuration as the long line of `-S key=value` it replaces in the README
CLASSES = 'filter.classes=["0","1","2","3","4","5","6","7","8","9"]'
# the default's robust training (mirrored, altered and non-hand photos), switched off by the lines that train on clean
# photos: written since the default gained it (issue 19)
CLEAN_PHOTOS = [
    "train.augment_mirror=false",
    "train.mirror_average=false",
    "train.augment_background=false",
    "train.augment_busy_background=0",
    "train.augment_perturb=[]",
    "train.outlier_exposure=0",
    "train.natural_images=0",
    "train.other_hands=0",
]
LONG_LINES = {
    "default": [],
    "ten-digits": [
        CLASSES,
        *"train.hidden_units=512 train.augment_shift=2 train.lr_decay=0.02 train.weight_decay=0.0003".split(),
        "train.augment_perturb=[rotate,shift,scale,brighten,darken,contrast,gamma,noise,blur,occlude]",
        "train.augment_background=false",
        "train.augment_busy_background=0",
        "train.outlier_exposure=0.1",
        "train.natural_images=0",
        "train.other_hands=0",  # all ten digits: no other hands to learn
        "train.epochs=100",
    ],
    "course": [
        *"train.activation=sigmoid train.optimizer=sgd train.learning_rate=0.01 train.augment_shift=0".split(),
        *CLEAN_PHOTOS,
        "train.epochs=100",
    ],
    "ten-digits-cnn-clean": [
        CLASSES,
        *"train.model=cnn train.conv_channels=[16,32] train.kernel_size=5 train.batch_norm=true".split(),
        *"train.hidden_units=256 train.activation=relu train.optimizer=adam train.learning_rate=0.001".split(),
        *"train.lr_decay=0.1 train.weight_decay=0.001 train.epochs=60 train.batch_size=16".split(),
        *"train.standardize=true train.augment_shift=3 train.augment_rotate=12 train.augment_zoom=0.1".split(),
        *"train.dropout=0.3 train.photo_norm=false".split(),
        *CLEAN_PHOTOS,
    ],
}


def by_hand(params: dict, overrides: list[str]) -> dict:
    """``params`` with each `section.key=value` set, the value read as YAML: what the long line did."""
    params = yaml.safe_load(yaml.safe_dump(params))
    for override in overrides:
        key, text = override.split("=", 1)
        section, name = key.split(".", 1)
        assert name in params[section], override  # the long lines only change keys params.yaml has
        params[section][name] = yaml.safe_load(text)
    return params


@pytest.fixture
def compose(root, tmp_path):
    """compose(*overrides, params=None): the params.yaml `dvc exp run -S …` writes (DVC's compose_and_dump, with
    .dvc/config's hydra settings), from the committed params.yaml or from ``params`` (text) in its place."""
    hydra = configparser.ConfigParser()
    hydra.read(root / ".dvc" / "config")
    hydra = hydra["hydra"]

    def composed(*overrides, params=None):
        project = tmp_path / "project"
        shutil.rmtree(project, ignore_errors=True)
        shutil.copytree(root / hydra["config_dir"] / "config", project / "config")
        (project / "params.yaml").write_text(params or (root / "params.yaml").read_text())
        output = tmp_path / "composed.yaml"
        compose_and_dump(output, str(project), None, hydra["config_name"], str(project), list(overrides))
        return output.read_text()

    return composed


def test_dvc_composes_params_yaml_with_hydra(root):
    config = configparser.ConfigParser()
    config.read(root / ".dvc" / "config")
    assert dict(config["hydra"]) == {"enabled": "true", "config_dir": ".", "config_name": "params"}


def test_each_named_configuration_is_its_long_line(root, compose):
    params = yaml.safe_load((root / "params.yaml").read_text())
    names = sorted(path.stem for path in (root / "config").glob("*.yaml"))
    assert names == ["course", "default", "ten-digits", "ten-digits-cnn", "ten-digits-cnn-clean"]
    for name, overrides in LONG_LINES.items():
        assert yaml.safe_load(compose(f"+config={name}")) == by_hand(params, overrides), name
    # the robust line: the clean line, then its own values (one file, config/ten-digits-cnn.yaml, holds them)
    robust = yaml.safe_load((root / "config" / "ten-digits-cnn.yaml").read_text())
    assert robust.pop("defaults") == ["ten-digits-cnn-clean", "_self_"] and set(robust) == {"train", "refusal"}
    expected = by_hand(params, LONG_LINES["ten-digits-cnn-clean"])
    expected["train"] |= robust["train"]
    expected["refusal"] |= robust["refusal"]
    assert robust["train"]["augment_mirror"] is True and robust["train"]["photo_norm"] is True
    assert robust["train"]["mirror_average"] is True
    assert robust["refusal"] == {"score": "energy"}
    assert yaml.safe_load(compose("+config=ten-digits-cnn")) == expected


def test_the_default_restores_every_value_a_named_configuration_sets(root, compose):
    """config/default.yaml holds the committed filter.classes, every train value and refusal.score, so that a named
    configuration sets the whole model, whatever another one left in the workspace's params.yaml."""
    params = yaml.safe_load((root / "params.yaml").read_text())
    default = yaml.safe_load((root / "config" / "default.yaml").read_text())
    assert default == {
        "filter": {"classes": params["filter"]["classes"]},
        "train": params["train"],
        "refusal": {"score": params["refusal"]["score"]},
    }
    for path in (root / "config").glob("*.yaml"):
        named = yaml.safe_load(path.read_text())
        assert set(named) <= {"defaults", "filter", "train", "refusal"}, path
        assert set(named.get("filter", {})) <= {"classes"} and set(named.get("refusal", {})) <= {"score"}, path
        assert set(named["train"]) <= set(params["train"]), path
    # the CNN line's refusal score does not stay behind when another configuration follows it
    after_cnn = yaml.safe_load(compose("+config=ten-digits", params=compose("+config=ten-digits-cnn")))
    assert after_cnn["refusal"] == params["refusal"]


def test_params_yaml_is_laid_out_as_the_composition_writes_it(root, compose):
    """So `dvc exp run` rewrites nothing by itself, and `-S key=value` changes that one line."""
    committed = (root / "params.yaml").read_text()
    assert compose() == committed
    changed = compose("train.learning_rate=0.003").splitlines()
    assert [(a, b) for a, b in zip(committed.splitlines(), changed) if a != b] == [
        ("  learning_rate: 0.001", "  learning_rate: 0.003")
    ]


def test_an_edit_to_params_yaml_survives_the_composition(root, compose):
    """Hydra composes from params.yaml itself: `dvc exp run` keeps what the user wrote there. A named configuration
    sets filter.classes and the train section (config/default.yaml and its own values), and leaves the rest."""
    edited = (root / "params.yaml").read_text()
    edits = [("folds: 5", "folds: 0"), ("seed: 0", "seed: 3"), ("exclude: []", "exclude:\n  - Dataset/7/x.JPG")]
    for old, new in edits:
        assert old in edited
        edited = edited.replace(old, new)
    plain = yaml.safe_load(compose(params=edited))
    assert plain == yaml.safe_load(edited)
    assert yaml.safe_load(compose("train.epochs=5", params=edited))["train"]["seed"] == 3
    named = yaml.safe_load(compose("+config=ten-digits", "train.epochs=5", params=edited))
    assert named["split"]["folds"] == 0 and named["filter"]["exclude"] == ["Dataset/7/x.JPG"]
    assert named["train"]["seed"] == 0 and named["train"]["epochs"] == 5 and named["train"]["hidden_units"] == 512
    # another named configuration's values do not leak: the CNN's, then the MLP's
    cnn = compose("+config=ten-digits-cnn")
    mlp = yaml.safe_load(compose("+config=ten-digits", params=cnn))
    assert mlp == yaml.safe_load(compose("+config=ten-digits"))
