"""The one exception type for bad input, and the helper that turns it into a one-line error and exit status 1."""

import sys


class UsageError(Exception):
    """Input the user can fix. The message says what is wrong and how to fix it, on one line."""


def exit_code(main) -> int:
    """Run ``main()`` and return the process's exit status: 0 on success; for a UsageError, 1 after printing
    ``error: <message>`` on stderr. A script ends with ``sys.exit(exit_code(main))``."""
    try:
        main()
    except UsageError as error:
        message = " ".join(str(error).split())  # one line, whatever the message was built from
        print(f"error: {message}", file=sys.stderr)
        return 1
    return 0
