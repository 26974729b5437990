"""Atomic outputs and checked inputs for the stage artifacts.

A stage collects all its outputs and hands them to ``write_outputs``: each is written to a temporary file
beside its target and renamed only once every one of them was written, so an interrupted or failing stage
leaves either the complete new set or nothing new.
"""

import contextlib
import errno
import glob
import io
import json
import os
import signal
import stat
import threading
from pathlib import Path

from signdigits.errors import UsageError

# numpy is imported where arrays are handled: the source stage, which runs on every `dvc repro` and writes only
# JSON, starts without it.


def to_bytes(content) -> bytes:
    """The bytes of one output: a dict/list as JSON, str as UTF-8 text, an ndarray as .npy."""
    if isinstance(content, (dict, list)):
        return (json.dumps(content, indent=2) + "\n").encode()
    if isinstance(content, str):
        return content.encode()
    if isinstance(content, bytes):
        return content
    import numpy as np

    if isinstance(content, np.ndarray):
        buffer = io.BytesIO()
        np.save(buffer, content, allow_pickle=False)
        return buffer.getvalue()
    raise TypeError(f"cannot write {type(content).__name__}")


# Signals that stop a stage: held back while the renames run, so an interrupt never leaves half the new outputs.
STOPPING_SIGNALS = {signal.SIGINT, signal.SIGTERM}


def hold_signals():
    """Hold SIGINT and SIGTERM back until ``release_signals`` of what this returns: one that comes meanwhile is noted,
    not acted on. Python's handlers are swapped rather than the signal mask changed, because the kernel may hand a
    signal to any thread that does not block it (OpenBLAS's, tqdm's, DVCLive's), and Python then runs the handler
    in the main thread all the same. Only the main thread runs handlers: elsewhere this holds nothing."""
    if threading.current_thread() is not threading.main_thread():
        return None
    noted = []
    previous = {
        number: signal.signal(number, lambda number, frame: noted.append(number)) for number in STOPPING_SIGNALS
    }
    return previous, noted


def release_signals(held) -> None:
    """Undo ``hold_signals``: a signal that came meanwhile takes effect now, under the handler it would have met
    (nested holds keep it pending: the outer hold notes it again)."""
    if held is None:
        return
    previous, noted = held
    for number, handler in previous.items():
        signal.signal(number, handler)
    if noted:
        signal.raise_signal(noted[0])


def _remove_stale_temporaries(path: Path) -> None:
    """Remove the temporary files of ``path`` that a killed writer (SIGKILL, power cut) left behind: in a folder
    DVC tracks as one output (data/raw, …) the next `dvc repro` would otherwise hash them into it."""
    if path.parent.is_dir():
        for stale in path.parent.glob(f".{glob.escape(path.name)}.*.tmp"):
            with contextlib.suppress(OSError):
                stale.unlink()


def write_outputs(outputs: dict) -> None:
    """Write ``{path: content}`` all-or-nothing (temporary files, then renames). A folder that cannot be written
    (read-only, full, missing permissions) is a UsageError naming the file; no temporary file is left behind."""
    staged = []
    try:
        for path, content in outputs.items():
            path = Path(path)
            data = to_bytes(content)
            _remove_stale_temporaries(path)
            path.parent.mkdir(parents=True, exist_ok=True)
            temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
            staged.append((temporary, path))
            temporary.write_bytes(data)
        held = hold_signals()
        try:
            for temporary, path in staged:
                os.replace(temporary, path)
        finally:
            release_signals(held)
    except OSError as error:
        reason = error.strerror or str(error)
        raise UsageError(
            f"cannot write {path} ({reason}); make its folder writable or free some disk space, then rerun"
        ) from None
    finally:
        for temporary, _ in staged:
            with contextlib.suppress(OSError):  # a folder that refused the file refuses its removal too
                temporary.unlink(missing_ok=True)


class NotAFileError(OSError):
    """A path that names a named pipe, a device or a socket: reading it could block or never end."""


def _kind(mode: int) -> str:
    if stat.S_ISFIFO(mode):
        return "a named pipe (FIFO)"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "not a regular file"


def open_regular(path: str | Path):
    """``path`` opened for binary reading if it is a regular file (symbolic links followed); a folder raises
    IsADirectoryError, a named pipe, device or socket NotAFileError, whose message says which. The file is opened
    non-blocking and checked before anything is read: a FIFO with no writer would block a plain open forever, and
    /dev/zero never ends."""
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    try:
        mode = os.fstat(fd).st_mode
        if stat.S_ISDIR(mode):
            raise IsADirectoryError(errno.EISDIR, "is a folder", str(path))
        if not stat.S_ISREG(mode):
            raise NotAFileError(errno.EINVAL, f"is {_kind(mode)}, not a regular file", str(path))
        os.set_blocking(fd, True)
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def read_capped(file, limit: int) -> bytes | None:
    """The content of an open file, or None if it holds more than ``limit`` bytes (read no further than that)."""
    data = file.read(limit + 1)
    return None if len(data) > limit else data


def load_array(path: str | Path):
    """Load one .npy artifact (never pickles); a missing file says which stage makes it."""
    import numpy as np

    path = Path(path)
    try:
        return np.load(path, allow_pickle=False)
    except FileNotFoundError:
        raise UsageError(f"{path} not found; run `dvc repro` to build it") from None
    except ValueError as error:
        raise UsageError(f"{path} is not a valid .npy array ({error}); rerun `dvc repro --force`") from None


def load_json(path: str | Path):
    path = Path(path)
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise UsageError(f"{path} not found; run `dvc repro` to build it") from None
    except json.JSONDecodeError as error:
        raise UsageError(f"{path} is not valid JSON ({error}); rerun `dvc repro --force`") from None


def load_text(path: str | Path) -> str:
    """One text artifact (a report another stage wrote); a missing file says how to build it."""
    path = Path(path)
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise UsageError(f"{path} not found; run `dvc repro` to build it") from None
    except UnicodeDecodeError as error:
        raise UsageError(f"{path} is not UTF-8 text ({error}); rerun `dvc repro --force`") from None


SPLIT_PARTS = ("X_train", "y_train", "X_test", "y_test", "sources_test")


def load_split(folder: str | Path = "data/split") -> tuple[dict, dict]:
    """The split stage's arrays {X_train, y_train, X_test, y_test, sources_test} and its meta.json."""
    folder = Path(folder)
    return {part: load_array(folder / f"{part}.npy") for part in SPLIT_PARTS}, load_json(folder / "meta.json")
