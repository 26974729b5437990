"""The data stages' transforms: keep some classes, scale pixels, split stratified, cut validation folds."""

import numpy as np

from signdigits.errors import UsageError

PIXEL_SCALE = 255.0  # normalize divides by this, as the seed did; predict reads it back from the model


def select_classes(images: np.ndarray, labels: np.ndarray, classes: list[str]):
    """Rows of the listed classes; labels become indices into ``classes`` (["0", "5"]: "0" → 0, "5" → 1)."""
    present = sorted(set(labels.tolist()))
    absent = [c for c in classes if c not in present]
    if absent:
        raise UsageError(
            f"filter.classes lists '{absent[0]}', which is not in the data; classes present: {', '.join(present)}"
        )
    keep = np.isin(labels, classes)
    index_of = {name: i for i, name in enumerate(classes)}
    indices = np.array([index_of[name] for name in labels[keep]], dtype=np.int64)
    return images[keep], indices


def normalize(images: np.ndarray, scale: float = PIXEL_SCALE) -> np.ndarray:
    """uint8 pixels to float32 in [0, 1]."""
    return images.astype(np.float32) / np.float32(scale)


def stratified_split(X: np.ndarray, y: np.ndarray, test_size: float, seed: int):
    """(X_train, X_test, y_train, y_test), each class in the same proportion in both parts."""
    from sklearn.model_selection import train_test_split

    counts = np.bincount(y)
    n_test = int(np.ceil(test_size * len(y)))
    if counts.min() < 2 or n_test < len(counts) or len(y) - n_test < len(counts):
        raise UsageError(
            f"split.test_size = {test_size} cannot put every class in both parts "
            f"({len(y)} images, smallest class {counts.min()}); choose a test_size nearer 0.5 or add data"
        )
    return train_test_split(X, y, test_size=test_size, random_state=seed, stratify=y)


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
