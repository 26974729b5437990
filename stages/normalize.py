"""Stage normalize: pixels to float32 in [0, 1] (divided by 255, as the seed) → data/normalized/, each row's
source beside it (sources.npy); the other hands alike (X_others.npy, sources_others.npy)."""

import sys

from signdigits.errors import exit_code
from signdigits.files import load_array, load_json, write_outputs
from signdigits.preprocess import PIXEL_SCALE, normalize


def main():
    meta = load_json("data/filtered/meta.json") | {"pixel_scale": PIXEL_SCALE}
    write_outputs(
        {
            "data/normalized/X.npy": normalize(load_array("data/filtered/images.npy")),
            "data/normalized/y.npy": load_array("data/filtered/labels.npy"),
            "data/normalized/sources.npy": load_array("data/filtered/sources.npy"),
            "data/normalized/X_others.npy": normalize(load_array("data/filtered/other_images.npy")),
            "data/normalized/sources_others.npy": load_array("data/filtered/other_sources.npy"),
            "data/normalized/meta.json": meta,
        }
    )


if __name__ == "__main__":
    sys.exit(exit_code(main))
