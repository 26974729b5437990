"""Sources: trees, zips, the course's npz, the pinned upstream archive (download and digest), bad input."""

import hashlib
import io
import zipfile

import numpy as np
import pytest

from signdigits import dataset
from signdigits.dataset import content_digest, download, ingest, list_photos, resolve_source
from signdigits.errors import UsageError


def expected_digest(root):
    """SOURCE.md's recipe, written out independently: SHA-256 over path + NUL + sha256(bytes), by path."""
    files = sorted(
        (p.relative_to(root).as_posix(), p)
        for p in (root / "Dataset").rglob("*")
        if p.is_file() and not p.name.startswith(".")
    )
    digest = hashlib.sha256()
    for relative, path in files:
        digest.update(relative.encode() + b"\0" + hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()


def test_tree_from_root_or_dataset_folder_gives_the_same_photos(tmp_path, make_tree):
    root = make_tree(tmp_path / "tree")
    for location in (root, root / "Dataset"):
        photos, _ = list_photos(resolve_source(str(location), environ={}))
        assert [p.path for p in photos] == sorted(p.path for p in photos)
        assert len(photos) == 18 and {p.label for p in photos} == {"0", "3", "5"}
        contents = [p.read() for p in photos]
        assert content_digest(photos, contents) == expected_digest(root)


def test_ingest_values_of_a_tree(tmp_path, make_tree, bright_side):
    root = make_tree(tmp_path / "tree")
    images, labels, sources, summary = ingest(resolve_source(str(root), environ={}), 8)
    assert images.shape == (18, 64) and images.dtype == np.uint8
    assert labels.dtype.kind == "U" and list(labels) == sorted(labels)
    # each row named by its path inside the dataset, never by this machine's path
    assert sources.dtype.kind == "U" and list(sources) == sorted(sources) and len(set(sources)) == 18
    assert all(s.startswith(f"Dataset/{label}/") for s, label in zip(sources, labels))
    assert not any(str(tmp_path) in s for s in sources)
    assert summary["images_per_class"] == {"0": 6, "3": 6, "5": 6} and summary["images"] == 18
    assert summary["content_sha256"] == expected_digest(root) and not summary["matches_pinned_upstream"]
    for row, label in zip(images.reshape(-1, 8, 8).astype(int), labels):
        side = bright_side[label]
        bright = {"left": row[:, :3], "top": row[:3], "bottom": row[5:]}[side]
        dark = {"left": row[:, 5:], "top": row[5:], "bottom": row[:3]}[side]
        assert bright.mean() > 200 and dark.mean() < 50, label


def test_zip_reads_the_same_as_the_tree(tmp_path, make_tree, zip_tree):
    root = make_tree(tmp_path / "tree")
    archive = zip_tree(root, tmp_path / "data.zip")
    source = resolve_source(str(archive), environ={})
    assert source.kind == "zip"
    from_zip = ingest(source, 8)
    from_tree = ingest(resolve_source(str(root), environ={}), 8)
    np.testing.assert_array_equal(from_zip[0], from_tree[0])
    np.testing.assert_array_equal(from_zip[1], from_tree[1])
    np.testing.assert_array_equal(from_zip[2], from_tree[2])  # the same names, whatever holds the tree
    assert from_zip[3]["content_sha256"] == from_tree[3]["content_sha256"]


def test_zip_member_escaping_the_folder_is_refused(tmp_path):
    archive = tmp_path / "evil.zip"
    with zipfile.ZipFile(archive, "w") as out:
        out.writestr("Dataset/0/a.png", b"x")
        out.writestr("../../etc/evil.png", b"x")
    with pytest.raises(UsageError, match=r"member '../../etc/evil.png' would escape the extraction folder"):
        ingest(resolve_source(str(archive), environ={}), 8)


def test_npz_in_course_format(tmp_path):
    rng = np.random.default_rng(0)
    pixels = rng.integers(0, 256, size=(5, 784)).astype(np.float64)
    labels = np.array(["5", "0", "5", "0", "0"])
    np.savez(tmp_path / "course.npz", dataset=pixels, labels=labels)
    images, got_labels, sources, summary = ingest(resolve_source(str(tmp_path / "course.npz"), environ={}), 28)
    order = [1, 3, 4, 0, 2]  # sorted by digit, stable within a digit
    np.testing.assert_array_equal(images, pixels[order].astype(np.uint8))
    assert list(got_labels) == ["0", "0", "0", "5", "5"]
    assert list(sources) == [f"npz:{row}" for row in order]  # each photo's row in the file
    assert summary["images_per_class"] == {"0": 3, "5": 2}
    smaller, _, _, _ = ingest(resolve_source(str(tmp_path / "course.npz"), environ={}), 14)
    assert smaller.shape == (5, 196)


@pytest.mark.parametrize(
    "arrays, message",
    [
        ({"labels": np.array(["0"])}, "has no 'dataset' array"),
        ({"dataset": np.zeros((2, 784))}, "has no 'labels' array"),
        ({"dataset": np.zeros((2, 780)), "labels": np.array(["0", "5"])}, "not (N, side²)"),
        ({"dataset": np.zeros((2, 784)), "labels": np.array(["0"])}, "'labels' has shape (1,)"),
        ({"dataset": np.full((2, 784), 300.0), "labels": np.array(["0", "5"])}, "values outside 0–255"),
        ({"dataset": np.full((2, 784), np.nan), "labels": np.array(["0", "5"])}, "values outside 0–255"),
        ({"dataset": np.zeros((2, 784)), "labels": np.array(["0", "x"])}, "'labels' holds 'x'"),
    ],
)
def test_bad_npz(tmp_path, arrays, message):
    np.savez(tmp_path / "bad.npz", **arrays)
    with pytest.raises(UsageError) as raised:
        ingest(resolve_source(str(tmp_path / "bad.npz"), environ={}), 28)
    assert message in str(raised.value)


def test_npz_with_object_labels_is_refused_without_unpickling(tmp_path):
    np.savez(tmp_path / "obj.npz", dataset=np.zeros((1, 784)), labels=np.array(["0"], dtype=object))
    with pytest.raises(UsageError, match="is not a readable .npz"):
        ingest(resolve_source(str(tmp_path / "obj.npz"), environ={}), 28)


def test_empty_digit_folder_and_no_digit_folders(tmp_path, make_tree):
    root = make_tree(tmp_path / "tree")
    (root / "Dataset" / "7").mkdir()
    with pytest.raises(UsageError, match="digit folder 7 in .* holds no photos"):
        ingest(resolve_source(str(root), environ={}), 8)
    (tmp_path / "nothing").mkdir()
    with pytest.raises(UsageError, match="has no digit folders"):
        ingest(resolve_source(str(tmp_path / "nothing"), environ={}), 8)


def test_environment_variable_overrides_params(tmp_path, make_tree):
    root = make_tree(tmp_path / "tree")
    source = resolve_source("upstream", environ={"SIGN_DIGITS_DATA": str(root)})
    assert (source.kind, source.origin) == ("tree", "SIGN_DIGITS_DATA")
    assert resolve_source("upstream", environ={}).kind == "upstream"
    with pytest.raises(UsageError, match=r"does not exist; fix SIGN_DIGITS_DATA"):
        resolve_source("upstream", environ={"SIGN_DIGITS_DATA": str(tmp_path / "missing")})
    with pytest.raises(UsageError, match=r"does not exist; fix ingest.source in params.yaml"):
        resolve_source(str(tmp_path / "missing"), environ={})


class Terminal(io.StringIO):
    def isatty(self):
        return True


def test_download_once_with_progress(tmp_path, capsys, monkeypatch):
    payload = bytes(range(256)) * 4096
    (tmp_path / "remote.zip").write_bytes(payload)
    target = tmp_path / "cache" / "archive.zip"
    download((tmp_path / "remote.zip").as_uri(), target)
    assert target.read_bytes() == payload and not target.with_name("archive.zip.part").exists()
    assert capsys.readouterr().err == ""  # stderr is no terminal here: no progress bar in logs
    terminal = Terminal()
    monkeypatch.setattr("sys.stderr", terminal)
    download((tmp_path / "remote.zip").as_uri(), tmp_path / "cache" / "again.zip")
    assert "downloading dataset: 100%" in terminal.getvalue() and "1.05M/1.05M" in terminal.getvalue()
    (tmp_path / "remote.zip").unlink()
    assert download((tmp_path / "remote.zip").as_uri(), target) == target  # cached: no second download


def test_download_failure_explains_offline_use(tmp_path):
    with pytest.raises(UsageError, match=r"cannot download the dataset .* offline\? set SIGN_DIGITS_DATA="):
        download((tmp_path / "absent.zip").as_uri(), tmp_path / "cache" / "a.zip")
    assert not (tmp_path / "cache" / "a.zip").exists() and not (tmp_path / "cache" / "a.zip.part").exists()


def test_upstream_archive_with_wrong_content_is_refused(tmp_path, monkeypatch, make_tree, zip_tree):
    cache = tmp_path / "xdg"
    archive = cache / "signdigits" / f"Sign-Language-Digits-Dataset-{dataset.UPSTREAM_COMMIT}.zip"
    archive.parent.mkdir(parents=True)
    zip_tree(make_tree(tmp_path / "tree"), archive)
    with pytest.raises(UsageError, match=r"does not match the pinned content digest .* delete it and rerun"):
        ingest(resolve_source("upstream", environ={}), 8, environ={"XDG_CACHE_HOME": str(cache)})


def test_real_dataset_digest_matches_the_pinned_one(real_data):
    source = resolve_source(str(real_data), environ={})
    assert dataset.fingerprint(source) == dataset.UPSTREAM_DIGEST
