"""A hostile user against a built project: bad params, sources, models, photos and file systems.

Every case runs the command a user would (a stage as DVC runs it, `signdigits predict`, or `dvc repro`) in a
private copy of a tiny project that has been built completely, and checks three things: exit status 1, one line
``error: …`` on stderr saying what is wrong, and every artifact the build left (data/, models/, reports/, dvc.lock)
byte for byte as it was, with no temporary file left behind.
"""

import io
import json
import os
import re
import shutil
import struct
import subprocess
import sys
import tempfile
import threading
import time
import zipfile
import zlib
from pathlib import Path

import numpy as np
import pytest
import yaml

# --- params: the source stage checks all of params.yaml, before `dvc repro` removes anything ----------------------
# Each value, key and combination check has its home in test_params.py (in-process); here, one of each kind of
# mistake shows that the first stage stops on it, and the file-level hazards that only a real file shows.
PARAMS_CASES = {
    "epochs 0": ("epochs: 60", "epochs: 0", "train.epochs = 0 is not allowed; expected an integer ≥ 1"),
    "binary garbage": (None, b"\xff\xfe\x00garbage", "is not valid YAML"),
    "anchor bomb": (
        None,
        "a: &a [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n"
        + "".join(f"{c}: &{c} [{', '.join([f'*{p}'] * 9)}]\n" for p, c in zip("abcdefgh", "bcdefghi")),
        "params.yaml: line 1 defines anchor &a; write each value out, without anchors, aliases or deep nesting",
    ),
    "alias": ("seed: 0", "seed: *s", "refers to anchor &s (*s)"),
    "nested 10,000 deep": (None, "train: " + "[" * 10000 + "]" * 10000, "line 1 nests more than 8 levels deep"),
    "1 MB of comments": (None, "# padding\n" * 100_000, "params.yaml is larger than the limit of 64 KiB"),
}


@pytest.mark.parametrize("case", PARAMS_CASES)
def test_bad_params_stop_the_first_stage(case, tiny_copy, run_stage, artifacts, failed_cleanly):
    old, new, message = PARAMS_CASES[case]
    path = tiny_copy / "params.yaml"
    document = yaml.safe_load(path.read_text())
    path.write_text(yaml.safe_dump(document, sort_keys=False, default_flow_style=None))  # lists on one line
    if old is None:
        path.write_bytes(new if isinstance(new, bytes) else new.encode())
    else:
        text = path.read_text()
        assert old in text, old
        path.write_text(text.replace(old, new, 1))
    before = artifacts(tiny_copy)
    failed_cleanly(run_stage(tiny_copy, "source"), message, tiny_copy, before)


def test_params_file_missing(tiny_copy, run_stage, artifacts, failed_cleanly):
    (tiny_copy / "params.yaml").unlink()
    before = artifacts(tiny_copy)
    message = "params.yaml not found; run from the project root"
    failed_cleanly(run_stage(tiny_copy, "source"), message, tiny_copy, before)


@pytest.mark.parametrize(
    "case, message",
    [
        ("folder", "params.yaml is a folder; make it the project's parameter file"),
        ("fifo", "params.yaml is a named pipe (FIFO), not a regular file"),
        ("/dev/zero", "params.yaml is a device, not a regular file"),
    ],
)
def test_params_file_that_is_not_a_file(case, message, tiny_copy, child_env, artifacts, failed_cleanly):
    """Read only a regular file: a FIFO with no writer would block the stage, /dev/zero would never end."""
    path = tiny_copy / "params.yaml"
    path.unlink()
    if case == "folder":
        path.mkdir()
    elif case == "fifo":
        os.mkfifo(path)
    else:
        path.symlink_to("/dev/zero")
    before = artifacts(tiny_copy)
    result = subprocess.run(
        [sys.executable, "stages/source.py"],
        cwd=tiny_copy,
        env=child_env(tiny_copy),
        capture_output=True,
        text=True,
        timeout=60,
    )
    failed_cleanly(result, message, tiny_copy, before)


# --- sources: photo trees, zips and .npz files that try to break ingest -----------------------------------------------
def png_header(width, height) -> bytes:
    """A PNG that declares width × height pixels; its data is a few bytes (only its header is ever read)."""

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)  # 8-bit grayscale
    data = chunk(b"IDAT", zlib.compress(b"\0" * 64))
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + data + chunk(b"IEND", b"")


def patch_zip(archive, central_offset, value_format, value):
    """Overwrite one field of every central-directory and local header of ``archive`` (flag bits, method)."""
    data = bytearray(archive.read_bytes())
    for signature, offset in ((b"PK\x01\x02", central_offset), (b"PK\x03\x04", central_offset - 2)):
        for match in re.finditer(re.escape(signature), bytes(data)):
            struct.pack_into(value_format, data, match.start() + offset, value)
    archive.write_bytes(bytes(data))


@pytest.fixture(scope="session")
def zip_bomb(tmp_path_factory, make_tree):
    """A zip of about 5 MB holding the tiny tree's photos and one 1 GiB member (zeros) among the 0 photos."""
    base = tmp_path_factory.mktemp("bomb")
    tree = make_tree(base / "tree", digits=("0", "5"), per_digit=2)
    archive = base / "bomb.zip"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as out:
        for path in sorted(tree.rglob("*")):
            out.write(path, path.relative_to(tree).as_posix())
        with out.open("Dataset/0/IMG_huge.JPG", "w", force_zip64=True) as member:
            zeros = bytes(2**20)
            for _ in range(1024):
                member.write(zeros)
    return archive


def break_tree(case, tree, tmp_path, zip_tree):
    """Make the hostile source of ``case`` from a private copy of the tiny tree; return its path."""
    photos = tree / "Dataset" / "5"
    if case == "truncated JPEG":
        good = (tree / "Dataset" / "0" / "IMG_0.JPG").read_bytes()
        (photos / "IMG_cut.JPG").write_bytes(good[: len(good) // 3])
    elif case == "empty photo":
        (photos / "IMG_empty.JPG").write_bytes(b"")
    elif case == "decompression bomb":
        (photos / "IMG_bomb.png").write_bytes(png_header(20000, 20000))
    elif case == "too many pixels":
        (photos / "IMG_big.png").write_bytes(png_header(8000, 8000))
    elif case == "huge file":
        with open(photos / "IMG_huge.JPG", "wb") as sparse:
            sparse.truncate(65 * 2**20)  # sparse: takes no disk space
    elif case == "broken symlink":
        (photos / "IMG_link.JPG").symlink_to(tree / "nowhere.JPG")
    elif case == "symlink to itself":
        (photos / "IMG_self.JPG").symlink_to(photos / "IMG_self.JPG")
    elif case == "folder symlink loop":
        (photos / "again").symlink_to(tree / "Dataset")
    elif case == "missing source":
        return tmp_path / "no-such-folder"
    elif case == "not a dataset file":
        (tmp_path / "notes.txt").write_text("photos?")
        return tmp_path / "notes.txt"
    elif case.startswith("zip"):
        archive = zip_tree(tree, tmp_path / "data.zip")
        if case == "zip not a zip":
            archive.write_text("this is text")
        elif case == "zip encrypted member":
            patch_zip(archive, 8, "<H", 1)  # general-purpose flag bit 0: encrypted
        elif case == "zip unknown compression":
            patch_zip(archive, 10, "<H", 99)  # AES: zipfile cannot inflate it
        return archive
    elif case.startswith("npz"):
        path = tmp_path / "course.npz"
        labels = np.array(["0", "5", "0", "5"])
        if case == "npz no columns":
            np.savez(path, dataset=np.zeros((4, 0)), labels=labels)
        elif case == "npz is a .npy":
            np.save(tmp_path / "course.npy", np.zeros((4, 64)))
            (tmp_path / "course.npy").rename(path)
        return path
    return tree


SOURCE_CASES = {
    "truncated JPEG": "Dataset/5/IMG_cut.JPG is corrupt or not an image",
    "empty photo": "Dataset/5/IMG_empty.JPG is corrupt or not an image",
    "decompression bomb": "Dataset/5/IMG_bomb.png is larger than the limit of 50,000,000 pixels; shrink it",
    "too many pixels": "Dataset/5/IMG_big.png is 8000×8000 pixels, more than the limit of 50,000,000; shrink it",
    "huge file": "IMG_huge.JPG is 65 MiB, more than the limit of 64 MiB for one photo",
    "broken symlink": "IMG_link.JPG is a broken symbolic link (or vanished); remove it or point it at a photo",
    "symlink to itself": "IMG_self.JPG is a symbolic link loop; remove it",
    "folder symlink loop": "leads back to a folder already read (a symbolic link loop); remove the link",
    "missing source": "no-such-folder does not exist; fix SIGN_DIGITS_DATA",
    "not a dataset file": "notes.txt is neither a folder, a .zip nor a .npz; fix SIGN_DIGITS_DATA",
    "zip not a zip": "data.zip is not a readable zip",
    "zip encrypted member": "is encrypted; unzip it with its password and point SIGN_DIGITS_DATA at the folder",
    "zip unknown compression": "data.zip is not a readable zip (That compression method is not supported)",
    "npz no columns": "'dataset' has shape (4, 0), not (N, side²)",
    "npz is a .npy": "course.npz is not a readable .npz (File is not a zip file)",
}


@pytest.mark.parametrize("case", SOURCE_CASES)
def test_bad_sources_stop_ingest(case, tiny_copy, tiny_tree, tmp_path, run_stage, zip_tree, artifacts, failed_cleanly):
    source = break_tree(case, tiny_tree, tmp_path, zip_tree)
    before = artifacts(tiny_copy)
    failed_cleanly(run_stage(tiny_copy, "ingest", SIGN_DIGITS_DATA=source), SOURCE_CASES[case], tiny_copy, before)


def test_zip_bomb_is_refused_before_inflating(zip_bomb, tiny_copy, run_stage, artifacts, failed_cleanly):
    """The 1 GiB member is refused from the size the zip's directory states: the message says so, and the
    source stage, which digests every photo's bytes, fails the same way before ingest would run."""
    assert zip_bomb.stat().st_size < 8 * 2**20
    before = artifacts(tiny_copy)
    message = "bomb.zip: member Dataset/0/IMG_huge.JPG is 1024 MiB, more than the limit of 64 MiB for one photo"
    for stage in ("source", "ingest"):
        failed_cleanly(run_stage(tiny_copy, stage, SIGN_DIGITS_DATA=zip_bomb), message, tiny_copy, before)


def test_damaged_cached_download_says_to_delete_it(
    tiny_copy, tmp_path, run_stage, set_params, artifacts, failed_cleanly
):
    from signdigits.dataset import UPSTREAM_COMMIT

    cache = tmp_path / "cache"
    archive = cache / "signdigits" / f"Sign-Language-Digits-Dataset-{UPSTREAM_COMMIT}.zip"
    archive.parent.mkdir(parents=True)
    archive.write_bytes(b"PK\x03\x04 half a download")
    set_params(tiny_copy, ingest={"source": "upstream"})
    before = artifacts(tiny_copy)
    result = run_stage(tiny_copy, "ingest", XDG_CACHE_HOME=cache)
    failed_cleanly(result, f"{archive} is not a readable zip", tiny_copy, before)
    assert "delete it and rerun to download it again" in result.stderr


# --- the file system: outputs that cannot be written, inputs that are gone or damaged -----------------------------
FAILING_DISK = """
import errno, os, pathlib
_write, _unlink = pathlib.Path.write_bytes, pathlib.Path.unlink
CODE = errno.{code}

def write_bytes(self, data):
    if self.name.endswith(".tmp"):
        if CODE == errno.ENOSPC:
            _write(self, data[: len(data) // 2])  # half written when the disk fills up
        raise OSError(CODE, os.strerror(CODE), str(self))
    return _write(self, data)

def unlink(self, missing_ok=False):
    if CODE == errno.EROFS:  # a read-only file system refuses the clean-up too
        raise OSError(CODE, os.strerror(CODE), str(self))
    return _unlink(self, missing_ok=missing_ok)

pathlib.Path.write_bytes, pathlib.Path.unlink = write_bytes, unlink
"""


@pytest.mark.parametrize(
    "code, message",
    [
        ("ENOSPC", "cannot write models/model.npz (No space left on device); make its folder writable or free"),
        ("EROFS", "cannot write models/model.npz (Read-only file system)"),
        ("EACCES", "cannot write models/model.npz (Permission denied)"),
    ],
)
def test_unwritable_outputs(code, message, tiny_copy, tmp_path, run_stage, set_params, artifacts, failed_cleanly):
    """A full disk, a read-only file system, a folder without write permission (emulated in the stage's own
    process through sitecustomize, since the tests may run as root): one line, the old model intact."""
    (tmp_path / "disk").mkdir()
    (tmp_path / "disk" / "sitecustomize.py").write_text(FAILING_DISK.format(code=code))
    set_params(tiny_copy, train={"epochs": 3})
    before = artifacts(tiny_copy)
    result = run_stage(tiny_copy, "train", PYTHONPATH=f"{tiny_copy}{os.pathsep}{tmp_path / 'disk'}")
    failed_cleanly(result, message, tiny_copy, before)


def test_output_folder_taken_by_a_file(tiny_copy, run_stage, artifacts, failed_cleanly):
    import shutil

    shutil.rmtree(tiny_copy / "reports" / "figures")
    (tiny_copy / "reports" / "figures").write_text("not a folder")
    before = artifacts(tiny_copy)
    failed_cleanly(run_stage(tiny_copy, "evaluate"), "cannot write reports/figures/", tiny_copy, before)


def test_history_folder_that_cannot_be_written(tiny_copy, run_stage, artifacts, failed_cleanly):
    """DVCLive writes the crossval history itself: a file where its plots/ folder should be is one line, and the
    previous history is still there."""
    plots = tiny_copy / "reports" / "history" / "plots"
    shutil.rmtree(plots)
    plots.write_text("not a folder")
    before = artifacts(tiny_copy)
    failed_cleanly(run_stage(tiny_copy, "crossval"), "cannot write reports/history/", tiny_copy, before)


def test_missing_and_damaged_inputs(tiny_copy, run_stage, artifacts, failed_cleanly):
    (tiny_copy / "data" / "split" / "X_train.npy").write_bytes(b"\x93NUMPY garbage")
    before = artifacts(tiny_copy)
    failed_cleanly(run_stage(tiny_copy, "train"), "data/split/X_train.npy is not a valid .npy array", tiny_copy, before)
    (tiny_copy / "data" / "filtered" / "images.npy").unlink()
    before = artifacts(tiny_copy)
    message = "data/filtered/images.npy not found; run `dvc repro`"
    failed_cleanly(run_stage(tiny_copy, "normalize"), message, tiny_copy, before)


# --- predict: one bad photo among good ones, bad models ----------------------------------------------------------
def predict(project, *args):
    return subprocess.run(
        [sys.executable, "-m", "signdigits", "predict", *map(str, args)],
        capture_output=True,
        text=True,
        cwd=project,
        env={**os.environ, "PYTHONPATH": str(project)},
        timeout=120,  # a photo that hangs predict fails the test
    )


def bad_photo(case, folder):
    path = folder / {"folder": "a_folder", "missing": "absent.jpg", "bomb": "bomb.png"}.get(case, f"{case}.jpg")
    if case == "folder":
        path.mkdir()
    elif case == "text":
        path.write_text("not an image")
    elif case == "empty":
        path.write_bytes(b"")
    elif case == "bomb":
        path.write_bytes(png_header(20000, 20000))
    elif case == "loop":
        path.symlink_to(path)
    elif case == "fifo":
        os.mkfifo(path)  # nobody writes to it: a plain open would wait forever
    elif case == "device":
        path.symlink_to("/dev/zero")  # endless zeros
    elif case == "huge":
        with open(path, "wb") as sparse:
            sparse.truncate(65 * 2**20)
    return path


PREDICT_CASES = {
    "missing": "absent.jpg: no such file; check the path",
    "text": "text.jpg is corrupt or not an image",
    "empty": "empty.jpg is corrupt or not an image",
    "bomb": "bomb.png is larger than the limit of 50,000,000 pixels; shrink it",
    "folder": "a_folder is a folder, not a photo",
    "loop": "loop.jpg is corrupt or not an image",
    "fifo": "fifo.jpg is a named pipe (FIFO), not a regular file; give a photo file (JPEG or PNG)",
    "device": "device.jpg is a device, not a regular file",
    "huge": "huge.jpg is more than the limit of 64 MiB for one photo; shrink it",
}


@pytest.mark.parametrize("case", PREDICT_CASES)
def test_predict_reports_a_bad_photo_and_predicts_the_rest(case, tiny_copy, tiny_tree, tmp_path, artifacts):
    good = [tiny_tree / "Dataset" / "0" / "IMG_0.JPG", tiny_tree / "Dataset" / "5" / "img_1.png"]
    bad = bad_photo(case, tmp_path)
    before = artifacts(tiny_copy)
    result = predict(tiny_copy, good[0], bad, good[1])
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [f"error: {result.stderr.split('error: ')[1].strip()}"]
    assert PREDICT_CASES[case] in result.stderr
    rows = [line.split("\t") for line in result.stdout.splitlines()]
    assert [(row[0], row[1]) for row in rows] == [(str(good[0]), "0"), (str(good[1]), "5")]
    as_json = predict(tiny_copy, "--json", good[0], bad, good[1])
    assert as_json.returncode == 1 and as_json.stderr == result.stderr
    entries = json.loads(as_json.stdout)
    assert [entry["path"] for entry in entries] == [str(good[0]), str(bad), str(good[1])]
    assert PREDICT_CASES[case] in entries[1]["error"] and "digit" not in entries[1]
    assert [entries[0]["digit"], entries[2]["digit"]] == ["0", "5"]
    assert artifacts(tiny_copy) == before


def jpeg_with_exif() -> bytes:
    """A 64 × 64 JPEG with the EXIF block a phone writes: orientation, camera, dates, exposure, GPS."""
    from PIL import Image

    rng = np.random.default_rng(0)
    image = Image.fromarray(rng.integers(0, 255, (64, 64, 3), dtype=np.uint8))
    exif = Image.Exif()
    exif.update({0x0112: 6, 0x010F: "Apple", 0x0110: "iPhone", 0x0131: "17.0", 0x0132: "2024:01:01 00:00:00"})
    exif[0x011A] = 72.0
    exif.get_ifd(0x8825).update({1: "N", 2: (52.0, 31.0, 12.5)})  # GPS
    exif.get_ifd(0x8769).update({0x9003: "2024:01:01 00:00:00", 0x829A: 0.01})  # Exif: date, exposure
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=90, exif=exif)
    return buffer.getvalue()


def test_fuzzed_exif_gives_a_prediction_or_one_line(tiny_copy, tiny_tree, tmp_path, artifacts):
    """600 mutations (1 to 4 random bytes each, fixed seed) of a JPEG's EXIF block, predicted in one batch between
    two good photos: each photo is a prediction or one `error:` line, in order, and nothing else is printed (no
    traceback, no Pillow warning)."""
    good = tiny_tree / "Dataset" / "0" / "IMG_0.JPG"
    data = jpeg_with_exif()
    start = data.index(b"Exif\0\0") + 6
    length = int.from_bytes(data[start - 8 : start - 6], "big") - 8  # the APP1 segment's length, less "Exif\0\0"
    rng = np.random.default_rng(24)
    photos = [good]
    for i in range(600):
        mutated = bytearray(data)
        for _ in range(rng.integers(1, 5)):
            mutated[start + int(rng.integers(0, length))] = int(rng.integers(0, 256))
        photos.append(tmp_path / f"fuzz{i:03d}.jpg")
        photos[-1].write_bytes(bytes(mutated))
    photos.append(good)
    before = artifacts(tiny_copy)
    started = time.monotonic()
    result = predict(tiny_copy, *photos)
    assert time.monotonic() - started < 30
    predicted = [line.split("\t")[0] for line in result.stdout.splitlines()]
    failed = [line.split("error: ", 1)[1].split(" ")[0] for line in result.stderr.splitlines()]
    assert all(line.startswith("error: ") for line in result.stderr.splitlines()), result.stderr[:2000]
    assert sorted(predicted + failed) == sorted(map(str, photos)), result.stderr[:2000]
    assert predicted[0] == predicted[-1] == str(good)  # the batch went on to the last photo
    assert failed and result.returncode == 1  # the seed does hit what Pillow cannot parse
    assert artifacts(tiny_copy) == before


@pytest.mark.parametrize(
    "case, message",
    [
        ("missing model", "models/none.npz"),
        ("model is a photo", "is not a readable model file"),
        ("truncated model", "is not a readable model file"),
    ],
)
def test_predict_with_a_bad_model_predicts_nothing(case, message, tiny_copy, tiny_tree, artifacts, failed_cleanly):
    photo = tiny_tree / "Dataset" / "0" / "IMG_0.JPG"
    model = tiny_copy / "models" / "model.npz"
    if case == "missing model":
        model = tiny_copy / "models" / "none.npz"
    elif case == "model is a photo":
        model = tiny_copy / "photo.npz"
        model.write_bytes(photo.read_bytes())
    else:
        model = tiny_copy / "cut.npz"
        model.write_bytes((tiny_copy / "models" / "model.npz").read_bytes()[:200])
    before = artifacts(tiny_copy)
    result = predict(tiny_copy, "--model", model, photo)
    failed_cleanly(result, message, tiny_copy, before)
    assert result.stdout == ""


# Runs a command and writes its peak resident set (KiB). The command is this small process's child: a child forked
# from the test process itself starts with the test process's own peak as its ru_maxrss (Linux copies it at fork and
# keeps it across exec), which after the suite's trainings is hundreds of MB that the command never used.
PEAK_OF_CHILD = (
    "import resource, subprocess, sys; code = subprocess.run(sys.argv[2:]).returncode; "
    "open(sys.argv[1], 'w').write(str(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)); "
    "sys.exit(code if code >= 0 else 128 - code)"
)


def measured(args, cwd, env, timeout=60):
    """Run ``args``; (CompletedProcess, peak resident memory in bytes of that process alone)."""
    with tempfile.TemporaryDirectory() as folder:
        out, err, peak = (Path(folder) / name for name in ("out", "err", "peak"))
        with open(out, "wb") as stdout, open(err, "wb") as stderr:
            wrapped = [sys.executable, "-c", PEAK_OF_CHILD, str(peak), *map(str, args)]
            process = subprocess.Popen(wrapped, cwd=cwd, env=env, stdout=stdout, stderr=stderr, start_new_session=True)
            timer = threading.Timer(timeout, os.killpg, (process.pid, 9))  # a hang fails the test, not the suite
            timer.start()
            try:
                process.wait()
            finally:
                timer.cancel()
        result = subprocess.CompletedProcess(args, process.returncode, out.read_text(), err.read_text())
        kib = int(peak.read_text()) if peak.exists() else float("inf")
    return result, kib * 1024  # ru_maxrss is in KiB on Linux


def npz(path, members, deflated=()):
    """A zip of .npy members {name: array, or the member's raw bytes}; ``deflated`` names the compressed ones."""
    with zipfile.ZipFile(path, "w") as out:
        for name, content in members.items():
            if isinstance(content, np.ndarray):
                buffer = io.BytesIO()
                np.lib.format.write_array(buffer, content, allow_pickle=False)
                content = buffer.getvalue()
            method = zipfile.ZIP_DEFLATED if name in deflated else zipfile.ZIP_STORED
            out.writestr(f"{name}.npy", content, compress_type=method)
    return path


def hostile_model(case, good, folder):
    """The hostile model file of ``case``, made from the arrays of the good model ``good``; its path."""
    path = folder / f"{case.replace(' ', '_').replace('/', '_')}.npz"
    with np.load(good, allow_pickle=False) as arrays:
        members = {name: arrays[name] for name in arrays.files}
    header = json.loads(str(members["header"]))
    if case.startswith("pixel_scale"):
        header["metadata"]["pixel_scale"] = {"pixel_scale 1e-300": 1e-300, "pixel_scale 1e308": 1e308}.get(case)
        text = json.dumps(header)
        if case == "pixel_scale 10**400":
            text = text.replace('"pixel_scale": null', '"pixel_scale": 1' + "0" * 400)
        members["header"] = np.array(text)
    elif case == "deflated W1 of 1 GB":
        # a consistent architecture of 2,000,000 inputs: its W1, 1 GB of zeros, deflated to about 1 MB
        n_inputs, n_hidden, dtype = 2_000_000, members["W1"].shape[1], members["W1"].dtype
        header["architecture"]["n_inputs"] = n_inputs
        members["header"] = np.array(json.dumps(header))
        members["input_mean"] = np.zeros(n_inputs, dtype)
        with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as out:
            for name, content in members.items():
                if name != "W1":
                    out.writestr(f"{name}.npy", npz_member(content))
            with out.open("W1.npy", "w", force_zip64=True) as member:
                shape = (n_inputs, n_hidden)
                np.lib.format.write_array_header_1_0(
                    member, {"descr": dtype.str, "fortran_order": False, "shape": shape}
                )
                zeros = bytes(n_hidden * dtype.itemsize * 10_000)
                for _ in range(n_inputs // 10_000):
                    member.write(zeros)
        return path
    elif case == "shape of 1.86 TiB":
        # an architecture of 2**20 inputs and 2**19 hidden units, and .npy headers that agree with it (W1 alone
        # 2**39 floats) on members of a few bytes each
        header["architecture"] |= {"n_inputs": 2**20, "n_hidden": 2**19}
        members["header"] = np.array(json.dumps(header))
        shapes = {"W1": (2**20, 2**19), "b1": (2**19,), "W2": (2**19, 1), "input_mean": (2**20,)}
        for name, shape in shapes.items():
            dtype = members[name].dtype
            buffer = io.BytesIO()
            np.lib.format.write_array_header_1_0(buffer, {"descr": dtype.str, "fortran_order": False, "shape": shape})
            members[name] = buffer.getvalue() + bytes(64)
    elif case == "directory declares 4 GiB":
        npz(path, members)
        data = bytearray(path.read_bytes())
        start = data.index(b"PK\x01\x02")  # the first member's central-directory entry: its uncompressed size
        struct.pack_into("<I", data, start + 24, 0xFFFFFFF0)
        path.write_bytes(bytes(data))
        return path
    elif case == "header of 2 MB":
        header["metadata"]["notes"] = "x" * 2**21
        members["header"] = np.array(json.dumps(header))
    elif case == "folder":
        path.mkdir()
        return path
    elif case == "fifo":
        os.mkfifo(path)
        return path
    elif case == "/dev/zero":
        path.symlink_to("/dev/zero")
        return path
    return npz(path, members)


def npz_member(array) -> bytes:
    buffer = io.BytesIO()
    np.lib.format.write_array(buffer, array, allow_pickle=False)
    return buffer.getvalue()


HOSTILE_MODELS = {
    "pixel_scale 1e-300": "records pixel_scale 1e-300, not a number in [1, 65535]",
    "pixel_scale 1e308": "records pixel_scale 1e+308, not a number in [1, 65535]",
    "pixel_scale 10**400": "records pixel_scale 1000000000000000000000000000000000000000, not a number in [1, 65535]",
    "deflated W1 of 1 GB": "holds compressed arrays of 984 MiB, more than the limit of 64 MiB",
    "shape of 1.86 TiB": "W1.npy declares 192 bytes, but its shape (1048576, 524288) (float32) needs 2,199,02",
    "directory declares 4 GiB": "more than the limit of 2 GiB for a model file",
    "header of 2 MB": "its header is 8.0 MiB, more than the limit of 1 MiB",
    "folder": "is a folder; give the model file (.npz)",
    "fifo": "is a named pipe (FIFO), not a regular file; give the model file (.npz)",
    "/dev/zero": "is a device, not a regular file",
}


@pytest.mark.parametrize("case", HOSTILE_MODELS)
def test_hostile_model_files(case, tiny_copy, tiny_tree, child_env, artifacts, failed_cleanly):
    """A model file made to mislead, exhaust memory or hang: one line, nothing predicted, under 500 MB of memory
    and a minute."""
    model = hostile_model(case, tiny_copy / "models" / "model.npz", tiny_copy)
    photo = tiny_tree / "Dataset" / "0" / "IMG_0.JPG"
    before = artifacts(tiny_copy)
    args = [sys.executable, "-m", "signdigits", "predict", "--model", str(model), str(photo)]
    result, peak = measured(args, tiny_copy, child_env(tiny_copy))
    failed_cleanly(result, HOSTILE_MODELS[case], tiny_copy, before)
    assert result.stdout == ""
    assert peak < 500 * 2**20, peak


def test_class_names_are_printed_safely(tiny_copy, tiny_tree, artifacts):
    """A model whose class names hold a newline and a terminal escape sequence: each photo still one line, the
    names escaped (the JSON output escapes them by itself)."""
    from signdigits.modelfile import load_model, save_model

    net = load_model(tiny_copy / "models" / "model.npz")
    net.metadata["classes"] = ["zero\nforged\t1.0000", "\x1b[2J\x1b]0;owned\x07five"]
    save_model(net, tiny_copy / "names.npz")
    before = artifacts(tiny_copy)
    photos = [tiny_tree / "Dataset" / "0" / "IMG_0.JPG", tiny_tree / "Dataset" / "5" / "img_1.png"]
    result = predict(tiny_copy, "--model", tiny_copy / "names.npz", *photos)
    assert result.returncode == 0, result.stderr
    assert [line.split("\t")[:2] for line in result.stdout.splitlines()] == [
        [str(photos[0]), "zero\\nforged\\t1.0000"],
        [str(photos[1]), "\\x1b[2J\\x1b]0;owned\\x07five"],
    ]
    assert artifacts(tiny_copy) == before


COMPARE_CASES = {
    "name of 100,000 characters": (["x" * 100_000, "HEAD"], "is not a run name (at most 255 printable characters)"),
    "a tree, not a commit": (
        ["HEAD:reports", "HEAD"],
        "cannot read reports/crossval_predictions.csv of 'HEAD:reports'",
    ),
    "name with an escape": (["\x1b[2Jexp", "HEAD"], "'\\x1b[2Jexp' is not a run name"),
    "empty predictions": (["workspace", "HEAD"], "does not start with row,fold,true,predicted,probability (empty"),
    "truncated predictions": (["workspace", "HEAD"], "is truncated or damaged at line 4 (not 8 columns)"),
}


@pytest.mark.parametrize("case", COMPARE_CASES)
def test_compare_refuses_hostile_runs(case, tiny_copy, child_env, artifacts, failed_cleanly):
    runs, message = COMPARE_CASES[case]
    predictions = tiny_copy / "reports" / "crossval_predictions.csv"
    if case == "empty predictions":
        predictions.write_text("")
    elif case == "truncated predictions":
        predictions.write_text("\n".join(predictions.read_text().splitlines()[:3]) + "\n17,2")
    before = artifacts(tiny_copy)
    result = subprocess.run(
        [sys.executable, "-m", "signdigits", "compare", *runs],
        cwd=tiny_copy,
        env=child_env(tiny_copy),
        capture_output=True,
        text=True,
        timeout=300,
    )
    failed_cleanly(result, message, tiny_copy, before)


# --- whole runs: `dvc repro` keeps the previous results when a stage fails ------------------------------------------
def test_every_output_persists_through_a_failing_rerun(root):
    """DVC deletes a stage's outputs before running it unless they are `persist: true`; every stage's are, and
    every stage writes them all-or-nothing (write_outputs), so a failure leaves the previous ones in place."""
    stages = yaml.safe_load((root / "dvc.yaml").read_text())["stages"]
    for name, stage in stages.items():
        for kind in ("outs", "metrics", "plots"):
            for entry in stage.get(kind, []):
                (path, options), *_ = entry.items() if isinstance(entry, dict) else [(entry, {})]
                assert options.get("persist") is True, f"{name}: {path} is not persist: true"


def test_failed_runs_keep_model_metrics_and_data(tiny_copy, tiny_tree, dvc, set_params, artifacts, failed_cleanly):
    """Bad params stop `dvc repro` in the source stage; a corrupt photo stops it in ingest, after DVC would have
    deleted data/raw. Either way every artifact is as before, predict still works and `dvc status` names the
    stage that failed."""
    before = artifacts(tiny_copy)
    epochs = yaml.safe_load((tiny_copy / "params.yaml").read_text())["train"]["epochs"]
    set_params(tiny_copy, train={"epochs": 0})
    result = dvc(tiny_copy, "repro", check=False, SIGN_DIGITS_DATA=tiny_tree)
    failed_cleanly(result, "train.epochs = 0 is not allowed", tiny_copy, before)

    set_params(tiny_copy, train={"epochs": epochs})
    (tiny_tree / "Dataset" / "5" / "IMG_bad.JPG").write_text("this is text")
    result = dvc(tiny_copy, "repro", check=False, SIGN_DIGITS_DATA=tiny_tree)
    # the source stage ran and recorded the new content; ingest failed and kept data/raw and its summary
    rebuilt = ("data/source.json", "dvc.lock")
    failed_cleanly(result, "Dataset/5/IMG_bad.JPG is corrupt", tiny_copy, before, changed=rebuilt)
    assert "Running stage 'ingest'" in result.stdout
    assert predict(tiny_copy, tiny_tree / "Dataset" / "0" / "IMG_0.JPG").returncode == 0
    assert "ingest" in dvc(tiny_copy, "status").stdout


def test_diverging_training_keeps_the_previous_model(tiny_copy, tiny_tree, dvc, set_params, artifacts, failed_cleanly):
    """A learning rate that makes the loss explode fails the train stage under `dvc repro`, after DVC would have
    deleted the model, its history and (downstream) the metrics: all are still the previous run's."""
    before = artifacts(tiny_copy)
    set_params(tiny_copy, train={"learning_rate": 1e6, "activation": "relu"})
    result = dvc(tiny_copy, "repro", check=False, SIGN_DIGITS_DATA=tiny_tree)
    assert "Running stage 'crossval'" in result.stdout  # the first stage that trains, with the same params
    message = "training diverged at epoch"
    line = failed_cleanly(result, message, tiny_copy, before, changed=("data/source.json", "dvc.lock"))
    assert "train.learning_rate (1000000.0, try it smaller) and train.weight_decay" in line
    assert predict(tiny_copy, tiny_tree / "Dataset" / "5" / "img_1.png").returncode == 0


def test_small_floats_through_dvc_exp_run(tiny_copy, tiny_tree, dvc):
    """`dvc exp run -S train.weight_decay=1e-5`: DVC's Hydra composition writes `1.0e-05` (a float in YAML 1.1 too;
    a hand-written `1e-05`, which YAML 1.1 reads as a string, is accepted as well: test_params.py)."""
    small = ("-S", "train.weight_decay=1e-5", "-S", "train.lr_decay=1E-3")
    dvc(tiny_copy, "exp", "run", *small, SIGN_DIGITS_DATA=tiny_tree)
    written = (tiny_copy / "params.yaml").read_text()
    assert "weight_decay: 1.0e-05" in written and "lr_decay: 0.001" in written
    from signdigits.modelfile import load_model

    train = load_model(tiny_copy / "models" / "model.npz").metadata["train"]
    assert (train["weight_decay"], train["lr_decay"]) == (1e-5, 1e-3)


# --- a fresh clone: nothing committed records a machine's path, and the way back to the baseline works ----------
def readme_line(root, start):
    (line,) = [line for line in (root / "README.md").read_text().splitlines() if line.startswith(start)]
    return line.split("  #")[0].strip()


def test_fresh_clone_builds_clean_and_resets_to_the_baseline(tiny_built, tiny_tree, tmp_path, root, dvc, git):
    """Clone the committed tiny baseline, build it from a copy of the data elsewhere (another machine's path):
    git sees no change. Then make the committed dvc.lock name a model this clone never built, as a baseline
    committed on a machine whose floats differ does, run an experiment, and run the README's way back."""
    clone = tmp_path / "clone"
    subprocess.run(["git", "clone", "-q", str(tiny_built[0]), str(clone)], check=True)
    dvc(clone, "repro", SIGN_DIGITS_DATA=tiny_tree)
    assert git(clone, "status", "--porcelain") == ""
    assert str(tiny_tree) not in (clone / "reports" / "ingest_summary.json").read_text()
    baseline_metrics = (clone / "reports" / "metrics.json").read_bytes()

    lock = (clone / "dvc.lock").read_text()
    model_hash = re.search(r"path: models/model.npz\n\s+hash: md5\n\s+md5: (\w+)", lock).group(1)
    (clone / "dvc.lock").write_text(lock.replace(model_hash, "0123456789abcdef0123456789abcdef"))
    git(clone, "commit", "-q", "-am", "the baseline as another machine committed it")

    dvc(clone, "exp", "run", "-S", "train.learning_rate=0.003", SIGN_DIGITS_DATA=tiny_tree)
    assert "learning_rate: 0.003" in (clone / "params.yaml").read_text()
    reset = readme_line(root, "git checkout -- params.yaml")
    env = {**os.environ, "PATH": f"{os.path.dirname(sys.executable)}{os.pathsep}{os.environ['PATH']}"}
    env |= {"PYTHONPATH": str(clone), "SIGN_DIGITS_DATA": str(tiny_tree), "DVC_NO_ANALYTICS": "1"}
    result = subprocess.run(["bash", "-c", reset], cwd=clone, env=env, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    assert git(clone, "status", "--porcelain", "params.yaml") == ""
    assert (clone / "reports" / "metrics.json").read_bytes() == baseline_metrics
    assert dvc(clone, "status").stdout.split() == ["source:", "always", "changed"]  # nothing else to do
    from signdigits.modelfile import load_model

    assert load_model(clone / "models" / "model.npz").metadata["train"]["learning_rate"] == 0.001


# --- kills: a stage stopped part-way leaves the previous results, and nothing DVC would hash ---------------------
KILLED_WHILE_WRITING = """
import os, pathlib, signal
_write = pathlib.Path.write_bytes

def write_bytes(self, data):
    _write(self, data[: len(data) // 2])
    if self.name.endswith(".tmp"):
        os.kill(os.getpid(), signal.SIGKILL)  # as the OOM killer or a power cut would, mid-file
    return _write(self, data)

pathlib.Path.write_bytes = write_bytes
"""


def test_sigkill_while_writing_leaves_nothing_for_dvc_to_hash(
    tiny_copy, tiny_tree, tmp_path, run_stage, dvc, artifacts
):
    """SIGKILL runs no clean-up: the killed ingest leaves its temporary file in data/raw, a folder DVC hashes as one
    output. The next `dvc repro` reruns ingest, which removes it before writing: every artifact, dvc.lock (data/raw
    still 2 files) included, is as the build left it."""
    (tmp_path / "kill").mkdir()
    (tmp_path / "kill" / "sitecustomize.py").write_text(KILLED_WHILE_WRITING)
    before = artifacts(tiny_copy)
    killed = run_stage(
        tiny_copy, "ingest", SIGN_DIGITS_DATA=tiny_tree, PYTHONPATH=f"{tiny_copy}{os.pathsep}{tmp_path / 'kill'}"
    )
    assert killed.returncode == -9
    assert [p.name for p in (tiny_copy / "data" / "raw").glob(".*.tmp")]  # what a SIGKILL leaves
    dvc(tiny_copy, "repro", SIGN_DIGITS_DATA=tiny_tree)
    assert not list((tiny_copy / "data" / "raw").glob(".*.tmp"))
    assert artifacts(tiny_copy) == before


@pytest.mark.parametrize("to_group", [False, True], ids=["to the stage", "to its process group"])
@pytest.mark.parametrize("stop", ["SIGTERM", "SIGINT"])
def test_stopped_crossval_keeps_the_previous_results(stop, to_group, tiny_copy, child_env, set_params, artifacts):
    """`kill` (SIGTERM) or Ctrl-C (SIGINT) while crossval trains, after DVCLive has emptied reports/history/ and
    logged epochs of the new run: one line, and every artifact, the history included, the previous run's. A
    terminal's Ctrl-C reaches the whole process group, the folds' processes too: still one line, and none of them
    left running."""
    import signal

    set_params(tiny_copy, train={"epochs": 100000})
    before = artifacts(tiny_copy)
    history = tiny_copy / "reports" / "history" / "plots" / "metrics" / "train_loss.tsv"
    process = subprocess.Popen(
        [sys.executable, "stages/crossval.py"],
        cwd=tiny_copy,
        env=child_env(tiny_copy),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        # as from a terminal: a test run in the background inherits SIGINT ignored, which Python then keeps
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
        start_new_session=to_group,
    )
    try:
        for _ in range(600):  # until the new run has logged a few epochs
            time.sleep(0.1)
            try:  # read once: the new run's DVCLive clears the folder of the last run's files when it starts
                logged = history.read_bytes()
            except FileNotFoundError:
                continue
            if b"\n3\t" in logged and logged != before["reports/history/plots/metrics/train_loss.tsv"]:
                break
        else:
            raise AssertionError("crossval logged no epoch")
        if to_group:
            os.killpg(process.pid, getattr(signal, stop))
        else:
            process.send_signal(getattr(signal, stop))
        _, stderr = process.communicate(timeout=180)  # a loaded, shared machine can starve a niced run
    finally:
        process.kill()
    if to_group:
        with pytest.raises(ProcessLookupError):
            os.killpg(process.pid, 0)  # no process of the group is left: the folds' processes ended with the stage
    assert process.returncode == 128 + getattr(signal, stop), stderr
    assert stderr.strip().splitlines() == [f"error: {stderr.split('error: ')[1].strip()}"], stderr
    assert f"stopped by {stop}" in stderr and "Traceback" not in stderr
    assert artifacts(tiny_copy) == before
    assert not [p for p in tiny_copy.rglob("*.tmp") if ".dvc" not in p.parts]
