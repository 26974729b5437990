"""Stage source: check all of params.yaml, then record which dataset the pipeline reads (SIGN_DIGITS_DATA or
ingest.source) and a digest of its content, in data/source.json. DVC cannot watch an environment variable, so
this stage always runs; ingest depends on its output and reruns only when the content changes. Running first,
it also stops a run with a mistake anywhere in params.yaml before DVC removes any other stage's outputs.
"""

import sys

from signdigits.dataset import fingerprint, resolve_source
from signdigits.errors import exit_code
from signdigits.files import write_outputs
from signdigits.params import load_all


def main():
    params = load_all()  # every section, not only ingest's
    source = resolve_source(params["ingest"]["source"])
    write_outputs({"data/source.json": {"kind": source.kind, "content_sha256": fingerprint(source)}})


if __name__ == "__main__":
    sys.exit(exit_code(main))
