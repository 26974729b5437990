"""Stage filter: the user's corrections by source path (filter.exclude: photos left out, filter.relabel: photos
given another digit), then the classes of filter.classes; labels become indices into that list → data/filtered/,
each row's source beside it (sources.npy). The photos of the other digits are kept apart as other hands
(other_images.npy, other_sources.npy): the network may learn to refuse them (train.other_hands), and evaluate
measures how many it refuses."""

import sys

from signdigits.errors import exit_code
from signdigits.files import load_array, write_outputs
from signdigits.params import load_params
from signdigits.preprocess import filter_rows, other_hand_rows


def main():
    params = load_params("filter")
    images, sources = load_array("data/raw/images.npy"), load_array("data/raw/sources.npy")
    raw_labels = load_array("data/raw/labels.npy")
    rows, labels = filter_rows(raw_labels, sources, params["classes"], params["exclude"], params["relabel"])
    others = other_hand_rows(raw_labels, sources, params["exclude"], params["relabel"], params["classes"])
    image_size = int(round(images.shape[1] ** 0.5))
    write_outputs(
        {
            "data/filtered/images.npy": images[rows],
            "data/filtered/labels.npy": labels,
            "data/filtered/sources.npy": sources[rows],
            "data/filtered/other_images.npy": images[others],
            "data/filtered/other_sources.npy": sources[others],
            "data/filtered/meta.json": {"classes": params["classes"], "image_size": image_size},
        }
    )


if __name__ == "__main__":
    sys.exit(exit_code(main))
