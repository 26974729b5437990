"""Stage ingest: every photo of the source, as a viewer shows it, in grayscale at image_size² → data/raw/, with
each photo's source identity (its path inside the dataset, or npz:<row>) in data/raw/sources.npy."""

import sys

from signdigits.dataset import ingest, resolve_source
from signdigits.errors import exit_code
from signdigits.files import write_outputs
from signdigits.params import load_params


def main():
    params = load_params("ingest")
    source = resolve_source(params["source"])
    images, labels, sources, summary = ingest(source, params["image_size"])
    write_outputs(
        {
            "data/raw/images.npy": images,
            "data/raw/labels.npy": labels,
            "data/raw/sources.npy": sources,
            "reports/ingest_summary.json": summary,
        }
    )


if __name__ == "__main__":
    sys.exit(exit_code(main))
