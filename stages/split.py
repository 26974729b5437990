"""Stage split: a stratified, seeded train/test split (scikit-learn) → data/split/, each part's sources beside it
(sources_train.npy, sources_test.npy), and the validation fold of each training row → data/split/folds.npy
(split.folds of them; ≤ 1: cross-validation off, every row −1). The other hands (photos of the digits outside
filter.classes) are split alike but shuffled, not stratified (preprocess.shuffled_split): X_others_train.npy with
its folds (folds_others.npy), X_others_test.npy, and their sources."""

import sys

from signdigits.errors import exit_code
from signdigits.files import load_array, load_json, write_outputs
from signdigits.params import load_params
from signdigits.preprocess import shuffled_split, stratified_folds, stratified_split


def main():
    params = load_params("split")
    X, y = load_array("data/normalized/X.npy"), load_array("data/normalized/y.npy")
    sources = load_array("data/normalized/sources.npy")
    X_train, X_test, y_train, y_test, sources_train, sources_test = stratified_split(
        X, y, params["test_size"], params["seed"], sources
    )
    X_others, sources_others = (
        load_array("data/normalized/X_others.npy"),
        load_array("data/normalized/sources_others.npy"),
    )
    others_test, folds_others = shuffled_split(len(X_others), params["test_size"], params["folds"], params["seed"])
    write_outputs(
        {
            "data/split/X_train.npy": X_train,
            "data/split/y_train.npy": y_train,
            "data/split/X_test.npy": X_test,
            "data/split/y_test.npy": y_test,
            "data/split/sources_train.npy": sources_train,
            "data/split/sources_test.npy": sources_test,
            "data/split/folds.npy": stratified_folds(y_train, params["folds"], params["seed"]),
            "data/split/X_others_train.npy": X_others[~others_test],
            "data/split/X_others_test.npy": X_others[others_test],
            "data/split/sources_others_train.npy": sources_others[~others_test],
            "data/split/sources_others_test.npy": sources_others[others_test],
            "data/split/folds_others.npy": folds_others,
            "data/split/meta.json": load_json("data/normalized/meta.json"),
        }
    )


if __name__ == "__main__":
    sys.exit(exit_code(main))
