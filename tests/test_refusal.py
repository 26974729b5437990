"""The model's calibration and "I don't know" as the pipeline and `signdigits predict` use them: per-photo
normalization, the average over a photo and its mirror image, the calibrated model file (and old files without it),
refusals of photos too small or unlike the training photos, against independent computations."""

import copy
import json
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image
from scipy.special import expit, softmax
from sklearn.metrics import log_loss

from signdigits import calibration
from signdigits.cnn import CNN
from signdigits.errors import UsageError
from signdigits.evaluation import predict_split, refusal_report
from signdigits.mlp import MLP
from signdigits.modelfile import load_model, save_model
from signdigits.network import TrainingConfig
from signdigits.refusal import MIN_SIDE, fit_stats, ood_score, refused


def predict(*args):
    return subprocess.run(
        [sys.executable, "-m", "signdigits", "predict", *map(str, args)], capture_output=True, text=True
    )


@pytest.mark.parametrize("kind", ["mlp", "cnn"])
def test_photo_norm_takes_out_a_rooms_brightness_and_contrast(kind):
    """With photo_norm, a photo and the same photo brighter or darker (x + b, unclipped) are the same input, and
    with more or less contrast (a·x) nearly so: ε = 1e-4 in √(var + ε) is small next to the photo's variance."""
    rng = np.random.default_rng(0)
    X = rng.uniform(0.2, 0.7, size=(12, 64)).astype(np.float32)
    if kind == "mlp":
        net = MLP(64, 5, 3, "tanh", seed=1, photo_norm=True, standardize=True)
    else:
        net = CNN(64, 3, [4], 3, 5, photo_norm=True, standardize=True)
    net.fit(X, np.arange(12) % 3, TrainingConfig(epochs=2, learning_rate=0.05))
    np.testing.assert_allclose(net.predict_proba(X + 0.25), net.predict_proba(X), atol=1e-5)
    np.testing.assert_allclose(net.predict_proba(1.4 * X), net.predict_proba(X), atol=2e-3)
    # by hand: each row centred on its mean, divided by √(variance + 1e-4), then standardized, is what the same
    # network without photo_norm and standardize reads
    X64 = X.astype(np.float64)
    expected = (X64 - X64.mean(axis=1, keepdims=True)) / np.sqrt(X64.var(axis=1, keepdims=True) + 1e-4)
    assert net.input_scale == pytest.approx(expected.std(), rel=1e-5)
    plain = copy.deepcopy(net)
    plain.photo_norm, plain.input_mean = False, None
    expected = (expected - expected.mean(axis=0)) / expected.std()
    np.testing.assert_allclose(net.logits(X), plain.logits(expected), rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("kind", ["mlp", "cnn"])
def test_mirror_average_answers_a_photo_and_its_mirror_image_alike(kind):
    """With mirror_average, the logits, the output layer's units and the last hidden layer's features are the mean of
    what the same network without it gives for the photo and for the photo with its columns reversed (by hand);
    a photo and its mirror image get the same answer; and the fit's history scores that averaged prediction
    (sklearn's log loss of its probabilities)."""
    rng = np.random.default_rng(4)
    X, y = rng.uniform(0.2, 0.7, size=(12, 64)), np.arange(12) % 3
    options = {"seed": 1, "dtype": np.float64, "photo_norm": True, "standardize": True, "other_output": True}
    if kind == "mlp":
        net = MLP(64, 5, 3, "tanh", mirror_average=True, **options)
    else:
        net = CNN(64, 3, [4], 3, 5, batch_norm=True, mirror_average=True, **options)
    one_view = copy.deepcopy(net)
    one_view.mirror_average = False
    history = net.fit(X, y, TrainingConfig(epochs=2, learning_rate=0.05), validation=(X[:6], y[:6]))
    one_view.fit(X, y, TrainingConfig(epochs=2, learning_rate=0.05), validation=(X[:6], y[:6]))
    for name, value in (net.params | net.running).items():  # training is unchanged: the same steps, bit for bit
        np.testing.assert_array_equal(value, (one_view.params | one_view.running)[name])
    flipped = X.reshape(12, 8, 8)[:, :, ::-1].reshape(12, 64)
    plain = copy.deepcopy(net)
    plain.mirror_average = False
    for method in ("logits", "outputs", "features"):
        expected = (getattr(plain, method)(X) + getattr(plain, method)(flipped)) / 2
        np.testing.assert_allclose(getattr(net, method)(X), expected, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(net.logits(flipped), net.logits(X), rtol=1e-12, atol=1e-12)
    assert not np.allclose(plain.logits(flipped), plain.logits(X), atol=1e-3)  # one view tells them apart
    Z = net.logits(X[:6])
    assert history[-1]["val_accuracy"] == np.mean(Z.argmax(axis=1) == y[:6])
    assert history[-1]["val_loss"] == pytest.approx(log_loss(y[:6], softmax(Z, axis=1), labels=[0, 1, 2]))


def test_temperature_divides_the_logits_of_the_probabilities():
    rng = np.random.default_rng(2)
    X = rng.uniform(size=(10, 16)).astype(np.float32)
    binary, multi = MLP(16, 4, 1, "tanh", seed=0), MLP(16, 4, 3, "tanh", seed=0)
    for net in (binary, multi):
        net.temperature = 2.5
    np.testing.assert_allclose(binary.predict_proba(X), expit(binary.logits(X)[:, 0] / 2.5), rtol=1e-5)
    np.testing.assert_allclose(multi.predict_proba(X), softmax(multi.logits(X) / 2.5, axis=1), rtol=1e-5)
    np.testing.assert_array_equal(multi.predict(X), multi.logits(X).argmax(axis=1))  # T > 0 changes no answer


@pytest.fixture
def calibrated_model(tmp_path):
    """A 3-class MLP with a temperature, a Mahalanobis refusal fitted on its training rows, saved and loaded."""
    rng = np.random.default_rng(3)
    y = np.arange(60) % 3
    X = np.clip(rng.normal(0.2 + 0.3 * y[:, None], 0.12, size=(60, 16)), 0, 1).astype(np.float32)
    net = MLP(16, 6, 3, "tanh", seed=0, standardize=True)
    net.fit(X, y, TrainingConfig(epochs=30, learning_rate=0.1))
    net.temperature = 1.7
    net.refusal = {"score": "mahalanobis", "threshold": -40.0}
    net.ood_stats = fit_stats(net, X, y, "mahalanobis")
    net.metadata = {"classes": ["0", "5", "7"], "image_size": 4, "pixel_scale": 255.0}
    path = tmp_path / "model.npz"
    save_model(net, path)
    return net, path, X


@pytest.mark.filterwarnings("error")  # no "Mean of empty slice" on the way
def test_a_model_that_refuses_every_test_photo_has_no_accuracy_of_the_answered(calibrated_model):
    net, _, X = calibrated_model
    y = np.arange(len(X)) % 3
    split = {"X_test": X, "y_test": y}
    answers = predict_split(net, split)
    report = refusal_report(net, X, y, answers, None)
    assert report["accuracy_answered"] == pytest.approx(np.mean(answers.y_pred == y), abs=1e-4)  # nothing refused
    net.refusal = {"score": "mahalanobis", "threshold": 1e30}  # every photo refused
    everything_refused = predict_split(net, split)
    assert everything_refused.refused.all()
    report = refusal_report(net, X, y, everything_refused, None)
    assert report["refused"]["test"] == 1.0 and report["accuracy_answered"] is None
    json.dumps(report, allow_nan=False)  # reports/refusal.json stays valid JSON


def test_the_model_file_keeps_temperature_refusal_and_its_statistics(calibrated_model):
    net, path, X = calibrated_model
    loaded = load_model(path)
    assert loaded.calibrated and loaded.temperature == 1.7 and loaded.refusal == net.refusal
    assert set(loaded.ood_stats) == {"means", "precision"} and loaded.ood_stats["precision"].shape == (6, 6)
    np.testing.assert_array_equal(loaded.predict_proba(X), net.predict_proba(X))
    np.testing.assert_array_equal(refused(loaded, X), refused(net, X))
    # the Mahalanobis score by hand: minus the smallest (x − μ_k)ᵀ P (x − μ_k)
    H = net.features(X).astype(np.float64)
    means, P = net.ood_stats["means"], net.ood_stats["precision"]
    by_hand = -np.min([np.einsum("nd,de,ne->n", H - m, P, H - m) for m in means], axis=0)
    np.testing.assert_allclose(ood_score(loaded, X, "mahalanobis", loaded.ood_stats, 1.7), by_hand, rtol=1e-6)


@pytest.mark.parametrize(
    "calibration_header, message",
    [
        ({"temperature": 0.0, "refusal": None}, "calibration.temperature 0.0 is not a number in [0.01, 100]"),
        ({"temperature": float("nan"), "refusal": None}, "calibration.temperature nan is not a number"),
        ({"temperature": 1.0, "refusal": {"score": "vibes", "threshold": 0.5}}, "is not a score of msp, energy"),
        ({"temperature": 1.0, "refusal": {"score": "msp", "threshold": "high"}}, "is not a score of msp, energy"),
        ({"temperature": 1.0}, "calibration is not a mapping of temperature and refusal"),
    ],
)
def test_a_broken_calibration_is_one_line(calibrated_model, calibration_header, message):
    _, path, _ = calibrated_model
    with np.load(path) as archive:
        content = {key: archive[key] for key in archive.files}
    header = json.loads(str(content["header"]))
    header["calibration"] = calibration_header
    if (calibration_header.get("refusal") or {}).get("score") != "mahalanobis":
        content = {k: v for k, v in content.items() if not k.startswith("ood_")}
    np.savez(path, **(content | {"header": np.array(json.dumps(header))}))
    with pytest.raises(UsageError, match="retrain it") as error:
        load_model(path)
    assert message in str(error.value) and "\n" not in str(error.value)


def test_mahalanobis_statistics_of_the_wrong_shape_are_refused(calibrated_model):
    _, path, _ = calibrated_model
    with np.load(path) as archive:
        content = {key: archive[key] for key in archive.files}
    np.savez(path, **(content | {"ood_precision": np.eye(5)}))
    with pytest.raises(UsageError, match=r"ood_precision has shape \(5, 5\).*needs \(6, 6\)"):
        load_model(path)


@pytest.mark.slow  # `signdigits predict` in a subprocess
def test_an_old_model_file_loads_uncalibrated_with_a_note(calibrated_model, tmp_path):
    """A file from before calibration (no "calibration" in its header, no ood_ arrays): temperature 1, no
    refusal; predict says so in one line and answers."""
    _, path, _ = calibrated_model
    with np.load(path) as archive:
        content = {key: archive[key] for key in archive.files if not key.startswith("ood_")}
    header = json.loads(str(content["header"]))
    del header["calibration"]
    np.savez(path, **(content | {"header": np.array(json.dumps(header))}))
    net = load_model(path)
    assert not net.calibrated and net.temperature == 1.0 and net.refusal is None
    Image.fromarray(np.tile(np.linspace(0, 255, 40), (40, 1)).astype(np.uint8)).save(tmp_path / "photo.png")
    result = predict(tmp_path / "photo.png", "--model", path)
    assert result.returncode == 0
    assert (
        result.stderr.count("\n") == 1
        and result.stderr.startswith("note:")
        and "from before calibration" in result.stderr
    )
    assert result.stdout.split("\t")[1] in ("0", "5", "7")


@pytest.mark.slow  # `signdigits predict` in a subprocess
def test_predict_refuses_a_tiny_image_and_a_photo_unlike_the_training_photos(calibrated_model, tmp_path):
    """A refusal is an answer (exit status 0): '?' and the reason on the photo's line; with --json, digit null,
    the reason, and the best guess when the model saw the photo."""
    net, path, X = calibrated_model
    Image.new("L", (4, 4), 128).save(tmp_path / "tiny.png")
    Image.new("L", (MIN_SIDE, MIN_SIDE), 128).save(tmp_path / "smallest.png")
    squares = np.kron(np.indices((4, 4)).sum(axis=0) % 2, np.ones((16, 16))) * 255  # nothing like the training rows
    Image.fromarray(squares.astype(np.uint8)).save(tmp_path / "checker.png")
    familiar = Image.fromarray((X[1].reshape(4, 4) * 255).round().astype(np.uint8)).resize((32, 32), Image.NEAREST)
    familiar.save(tmp_path / "familiar.png")
    paths = [tmp_path / n for n in ("tiny.png", "checker.png", "familiar.png", "smallest.png")]
    result = predict(*paths, "--model", path)
    assert result.returncode == 0 and result.stderr == ""
    lines = [line.split("\t") for line in result.stdout.splitlines()]
    assert lines[0][1] == "?" and "4×4 pixels is too small to show a hand (under 16 pixels a side)" in lines[0][2]
    assert lines[1][1] == "?" and lines[1][2].startswith("unlike the photos it was trained on (mahalanobis score")
    assert lines[2][1] == "5" and float(lines[2][2]) > 0.5  # the second class, as trained
    # 16 × 16 is large enough to be looked at, and, one flat grey, is refused for that: no hand
    assert lines[3][1] == "?" and lines[3][2] == "a flat image, no hand (its grey levels spread 0.000 < 0.03)"
    answers = json.loads(predict(*paths, "--model", path, "--json").stdout)
    assert answers[0] == {"path": str(paths[0]), "digit": None, "probability": None, "reason": lines[0][2]}
    assert answers[1]["digit"] is None and answers[1]["guess"] in ("0", "5", "7") and answers[1]["reason"]
    assert answers[2]["digit"] == "5" and "reason" not in answers[2]


def test_refusal_threshold_refuses_its_share_of_validation_scores():
    scores = np.linspace(0, 1, 200)
    threshold = calibration.refusal_threshold(scores, 0.02)
    assert np.mean(scores < threshold) == 0.02
