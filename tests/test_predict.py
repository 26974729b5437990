"""`signdigits predict`: photos of any size, mode and orientation, preprocessed as the pipeline did."""

import csv
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from signdigits.mlp import MLP
from signdigits.modelfile import load_model, save_model
from signdigits.network import TrainingConfig


def predict(*args, cwd=None):
    return subprocess.run(
        [sys.executable, "-m", "signdigits", "predict", *map(str, args)], capture_output=True, text=True, cwd=cwd
    )


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory, half_image):
    """A model trained here to tell a bright-left image ("0") from a bright-right one ("5"), at 8×8."""
    rng = np.random.default_rng(0)
    sides = rng.integers(0, 2, size=200)
    X = np.stack(
        [np.asarray(half_image((8, 8), "left" if s == 0 else "right", "L"), np.float32).ravel() for s in sides]
    )
    X = np.clip(X / 255 + rng.normal(0, 0.05, X.shape), 0, 1)
    net = MLP(64, 8, 1, "tanh", seed=0)
    net.fit(X, sides, TrainingConfig(epochs=20, learning_rate=0.1))
    net.metadata = {"classes": ["0", "5"], "image_size": 8, "pixel_scale": 255.0}
    path = tmp_path_factory.mktemp("model") / "model.npz"
    save_model(net, path)
    return path


@pytest.fixture
def photos(tmp_path, half_image, jpeg_bytes):
    """A sideways-stored JPEG that its EXIF tag turns bright-left ("0"); an RGBA PNG whose right half is
    transparent, so shown white over the page ("5"); a large palette PNG ("5"); a non-square grey JPEG ("0")."""
    shown = half_image((300, 300), "left", bright=250, dark=5)
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90° clockwise to display: store it turned counter-clockwise
    (tmp_path / "rotated.jpg").write_bytes(jpeg_bytes(shown.transpose(Image.Transpose.ROTATE_90), exif=exif))
    rgba = Image.new("RGBA", (64, 48), (0, 0, 0, 255))
    rgba.paste((255, 255, 255, 0), (32, 0, 64, 48))  # right half transparent: the viewer's white shows through
    rgba.save(tmp_path / "right.png")
    half_image((500, 500), "right").convert("P").save(tmp_path / "palette.png")
    half_image((90, 120), "left").convert("L").save(tmp_path / "gray.jpg")
    return tmp_path


@pytest.mark.slow  # `signdigits predict` in a subprocess
def test_predicts_each_photo_as_the_viewer_shows_it(tiny_model, photos):
    names = ["rotated.jpg", "right.png", "palette.png", "gray.jpg"]
    result = predict(*(photos / n for n in names), "--model", tiny_model)
    assert result.returncode == 0, result.stderr
    lines = [line.split("\t") for line in result.stdout.strip().splitlines()]
    assert [Path(line[0]).name for line in lines] == names
    assert [line[1] for line in lines] == ["0", "5", "5", "0"]
    assert all(0.5 <= float(line[2]) <= 1 for line in lines)
    as_json = json.loads(predict(*(photos / n for n in names), "--model", tiny_model, "--json").stdout)
    assert [r["digit"] for r in as_json] == ["0", "5", "5", "0"]
    assert [r["probability"] for r in as_json] == [float(line[2]) for line in lines]


def test_console_script_is_installed():
    script = Path(sys.executable).parent / "signdigits"
    assert script.exists()
    assert "predict" in subprocess.run([script, "--help"], capture_output=True, text=True).stdout


def test_main_returns_the_exit_status_and_the_process_goes_on(tiny_model, photos, capsys):
    from signdigits.cli import main

    assert main(["predict", str(photos / "gray.jpg"), "--model", str(tiny_model)]) == 0
    assert capsys.readouterr().out.split("\t")[1] == "0"
    assert main(["predict", str(photos / "absent.jpg"), "--model", str(tiny_model)]) == 1
    assert "absent.jpg: no such file" in capsys.readouterr().err
    assert main(["predict"]) == 2  # argparse's usage error: explained on stderr, returned, not raised
    assert main(["--help"]) == 0 and "predict" in capsys.readouterr().out


@pytest.mark.slow  # `signdigits predict` in a subprocess
def test_bad_input(tiny_model, photos, tmp_path):
    (tmp_path / "notes.txt").write_text("not an image")
    cases = [
        ((photos / "absent.jpg", "--model", tiny_model), "absent.jpg: no such file"),
        ((tmp_path / "notes.txt", "--model", tiny_model), "notes.txt is corrupt or not an image"),
        ((photos / "gray.jpg", "--model", tmp_path / "none.npz"), "model file"),
    ]
    broken = tmp_path / "broken.npz"
    broken.write_bytes(tiny_model.read_bytes()[:100])
    cases.append(((photos / "gray.jpg", "--model", broken), "is not a readable model file"))
    other_size = load_model(tiny_model)
    other_size.metadata["image_size"] = 28  # says 28² pixels, has 64 inputs
    save_model(other_size, tmp_path / "other.npz")
    cases.append(
        ((photos / "gray.jpg", "--model", tmp_path / "other.npz"), "is inconsistent: 64 inputs for 28² pixels")
    )
    bare = MLP(64, 2, 1)
    save_model(bare, tmp_path / "bare.npz")
    cases.append(((photos / "gray.jpg", "--model", tmp_path / "bare.npz"), "has no record of its classes"))
    for args, message in cases:
        result = predict(*args)
        assert result.returncode == 1 and result.stdout == ""
        assert result.stderr.count("\n") == 1 and message in result.stderr, result.stderr


def test_a_test_photo_gets_the_prediction_evaluate_gave_it(built_project, real_data):
    """Find the files of a few test rows (by their pixels), predict them from the files, compare."""
    from signdigits.images import read_photo

    project, _ = built_project
    X_test = np.load(project / "data/split/X_test.npy")
    with open(project / "reports/predictions.csv") as rows:
        evaluated = list(csv.DictReader(rows))
    wanted = {X_test[i].tobytes(): i for i in range(len(X_test))}
    found = {}
    for digit in ("0", "5"):
        for path in sorted((real_data / "Dataset" / digit).iterdir()):
            pixels = read_photo(path.read_bytes(), 28, str(path)).reshape(-1).astype(np.float32) / np.float32(255)
            if pixels.tobytes() in wanted:
                found[wanted[pixels.tobytes()]] = path
    assert len(found) == len(X_test)
    chosen = sorted(found)[:6] + [i for i, row in enumerate(evaluated) if row["actual"] != row["predicted"]]
    result = predict(*(found[i] for i in chosen), "--model", project / "models/model.npz", "--json")
    assert result.returncode == 0, result.stderr
    for i, prediction in zip(chosen, json.loads(result.stdout)):
        refused = evaluated[i]["refused"] == "1"
        assert prediction["digit"] == (None if refused else evaluated[i]["predicted"])
        assert prediction.get("guess", prediction["digit"]) == evaluated[i]["predicted"]
        assert prediction["probability"] == pytest.approx(float(evaluated[i]["probability"]), abs=1e-4)


def test_the_pipelines_model_answers_hands_and_refuses_what_is_none(built_project, real_data, tmp_path):
    """The default pipeline's model: real photos of its digits answered (all but at most the refused share of
    clean validation photos, 2 %), a flat grey photo and a 4 × 4 image refused in one line each, exit status 0."""
    project, _ = built_project
    photos = sorted((real_data / "Dataset" / "0").iterdir())[:25] + sorted((real_data / "Dataset" / "5").iterdir())[:25]
    Image.new("RGB", (640, 480), (128, 128, 128)).save(tmp_path / "grey.png")
    Image.new("RGB", (4, 4), (200, 180, 160)).save(tmp_path / "tiny.png")
    result = predict(*photos, tmp_path / "grey.png", tmp_path / "tiny.png", "--model", project / "models/model.npz")
    assert result.returncode == 0 and result.stderr == ""
    lines = [line.split("\t") for line in result.stdout.splitlines()]
    assert len(lines) == len(photos) + 2
    answered = [line for line in lines[:-2] if line[1] != "?"]
    assert len(answered) >= 48 and all(line[1] in ("0", "5") for line in answered)
    assert lines[-2][1:] == ["?", "a flat image, no hand (its grey levels spread 0.000 < 0.03)"]
    assert lines[-1][1:] == ["?", "4×4 pixels is too small to show a hand (under 16 pixels a side)"]
