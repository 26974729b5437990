"""Stage train: the final model, the NumPy network trained on every training row → models/model.npz, with the
temperature and the refusal threshold that stage crossval chose on the validation folds (reports/calibration.json)
and what its refusal score needs from the training rows; with train.other_hands, it also learns the training split's
other hands as its "other" output. It never reads the test split; the per-epoch curves come
from the validation folds (stage crossval)."""

import sys

from signdigits.errors import exit_code
from signdigits.files import load_array, load_json, write_outputs
from signdigits.modelfile import model_bytes
from signdigits.params import load_params
from signdigits.refusal import fit_stats
from signdigits.training import other_hands_to_learn, train


def main():
    params = load_params("train")
    meta = load_json("data/split/meta.json")
    calibrated = load_json("reports/calibration.json")
    X_train, y_train = load_array("data/split/X_train.npy"), load_array("data/split/y_train.npy")
    others = other_hands_to_learn(params, load_array("data/split/X_others_train.npy"))
    net, _ = train(params, X_train, y_train, n_classes=len(meta["classes"]), others=others)
    net.temperature = calibrated["temperature"]
    if calibrated["refusal"] is not None:
        net.refusal = {key: calibrated["refusal"][key] for key in ("score", "threshold")}
        net.ood_stats = fit_stats(net, X_train, y_train, net.refusal["score"])
    net.metadata = meta | {"train": params}
    write_outputs({"models/model.npz": model_bytes(net)})


if __name__ == "__main__":
    sys.exit(exit_code(main))
