"""Atomic outputs and checked inputs for the stage artifacts.

A stage collects all its outputs and hands them to ``write_outputs``: each is written to a temporary file
beside its target and renamed only once every one of them was written, so an interrupted or failing stage
leaves either the complete new set or nothing new.
"""

import contextlib
import io
import json
import os
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


def write_outputs(outputs: dict) -> None:
    """Write ``{path: content}`` all-or-nothing (temporary files, then renames). A folder that cannot be written
    (read-only, full, missing permissions) is a UsageError naming the file; no temporary file is left behind."""
    staged = []
    try:
        for path, content in outputs.items():
            path = Path(path)
            data = to_bytes(content)
            path.parent.mkdir(parents=True, exist_ok=True)
            temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
            staged.append((temporary, path))
            temporary.write_bytes(data)
        for temporary, path in staged:
            os.replace(temporary, path)
    except OSError as error:
        reason = error.strerror or str(error)
        raise UsageError(
            f"cannot write {path} ({reason}); make its folder writable or free some disk space, then rerun"
        ) from None
    finally:
        for temporary, _ in staged:
            with contextlib.suppress(OSError):  # a folder that refused the file refuses its removal too
                temporary.unlink(missing_ok=True)


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
