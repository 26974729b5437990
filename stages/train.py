"""Stage train: the NumPy network trained on the train split → models/model.npz and the per-epoch history
reports/train_history.tsv (train and held-out loss and accuracy; the test split is only observed)."""

import sys

from signdigits.errors import exit_code
from signdigits.files import load_array, load_json, write_outputs
from signdigits.modelfile import model_bytes
from signdigits.params import load_params
from signdigits.training import history_tsv, train


def main():
    params = load_params("train")
    meta = load_json("data/split/meta.json")
    X_train, y_train = load_array("data/split/X_train.npy"), load_array("data/split/y_train.npy")
    X_test, y_test = load_array("data/split/X_test.npy"), load_array("data/split/y_test.npy")
    net, history = train(params, X_train, y_train, X_test, y_test, n_classes=len(meta["classes"]))
    net.metadata = meta | {"train": params}
    write_outputs({"models/model.npz": model_bytes(net), "reports/train_history.tsv": history_tsv(history)})


if __name__ == "__main__":
    sys.exit(exit_code(main))
