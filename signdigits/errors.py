"""The one exception type for bad input, and the helper that turns it into a one-line error and exit status 1."""

import signal
import sys
import threading


class UsageError(Exception):
    """Input the user can fix. The message says what is wrong and how to fix it, on one line."""


class Terminated(KeyboardInterrupt):
    """SIGTERM (a `kill`, a closing terminal, a stopped job), raised where the program is, as Ctrl-C raises
    KeyboardInterrupt: the same clean-ups run (no output replaced, the history restored), where the default
    action would end the process on the spot and leave half-written state behind."""


def printable(text: str) -> str:
    """``text`` safe to print on one line: each control or other unprintable character (a newline, a terminal's
    escape sequence, a bidi override) written as its Python escape, ``\\n``, ``\\x1b``."""
    return "".join(c if c.isprintable() else c.encode("unicode_escape").decode("ascii") for c in text)


def _terminate(signum, frame):
    raise Terminated()


def exit_code(main) -> int:
    """Run ``main()`` and return the process's exit status: 0 on success; for a UsageError, 1 after printing
    ``error: <message>`` on stderr; stopped by SIGINT or SIGTERM, 128 + the signal's number after one line. A
    script ends with ``sys.exit(exit_code(main))``."""
    in_main_thread = threading.current_thread() is threading.main_thread()  # only it may set signal handlers
    previous = signal.signal(signal.SIGTERM, _terminate) if in_main_thread else None
    try:
        main()
    except UsageError as error:
        message = printable(" ".join(str(error).split()))  # one line, whatever the message was built from
        print(f"error: {message}", file=sys.stderr)
        return 1
    except KeyboardInterrupt as stop:
        number = signal.SIGTERM if isinstance(stop, Terminated) else signal.SIGINT
        print(
            f"error: stopped by {number.name} before it finished; the outputs it was writing are the previous "
            "ones, unchanged; run it again to finish",
            file=sys.stderr,
        )
        return 128 + number
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)
    return 0
