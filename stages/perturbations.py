"""Stage perturbations: the first training photo under every family of the perturbation suite at severities 1–5 →
reports/perturbations.png (not committed: it shows a dataset photo). A stage of its own: the figure depends on
the suite and the split, not on the network, so a train edit does not redraw it."""

import sys

from signdigits.errors import exit_code
from signdigits.figures import perturbations_grid, png
from signdigits.files import load_array, load_json, write_outputs


def main():
    meta = load_json("data/split/meta.json")
    X = load_array("data/split/X_train.npy")
    write_outputs({"reports/perturbations.png": png(perturbations_grid(X[0], meta["image_size"]))})


if __name__ == "__main__":
    sys.exit(exit_code(main))
