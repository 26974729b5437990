"""Where the photos come from: resolving the source, the pinned upstream archive, the content digest, and
reading every photo of a tree, a zip or the course's .npz into (images, labels).

A source is one of:
- ``upstream``: the Sign Language Digits Dataset archive pinned at UPSTREAM_COMMIT, downloaded once to a
  cache outside git and checked against UPSTREAM_DIGEST before every use;
- a folder: the repository root (holding ``Dataset/``) or the ``Dataset/`` folder itself, one folder per digit;
- a ``.zip`` of such a tree (read in place, member paths checked);
- a ``.npz`` in the course format: ``dataset`` (N, side²) pixels 0–255 and ``labels`` (N,) digit strings.

The environment variable SIGN_DIGITS_DATA, when set, takes the place of params.yaml's ``ingest.source``.

Limits, checked before anything is read (the dataset's largest photo is 1.6 MB, all 2,062 are 28 MB):
- a photo file, or zip member, of at most MAX_PHOTO_BYTES (from the zip's directory, before inflating it);
- at most MAX_SOURCE_BYTES of photos in all, and an .npz's arrays likewise;
- a photo of at most images.MAX_PIXELS pixels (from its header, before decoding it).
A symbolic link is followed; a broken one, or a loop, is an error naming it.
"""

import errno
import hashlib
import os
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path, PurePosixPath

from signdigits.choices import DIGITS
from signdigits.errors import UsageError

UPSTREAM_COMMIT = "4b09433ef9d5c60602e8805bb54b8aa2428527f8"
UPSTREAM_URL = f"https://github.com/ardamavi/Sign-Language-Digits-Dataset/archive/{UPSTREAM_COMMIT}.zip"
# SHA-256 over the 2,062 image files, see content_digest; the value of the dataset's SOURCE.md.
UPSTREAM_DIGEST = "672dbbabdb6220bbd7f5bf34ebf0d8d794e1dee117a0640eda155bdb75ce8cbf"
ENV_VARIABLE = "SIGN_DIGITS_DATA"
OFFLINE_HINT = (
    f"set {ENV_VARIABLE}=/path/to/Sign-Language-Digits-Dataset (a local copy: the folder, its Dataset/ "
    "folder, or the archive .zip) and rerun"
)
MAX_PHOTO_BYTES = 64 * 2**20
MAX_SOURCE_BYTES = 2 * 2**30


@dataclass(frozen=True)
class Photo:
    """One photo of the source: its digit, its path in digest form (``Dataset/<digit>/<file>``), its bytes."""

    label: str
    path: str
    read: Callable[[], bytes]


@dataclass(frozen=True)
class Source:
    kind: str  # "upstream", "tree", "zip" or "npz"
    location: str  # the URL, or the resolved path
    origin: str  # "params.yaml" or the environment variable
    given: str  # the source as written there

    def describe(self) -> dict:
        """What was read, for the ingest summary: the kind, and where it was named. A path given by the
        environment variable is this machine's and is left out (committed reports stay the same everywhere)."""
        if self.origin == ENV_VARIABLE:
            return {"kind": self.kind, "from": ENV_VARIABLE}
        return {"kind": self.kind, "from": "ingest.source", "location": self.given}


def resolve_source(param_source: str, environ=os.environ) -> Source:
    """The source to ingest: SIGN_DIGITS_DATA if set, else ``ingest.source``; checks that it exists."""
    override = environ.get(ENV_VARIABLE, "").strip()
    location, origin = (override, ENV_VARIABLE) if override else (param_source, "params.yaml")
    if location == "upstream":
        return Source("upstream", UPSTREAM_URL, origin, location)
    path = Path(location).expanduser()
    where = f"{ENV_VARIABLE}" if origin == ENV_VARIABLE else "ingest.source in params.yaml"
    if not path.exists():
        raise UsageError(
            f"dataset source {location} does not exist; fix {where} (a dataset folder, .zip or .npz, "
            "or 'upstream' to download)"
        )
    if path.is_dir():
        return Source("tree", str(path.resolve()), origin, location)
    suffix = path.suffix.lower()
    if suffix in (".zip", ".npz"):
        return Source(suffix[1:], str(path.resolve()), origin, location)
    raise UsageError(f"dataset source {location} is neither a folder, a .zip nor a .npz; fix {where}")


def _is_hidden(part: str) -> bool:
    return part.startswith(".") or part == "__MACOSX"


def _digit_root(relative_dirs: set[PurePosixPath]) -> PurePosixPath | None:
    """The folder holding the digit folders: '', 'Dataset', or either below one top-level folder (a zip)."""
    candidates = [PurePosixPath("."), PurePosixPath("Dataset")]
    tops = {p.parts[0] for p in relative_dirs if p.parts and not _is_hidden(p.parts[0])}
    if len(tops) == 1:
        (top,) = tops
        candidates += [PurePosixPath(top), PurePosixPath(top) / "Dataset"]
    for candidate in candidates:
        if any(candidate / d in relative_dirs for d in DIGITS):
            return candidate
    return None


def _select_photos(files: dict, dirs: set, where: str) -> list[tuple[str, str, object]]:
    """(digit, path in digest form, value) of the photos of the digit folders among ``files`` ({relative path:
    value}), sorted by digest path."""
    root = _digit_root(dirs)
    if root is None:
        raise UsageError(f"{where} has no digit folders (0 … 9); point at the dataset folder or its Dataset/ folder")
    photos, per_digit = [], {d: 0 for d in DIGITS if root / d in dirs}
    for path, value in files.items():
        relative = PurePosixPath(path).relative_to(root) if PurePosixPath(path).is_relative_to(root) else None
        if relative is None or len(relative.parts) != 2 or relative.parts[0] not in DIGITS:
            continue
        if any(_is_hidden(part) for part in relative.parts):
            continue
        digit = relative.parts[0]
        per_digit[digit] += 1
        photos.append((digit, f"Dataset/{relative}", value))
    empty = [d for d, count in per_digit.items() if count == 0]
    if empty:
        raise UsageError(f"digit folder {empty[0]} in {where} holds no photos; add its photos or remove the folder")
    return sorted(photos, key=lambda photo: photo[1])


def _check_size(size: int, name: str) -> None:
    if size > MAX_PHOTO_BYTES:
        raise UsageError(
            f"{name} is {size / 2**20:.0f} MiB, more than the limit of {MAX_PHOTO_BYTES // 2**20} MiB for one "
            "photo; remove it or replace it with a smaller copy"
        )


def _read_file(path: Path) -> bytes:
    """A photo file's bytes, its size checked first; an unreadable file or a bad symbolic link is a UsageError."""
    try:
        _check_size(path.stat().st_size, str(path))
        return path.read_bytes()
    except FileNotFoundError:
        raise UsageError(f"{path} is a broken symbolic link (or vanished); remove it or point it at a photo") from None
    except OSError as error:
        if error.errno == errno.ELOOP:
            raise UsageError(f"{path} is a symbolic link loop; remove it or point it at a photo") from None
        raise UsageError(f"cannot read {path} ({error.strerror}); check its permissions") from None


def list_tree(root: Path) -> list[Photo]:
    """The photos of a folder tree. Symbolic links to files and folders are followed; a folder reached twice
    (a link back up the tree) is an error instead of an endless walk."""
    files, dirs, seen = {}, set(), set()

    def refuse(error: OSError):
        raise UsageError(f"cannot read the folder {error.filename} ({error.strerror}); check its permissions")

    for dirpath, dirnames, filenames in os.walk(root, followlinks=True, onerror=refuse):
        real = os.path.realpath(dirpath)
        if real in seen:
            raise UsageError(f"{dirpath} leads back to a folder already read (a symbolic link loop); remove the link")
        seen.add(real)
        dirnames[:] = sorted(d for d in dirnames if not _is_hidden(d))
        relative_dir = PurePosixPath(Path(dirpath).relative_to(root).as_posix())
        for name in dirnames:
            dirs.add(relative_dir / name)
        for name in filenames:
            files[str(relative_dir / name)] = partial(_read_file, Path(dirpath) / name)
    return [Photo(digit, path, read) for digit, path, read in _select_photos(files, dirs, str(root))]


def _safe_member(name: str, archive: Path) -> PurePosixPath:
    path = PurePosixPath(name.replace("\\", "/"))
    if path.is_absolute() or ".." in path.parts or (path.parts and ":" in path.parts[0]):
        raise UsageError(
            f"{archive}: member '{name}' would escape the extraction folder; the archive is unsafe, "
            "use a trusted copy of the dataset"
        )
    return path


def list_zip(archive: Path, fix: str = "download or zip it again") -> list[Photo]:
    """The photos of a zip, read in one pass while it is open. Every member path is checked first, and every
    photo's size as the zip's directory states it (reading stops there: zipfile checks the length and CRC)."""
    try:
        with zipfile.ZipFile(archive) as opened:
            members = {_safe_member(m.filename, archive): m for m in opened.infolist()}
            dirs = {parent for path in members for parent in list(path.parents)[:-1]}
            dirs |= {path for path, member in members.items() if member.is_dir()}
            files = {str(path): m for path, m in members.items() if not m.is_dir()}
            selected = _select_photos(files, dirs, str(archive))
            for _, _, info in selected:
                _check_size(info.file_size, f"{archive}: member {info.filename}")
                if info.flag_bits & 0x1:
                    raise UsageError(
                        f"{archive}: member {info.filename} is encrypted; unzip it with its password and point "
                        f"{ENV_VARIABLE} at the folder"
                    )
            _check_total(sum(info.file_size for _, _, info in selected), str(archive))
            return [Photo(digit, path, _constant(opened.read(info))) for digit, path, info in selected]
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, EOFError, NotImplementedError) as error:
        raise UsageError(f"{archive} is not a readable zip ({error}); {fix}") from None


def _check_total(size: int, where: str) -> None:
    if size > MAX_SOURCE_BYTES:
        raise UsageError(
            f"{where} holds {size / 2**30:.1f} GiB of photos, more than the limit of "
            f"{MAX_SOURCE_BYTES // 2**30} GiB; use a smaller dataset"
        )


def _constant(content: bytes):
    return lambda: content


def content_digest(photos: list[Photo], contents: list[bytes]) -> str:
    """SHA-256 over the files sorted by path, feeding ``path + NUL + sha256(bytes)`` for each (SOURCE.md)."""
    digest = hashlib.sha256()
    for photo, content in sorted(zip(photos, contents), key=lambda pair: pair[0].path):
        digest.update(photo.path.encode() + b"\0" + hashlib.sha256(content).digest())
    return digest.hexdigest()


def cache_dir(environ=os.environ) -> Path:
    base = environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "signdigits"


def download(url: str, target: Path) -> Path:
    """Download ``url`` to ``target`` once (a .part file renamed when complete), with a progress bar on stderr
    when it is a terminal."""
    import urllib.error  # here, not at the top: the source stage, run on every `dvc repro`, never downloads
    import urllib.request

    from tqdm import tqdm

    if target.exists():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(target.name + ".part")
    try:
        with urllib.request.urlopen(url, timeout=60) as response, open(partial, "wb") as out:
            total = int(response.headers.get("Content-Length") or 0) or None
            # disable=None: quiet when stderr is not a terminal (a log, CI)
            with tqdm(total=total, unit="B", unit_scale=True, desc="downloading dataset", disable=None) as bar:
                while chunk := response.read(1 << 16):
                    out.write(chunk)
                    bar.update(len(chunk))
    except (urllib.error.URLError, OSError, ValueError) as error:
        partial.unlink(missing_ok=True)
        reason = getattr(error, "reason", error)
        raise UsageError(f"cannot download the dataset from {url} ({reason}); offline? {OFFLINE_HINT}") from None
    os.replace(partial, target)
    return target


def upstream_archive(environ=os.environ) -> Path:
    """The pinned upstream archive in the cache, downloaded if absent."""
    target = cache_dir(environ) / f"Sign-Language-Digits-Dataset-{UPSTREAM_COMMIT}.zip"
    return download(UPSTREAM_URL, target)


def list_photos(source: Source, environ=os.environ) -> tuple[list[Photo], Path | None]:
    """The photos of a tree, zip or upstream source (npz sources are read by ``read_npz``)."""
    if source.kind == "tree":
        return list_tree(Path(source.location)), None
    if source.kind == "zip":
        return list_zip(Path(source.location)), Path(source.location)
    if source.kind == "upstream":
        archive = upstream_archive(environ)
        # the download never replaces a file it finds: a damaged one must be deleted first
        return list_zip(archive, f"delete it and rerun to download it again, or {OFFLINE_HINT}"), archive
    raise ValueError(source.kind)


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as stream:
        while chunk := stream.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def fingerprint(source: Source) -> str:
    """What identifies the source's content, cheaply: the pinned digest for upstream (checked at ingest),
    the content digest of a tree or zip, the file's SHA-256 for an npz."""
    if source.kind == "upstream":
        return UPSTREAM_DIGEST
    if source.kind == "npz":
        return file_sha256(Path(source.location))
    photos, _ = list_photos(source)
    return content_digest(photos, read_contents(photos, source.location))


def read_contents(photos: list[Photo], where: str) -> list[bytes]:
    """Every photo's bytes, in order, stopping once they add up to more than MAX_SOURCE_BYTES."""
    contents, total = [], 0
    for photo in photos:
        contents.append(photo.read())
        total += len(contents[-1])
        _check_total(total, where)
    return contents


def read_npz(path: Path, image_size: int):
    """Images (N, image_size²) uint8, labels (N,) str and sources (N,) str from an .npz in the course format; a
    photo's source is ``npz:<its row in the file>``."""
    import numpy as np

    from signdigits.images import to_network_input

    fix = "expected 'dataset' (N, side²) pixel values 0–255 and 'labels' (N,) digit strings '0'…'9'"
    try:
        with zipfile.ZipFile(path) as opened:  # an .npz is a zip of .npy files: their sizes, before loading any
            _check_total(sum(info.file_size for info in opened.infolist()), str(path))
        with np.load(path, allow_pickle=False) as archive:
            missing = [key for key in ("dataset", "labels") if key not in archive.files]
            if missing:
                raise UsageError(
                    f"{path} has no '{missing[0]}' array (it has {', '.join(archive.files) or 'none'}); {fix}"
                )
            pixels, labels = archive["dataset"], archive["labels"]
    except UsageError:
        raise
    except (ValueError, OSError, zipfile.BadZipFile, EOFError) as error:
        raise UsageError(f"{path} is not a readable .npz ({error}); {fix}") from None
    side = int(round(np.sqrt(pixels.shape[1]))) if pixels.ndim == 2 else 0
    if pixels.ndim != 2 or side * side != pixels.shape[1] or side == 0 or pixels.shape[0] == 0:
        raise UsageError(f"{path}: 'dataset' has shape {pixels.shape}, not (N, side²); {fix}")
    if labels.shape != (pixels.shape[0],):
        raise UsageError(f"{path}: 'labels' has shape {labels.shape}, 'dataset' has {pixels.shape[0]} rows; {fix}")
    if pixels.dtype.kind not in "uif" or not np.all(np.isfinite(pixels)) or pixels.min() < 0 or pixels.max() > 255:
        raise UsageError(f"{path}: 'dataset' holds values outside 0–255 (or non-numbers); {fix}")
    labels = labels.astype(str) if labels.dtype.kind in "iuU" else labels
    bad = sorted(set(labels.tolist()) - set(DIGITS)) if labels.dtype.kind == "U" else [str(labels.dtype)]
    if bad:
        raise UsageError(f"{path}: 'labels' holds {bad[0]!r}, not a digit '0'…'9'; {fix}")
    images = np.rint(pixels).astype(np.uint8).reshape(-1, side, side)
    if side != image_size:
        from PIL import Image

        images = np.stack([to_network_input(Image.fromarray(image, "L"), image_size) for image in images])
    order = np.argsort(labels, kind="stable")  # by digit, keeping the file's order within a digit
    sources = np.array([f"npz:{row}" for row in order], dtype=str)
    return images.reshape(len(images), -1)[order], labels[order].astype("<U1"), sources


def ingest(source: Source, image_size: int, environ=os.environ):
    """Every photo of ``source`` as (images uint8 (N, image_size²), labels (N,) str, sources (N,) str, summary
    dict). A photo's source names it inside the dataset, never on this machine: its path in digest form
    (``Dataset/7/IMG_5874.JPG``) or, from an .npz, ``npz:<row>``; a fixed-width unicode array, saved without
    pickle."""
    import numpy as np

    from signdigits.images import read_photos

    if source.kind == "npz":
        images, labels, sources = read_npz(Path(source.location), image_size)
        digest = file_sha256(Path(source.location))
    else:
        photos, archive = list_photos(source, environ)
        contents = read_contents(photos, source.location)
        digest = content_digest(photos, contents)
        if source.kind == "upstream" and digest != UPSTREAM_DIGEST:
            raise UsageError(
                f"the downloaded archive {archive} does not match the pinned content digest "
                f"(got {digest[:12]}…, expected {UPSTREAM_DIGEST[:12]}…); delete it and rerun, or {OFFLINE_HINT}"
            )
        images = read_photos(contents, [photo.path for photo in photos], image_size)
        labels = np.array([photo.label for photo in photos], dtype="<U1")
        sources = np.array([photo.path for photo in photos], dtype=str)
    classes, counts = np.unique(labels, return_counts=True)
    summary = {
        "source": source.describe(),
        "content_sha256": digest,
        "matches_pinned_upstream": digest == UPSTREAM_DIGEST,
        "image_size": image_size,
        "images": int(len(labels)),
        "images_per_class": {str(c): int(n) for c, n in zip(classes, counts)},
    }
    return images, labels, sources, summary
