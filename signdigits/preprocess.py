"""The data stages' transforms: exclude and relabel photos by their source, keep some classes, scale pixels, split
stratified, cut validation folds."""

import numpy as np

from signdigits.errors import UsageError

PIXEL_SCALE = 255.0  # normalize divides by this, as the seed did; predict reads it back from the model


def class_indices(labels: np.ndarray, classes: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """(keep, indices): which rows hold one of the listed classes, and their labels as indices into ``classes``
    (["0", "5"]: "0" → 0, "5" → 1)."""
    present = sorted(set(labels.tolist()))
    absent = [c for c in classes if c not in present]
    if absent:
        raise UsageError(
            f"filter.classes lists '{absent[0]}', which is not in the data; classes present: {', '.join(present)}"
        )
    keep = np.isin(labels, classes)
    index_of = {name: i for i, name in enumerate(classes)}
    return keep, np.array([index_of[name] for name in labels[keep]], dtype=np.int64)


def select_classes(images: np.ndarray, labels: np.ndarray, classes: list[str]):
    """Rows of the listed classes; labels become indices into ``classes`` (["0", "5"]: "0" → 0, "5" → 1)."""
    keep, indices = class_indices(labels, classes)
    return images[keep], indices


def _unknown_source(key: str, path: str, sources: np.ndarray) -> UsageError:
    example = sources[0] if len(sources) else "Dataset/7/IMG_5874.JPG"
    return UsageError(
        f"params.yaml: {key} names {path!r}, which is not a photo of the data; give paths as "
        f"reports/label_issues.csv lists them (e.g. {example}), or remove the entry"
    )


def correct_labels(labels: np.ndarray, sources: np.ndarray, exclude: list[str], relabel: dict[str, str]):
    """(keep, labels): the user's corrections of the data, by source path (filter.exclude, filter.relabel). keep
    is False for the excluded photos; the labels are a copy with each relabelled photo's digit replaced. A path
    that names no photo of ``sources`` is a UsageError naming its key, before anything is written."""
    row_of = {path: row for row, path in enumerate(sources.tolist())}
    for key, paths in (("filter.exclude", exclude), ("filter.relabel", list(relabel))):
        unknown = [path for path in paths if path not in row_of]
        if unknown:
            raise _unknown_source(key, unknown[0], sources)
    keep = np.ones(len(labels), dtype=bool)
    keep[[row_of[path] for path in exclude]] = False
    corrected = labels.copy()  # digits '0' … '9': one character, as the labels' dtype holds
    for path, digit in relabel.items():
        corrected[row_of[path]] = digit
    return keep, corrected


def filter_rows(labels, sources, classes: list[str], exclude: list[str], relabel: dict[str, str]):
    """(rows, indices): the rows of the raw data that stage filter keeps — not excluded, and of a listed class
    after relabelling — and their labels as indices into ``classes``. A photo relabelled to a digit outside
    ``classes`` leaves, as any photo of that digit does."""
    keep, corrected = correct_labels(labels, sources, exclude, relabel)
    in_class, indices = class_indices(corrected[keep], classes)
    return np.flatnonzero(keep)[in_class], indices


def other_hand_rows(labels, sources, exclude: list[str], relabel: dict[str, str], classes: list[str]) -> np.ndarray:
    """The rows of the raw data that are photos of other hands: not excluded, and of a digit outside ``classes``
    after relabelling (stage filter keeps them apart, for train.other_hands and for measuring refusals)."""
    keep, corrected = correct_labels(labels, sources, exclude, relabel)
    return np.flatnonzero(keep & ~np.isin(corrected, classes))


def normalize(images: np.ndarray, scale: float = PIXEL_SCALE) -> np.ndarray:
    """uint8 pixels to float32 in [0, 1]."""
    return images.astype(np.float32) / np.float32(scale)


def stratified_split(X: np.ndarray, y: np.ndarray, test_size: float, seed: int, *more: np.ndarray):
    """(X_train, X_test, y_train, y_test), each class in the same proportion in both parts; then the train and
    test part of each of ``more`` (arrays of the same rows, e.g. their sources), split alike. The split depends on
    y, test_size and seed only, so ``more`` changes no row's side."""
    from sklearn.model_selection import train_test_split

    counts = np.bincount(y)
    n_test = int(np.ceil(test_size * len(y)))
    if counts.min() < 2 or n_test < len(counts) or len(y) - n_test < len(counts):
        raise UsageError(
            f"split.test_size = {test_size} cannot put every class in both parts "
            f"({len(y)} images, smallest class {counts.min()}); choose a test_size nearer 0.5 or add data"
        )
    return train_test_split(X, y, *more, test_size=test_size, random_state=seed, stratify=y)


NO_FOLD = -1  # folds.npy's value for every row when cross-validation is off (split.folds ≤ 1)


def stratified_folds(y: np.ndarray, k: int, seed: int) -> np.ndarray:
    """The validation fold 0 … k−1 of each row of y: k disjoint folds of (nearly) equal size, each class in the
    same proportion in every fold (scikit-learn's StratifiedKFold, shuffled with ``seed``). k ≤ 1 means
    cross-validation is off: every row gets NO_FOLD."""
    from sklearn.model_selection import StratifiedKFold

    folds = np.full(len(y), NO_FOLD, dtype=np.int64)
    if k <= 1:
        return folds
    smallest = np.bincount(y).min()
    if smallest < k:
        raise UsageError(
            f"split.folds = {k} needs at least {k} training images of every class, and the smallest class has "
            f"{smallest}; choose fewer folds (≤ 1 turns cross-validation off)"
        )
    splitter = StratifiedKFold(n_splits=k, shuffle=True, random_state=seed)
    for fold, (_, held_out) in enumerate(splitter.split(np.zeros(len(y)), y)):
        folds[held_out] = fold
    return folds


def shuffled_split(n: int, test_size: float, k: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(test, folds) for n rows that have no class of their own (the other hands): ``test`` marks ceil(test_size · n)
    of them drawn with ``seed``; ``folds`` gives each of the others a validation fold 0 … k−1, dealt in turn in a
    shuffled order (sizes differ by at most one), or NO_FOLD for all when k ≤ 1. Any n works, 0 included."""
    rng = np.random.default_rng(seed)
    order = rng.permutation(n)
    test = np.zeros(n, dtype=bool)
    test[order[: int(np.ceil(test_size * n))]] = True
    n_train = n - int(test.sum())
    folds = np.full(n_train, NO_FOLD, dtype=np.int64)
    if k > 1:
        folds[rng.permutation(n_train)] = np.arange(n_train) % k
    return test, folds
