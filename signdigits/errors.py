"""The one exception type for bad input, and the wrapper that turns it into a one-line error and exit 1."""

import sys


class UsageError(Exception):
    """Input the user can fix. The message says what is wrong and how to fix it, on one line."""


def exit_on_usage_error(main):
    """Run ``main()``; a UsageError becomes ``error: <message>`` on stderr and exit status 1."""
    try:
        main()
    except UsageError as error:
        message = " ".join(str(error).split())  # one line, whatever the message was built from
        print(f"error: {message}", file=sys.stderr)
        sys.exit(1)
