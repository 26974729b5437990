"""The "other" output (train.other_hands): its gradients against finite differences, its class logits and
refusal score against SciPy's softmax, what the data stages keep apart, what each epoch and each fold learns, and
a network that learns to refuse a shape it was shown but answers its classes."""

import re

import numpy as np
import pytest
from scipy.special import softmax
from sklearn.metrics import log_loss, roc_auc_score

from signdigits import crossval, training
from signdigits.cnn import CNN
from signdigits.mlp import MLP
from signdigits.modelfile import load_model, save_model
from signdigits.network import TrainingConfig
from signdigits.params import load_params
from signdigits.perturbations import non_hands
from signdigits.preprocess import NO_FOLD, other_hand_rows, shuffled_split, stratified_folds
from signdigits.refusal import flat, ood_score, other_probability
from signdigits.training import augmenter, other_hands_to_learn, synthetic_outliers

SIDE = 8


def bars(kind: str, n: int, seed: int) -> np.ndarray:
    """n noisy 8 × 8 images of one shape: a horizontal bar, a vertical bar, or a diagonal ("another hand"), each
    at a random place."""
    rng = np.random.default_rng(seed)
    images = rng.uniform(0.0, 0.3, (n, SIDE, SIDE))
    for image, at in zip(images, rng.integers(1, SIDE - 2, n)):
        if kind == "horizontal":
            image[at : at + 2, :] += 0.6
        elif kind == "vertical":
            image[:, at : at + 2] += 0.6
        else:
            image[np.arange(SIDE), (np.arange(SIDE) + at) % SIDE] += 0.6
    return np.clip(images, 0, 1).reshape(n, -1).astype(np.float32)


def two_classes_and_others(n=60, seed=0):
    X = np.concatenate([bars("horizontal", n, seed), bars("vertical", n, seed + 1)])
    return X, np.repeat([0, 1], n), bars("diagonal", n, seed + 2)


@pytest.mark.parametrize("n_outputs", [1, 3])
@pytest.mark.parametrize("kind", ["mlp", "cnn"])
def test_gradients_with_other_output_match_finite_differences(kind, n_outputs, numeric_gradient):
    rng = np.random.default_rng(0)
    X = rng.uniform(size=(9, 36))
    classes = max(2, n_outputs)
    y = np.arange(9) % (classes + 1)  # label K: "other"
    if kind == "mlp":
        net = MLP(36, 5, n_outputs, "tanh", seed=1, dtype=np.float64, other_output=True)
    else:
        net = CNN(36, n_outputs, (2,), 3, 4, "tanh", seed=1, dtype=np.float64, other_output=True)
    assert net.n_units == classes + 1 and net.params[next(reversed(net.params))].shape == (classes + 1,)
    for name in net.params:
        net.params[name] += 0.1 * rng.normal(size=net.params[name].shape)
    analytic = net.gradients(X, y, 0.01)
    for name in net.params:
        numeric = numeric_gradient(net, X, y, name, 0.01)
        error = np.linalg.norm(analytic[name] - numeric) / max(np.linalg.norm(analytic[name] + numeric), 1e-12)
        assert error < 1e-6, (name, error)


@pytest.mark.parametrize("n_outputs", [1, 3])
def test_class_probabilities_are_the_softmax_of_the_class_units_and_msp_the_joint_one(n_outputs):
    net = MLP(36, 5, n_outputs, "relu", seed=2, dtype=np.float64, other_output=True)
    net.params["b2"][:] = [0.3, -0.2, 0.5, 1.0][: net.n_units]
    net.temperature = 1.6
    X = np.random.default_rng(3).uniform(size=(7, 36))
    U = net.outputs(X)
    assert U.shape == (7, net.n_units) and net.logits(X).shape == (7, n_outputs)
    conditional = softmax(U[:, :-1] / 1.6, axis=1)  # P(class | a hand of the classes)
    expected = conditional[:, 1] if n_outputs == 1 else conditional
    np.testing.assert_allclose(net.predict_proba(X), expected, rtol=1e-12)
    assert np.array_equal(net.predict(X), conditional.argmax(axis=1))
    joint = softmax(U / 1.6, axis=1)
    np.testing.assert_allclose(other_probability(net, X, 1.6), joint[:, -1], rtol=1e-12)
    msp = ood_score(net, X, "msp", {}, 1.6)
    np.testing.assert_allclose(msp, joint[:, :-1].max(axis=1), rtol=1e-12)
    np.testing.assert_allclose(msp, (1 - joint[:, -1]) * conditional.max(axis=1), rtol=1e-12)


def test_a_network_learns_to_refuse_the_other_hands_and_still_answers_its_classes():
    X, y, others = two_classes_and_others()
    config = TrainingConfig(epochs=60, learning_rate=0.003, optimizer="adam", other_hands=0.5)
    net = MLP(SIDE * SIDE, 16, 1, "relu", seed=0, other_output=True, standardize=True)
    X_new, y_new, others_new = two_classes_and_others(seed=10)
    history = net.fit(X, y, config, validation=(X_new, y_new), others=others)
    # the curves are of the probabilities it states, P(class | one of the classes), as for any network
    assert history[-1]["val_loss"] == pytest.approx(log_loss(y_new, net.predict_proba(X_new)), rel=1e-4)
    assert np.mean(net.predict(X_new) == y_new) >= 0.95
    assert np.mean(other_probability(net, others_new, 1.0) > 0.5) >= 0.9
    assert np.mean(other_probability(net, X_new, 1.0) > 0.5) <= 0.05


def test_each_epoch_draws_its_share_of_other_hands_altered_as_the_training_rows_are(monkeypatch):
    X, y, others = two_classes_and_others(n=20)
    targets, draws = [], []
    alter = augmenter(1, mirror=True, families=("occlude",))

    def recording(pool):  # the augment function, recording each draw of rows it alters
        augment = alter(pool)

        def epoch(rng, rows=None):
            images = augment(rng, rows)
            if rows is not None:
                draws.append((pool, rows, images))
            return images

        return epoch

    config = TrainingConfig(
        epochs=3, other_hands=0.25, outlier_exposure=0.1, outliers=synthetic_outliers, augment=recording
    )
    net = MLP(SIDE * SIDE, 4, 1, seed=0, other_output=True)
    real_gradients = net._gradients

    def spy(X0, Y, *args):
        targets.append(Y)
        return real_gradients(X0, Y, *args)

    monkeypatch.setattr(net, "_gradients", spy)
    net.fit(X, y, config, others=others)
    monkeypatch.undo()
    for epoch in np.split(np.concatenate(targets), 3):  # 40 photos of the classes, 0.25 · 40 others, 0.1 · 40 non-hands
        rows = [tuple(t) for t in epoch.tolist()]
        assert len(rows) == 54 and rows.count((1, 0, 0)) == rows.count((0, 1, 0)) == 20
        assert rows.count((0, 0, 1)) == 10 + 4  # the other hands and the non-hands: both "other", none uniform
    assert len(draws) == 3
    for pool, rows, images in draws:  # each epoch's draw: ten distinct other hands, altered like the training rows
        assert np.array_equal(pool, others) and len(set(rows.tolist())) == 10
        assert not np.array_equal(images, others[rows])
    # more than there are: each epoch learns every one of them once
    assert net._other_hands(others, TrainingConfig(other_hands=4.0), len(X))[0] == len(others)
    with pytest.raises(ValueError, match="other_output"):
        MLP(SIDE * SIDE, 4, 1).fit(X, y, TrainingConfig(epochs=1, other_hands=0.5), others=others)
    with pytest.raises(ValueError, match="other_hands"):
        TrainingConfig(other_hands=-0.1)


def test_other_hands_are_learnt_when_asked_for_and_there_are_some(root):
    params = load_params("train", root / "params.yaml") | {"other_hands": 0.5}
    others = np.zeros((3, 4), np.float32)
    assert other_hands_to_learn(params, others) is others
    assert other_hands_to_learn(params | {"other_hands": 0}, others) is None
    assert other_hands_to_learn(params, others[:0]) is None  # all ten digits are classes: nothing to learn


def test_the_other_hands_are_the_photos_of_the_other_digits_after_the_users_corrections():
    labels = np.array(list("0512357"))
    sources = np.array([f"Dataset/{d}/IMG_{i}.JPG" for i, d in enumerate(labels)])
    rows = other_hand_rows(labels, sources, [sources[3]], {sources[4]: "5", sources[1]: "9"}, ["0", "5"])
    assert rows.tolist() == [1, 2, 6]  # the "5" made a "9" joins them; the excluded "2" and the "3" made a "5" do not


@pytest.mark.parametrize("n, k", [(0, 5), (1, 5), (7, 3), (103, 5), (50, 1)])
def test_the_other_hands_split_and_folds(n, k):
    test, folds = shuffled_split(n, 0.2, k, seed=4)
    assert test.shape == (n,) and test.sum() == int(np.ceil(0.2 * n)) and len(folds) == n - test.sum()
    if k > 1 and len(folds):
        sizes = np.bincount(folds, minlength=k)
        assert sizes.max() - sizes.min() <= 1
    else:
        assert (folds == NO_FOLD).all()
    again = shuffled_split(n, 0.2, k, seed=4)
    assert np.array_equal(again[0], test) and np.array_equal(again[1], folds)
    if n > 20:
        assert not np.array_equal(shuffled_split(n, 0.2, k, seed=5)[0], test)


def test_each_fold_learns_the_other_hands_of_the_other_folds_and_is_scored_on_its_own(root):
    params = load_params("train", root / "params.yaml")
    params |= {"epochs": 2, "augment_perturb": [], "augment_shift": 0, "other_hands": 0.5, "hidden_units": 4}
    X, y, others = two_classes_and_others(n=15)
    others[0] = 0.5  # a flat image: refused whatever its score
    folds, folds_others = stratified_folds(y, 3, seed=0), np.arange(len(others)) % 3
    _, _, out_of_fold, nets = crossval.cross_validate(params, X, y, folds, 2, others=others, folds_others=folds_others)
    for fold, net in enumerate(nets):  # fold f's network learnt the other hands of the other folds only
        rows = folds == fold
        learnt = others[folds_others != fold]
        alone, _ = training.train(params, X[~rows], y[~rows], n_classes=2, label=None, others=learnt)
        for name, value in alone.params.items():
            np.testing.assert_array_equal(value, net.params[name])
    refusal = {"score": "msp", "max_refused": 0.1}
    report = crossval.calibrate(nets, X, y, folds, out_of_fold, refusal, non_hands(20, SIDE), others, folds_others)
    T = report["temperature"]
    inside = np.concatenate([ood_score(n, X[folds == f], "msp", {}, T) for f, n in enumerate(nets)])
    outside = np.concatenate([ood_score(n, others[folds_others == f], "msp", {}, T) for f, n in enumerate(nets)])
    truth = np.repeat([1, 0], [len(inside), len(outside)])
    assert report["other_hand_auroc"]["msp"] == round(roc_auc_score(truth, np.concatenate([inside, outside])), 4)
    is_flat = np.concatenate([flat(others[folds_others == f]) for f in range(3)])
    assert is_flat.sum() == 1
    refused = np.mean((outside < report["refusal"]["threshold"]) | is_flat)
    assert report["refusal"]["refused_other_hands"] == round(float(refused), 4)


@pytest.mark.parametrize("n_outputs", [1, 3])
@pytest.mark.parametrize("kind", ["mlp", "cnn"])
def test_the_model_file_and_the_onnx_graph_keep_the_other_output_output(kind, n_outputs, tmp_path, onnx_parity):
    import onnxruntime  # requirements-dev.txt, as onnx

    from signdigits.export import to_onnx  # needs onnx (requirements-dev.txt)

    if kind == "mlp":
        net = MLP(36, 5, n_outputs, "relu", seed=1, other_output=True)
    else:
        net = CNN(36, n_outputs, (2,), 3, 4, "relu", seed=1, other_output=True)
    for name in net.params:
        net.params[name] += 0.2 * np.random.default_rng(2).normal(size=net.params[name].shape).astype(np.float32)
    net.metadata = {"classes": [str(d) for d in range(max(2, n_outputs))], "image_size": 6, "pixel_scale": 255.0}
    net.temperature = 1.3
    save_model(net, tmp_path / "m.npz")
    loaded = load_model(tmp_path / "m.npz")
    X = np.random.default_rng(4).uniform(size=(5, 36)).astype(np.float32)
    assert loaded.other_output and np.array_equal(loaded.outputs(X), net.outputs(X))
    graph = to_onnx(net).SerializeToString()
    differences = onnx_parity(net, graph, X)
    assert max(differences.values()) <= 1e-5
    # the second output, P(other), from which a consumer computes the refusal's msp score
    session = onnxruntime.InferenceSession(graph, providers=["CPUExecutionProvider"])
    probabilities, other = session.run(None, {"pixels": X.reshape(-1, 1, 6, 6)})
    np.testing.assert_allclose(other[:, 0], other_probability(net, X, 1.3), atol=1e-6)
    msp = ood_score(net, X, "msp", {}, 1.3)
    np.testing.assert_allclose((1 - other[:, 0]) * probabilities.max(axis=1), msp, atol=1e-6)


def test_predict_says_none_of_its_digits_when_the_other_output_wins(tmp_path):
    from PIL import Image

    from signdigits.cli import predict_photos

    net = MLP(36, 5, 1, "relu", seed=1, other_output=True)
    net.metadata = {"classes": ["0", "5"], "image_size": 6, "pixel_scale": 255.0}
    net.refusal = {"score": "msp", "threshold": 0.5}
    photo = tmp_path / "hand.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (32, 32), dtype=np.uint8)).save(photo)
    answers = {}
    for other_bias in (10.0, -10.0):  # P(other) near 1, then near 0 with the classes' units alike
        net.params["b2"][:] = [5.0, 0.0, other_bias]
        save_model(net, tmp_path / "model.npz")
        answers[other_bias] = predict_photos([photo], tmp_path / "model.npz")[0]
    assert answers[10.0]["digit"] is None and answers[10.0]["guess"] == "0"
    assert re.fullmatch(r"none of its digits: another hand or no hand \(P\(other\) 0\.9\d\d\)", answers[10.0]["reason"])
    assert answers[-10.0]["digit"] == "0" and "reason" not in answers[-10.0]
    X = np.asarray(Image.open(photo).resize((6, 6), Image.Resampling.LANCZOS), np.float32).reshape(1, -1) / 255
    for other_bias, answer in answers.items():  # P(other) beside every answer, as refusal.other_probability gives it
        net.params["b2"][:] = [5.0, 0.0, other_bias]
        assert answer["p_other"] == pytest.approx(float(other_probability(net, X, 1.0)[0]), abs=2e-3)


def test_a_model_file_from_before_the_other_output_still_loads(tmp_path):
    import json

    net = MLP(36, 5, 1, "relu", seed=1)
    net.metadata = {"classes": ["0", "5"], "image_size": 6, "pixel_scale": 255.0}
    save_model(net, tmp_path / "m.npz")
    with np.load(tmp_path / "m.npz") as archive:
        content = {key: archive[key] for key in archive.files}
    header = json.loads(str(content["header"]))
    del header["architecture"]["other_output"]  # as ed1763d and before wrote it
    np.savez(tmp_path / "old.npz", **(content | {"header": np.array(json.dumps(header))}))
    old = load_model(tmp_path / "old.npz")
    X = np.random.default_rng(5).uniform(size=(4, 36)).astype(np.float32)
    assert not old.other_output and old.n_units == 1
    assert np.array_equal(old.predict_proba(X), net.predict_proba(X))
