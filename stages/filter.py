"""Stage filter: keep the classes of filter.classes; labels become indices into that list → data/filtered/."""

import sys

from signdigits.errors import exit_code
from signdigits.files import load_array, write_outputs
from signdigits.params import load_params
from signdigits.preprocess import select_classes


def main():
    params = load_params("filter")
    images = load_array("data/raw/images.npy")
    images, labels = select_classes(images, load_array("data/raw/labels.npy"), params["classes"])
    image_size = int(round(images.shape[1] ** 0.5))
    write_outputs(
        {
            "data/filtered/images.npy": images,
            "data/filtered/labels.npy": labels,
            "data/filtered/meta.json": {"classes": params["classes"], "image_size": image_size},
        }
    )


if __name__ == "__main__":
    sys.exit(exit_code(main))
