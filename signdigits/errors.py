"""The one exception type for bad input, and the wrapper that turns it into a one-line error and exit 1."""

import os
import sys


class UsageError(Exception):
    """Input the user can fix. The message says what is wrong and how to fix it, on one line."""


def exit_on_usage_error(main):
    """Run ``main()`` and end the process: a UsageError becomes ``error: <message>`` on stderr and exit status 1;
    success is exit status 0. It is a script's last statement (the stages', the CLI's)."""
    try:
        main()
    except UsageError as error:
        message = " ".join(str(error).split())  # one line, whatever the message was built from
        print(f"error: {message}", file=sys.stderr)
        sys.exit(1)
    # Every output is written and renamed by now. Skip the interpreter's teardown of the modules main() imported:
    # unloading scikit-learn, SciPy and matplotlib costs 0.1–0.3 s per stage, which `dvc repro` pays each time.
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)
