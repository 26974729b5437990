"""The evaluate stage's figures, drawn headless with matplotlib and returned as PNG bytes."""

import io

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from signdigits.metrics import class_label  # noqa: E402

DPI = 110


def _png(figure) -> bytes:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=DPI, bbox_inches="tight")
    plt.close(figure)
    return buffer.getvalue()


def loss_curve(history: dict) -> bytes:
    """Train and held-out loss per epoch (left), accuracy (right)."""
    figure, (left, right) = plt.subplots(1, 2, figsize=(10, 4))
    epoch = history["epoch"]
    for axis, metric, title in ((left, "loss", "Cross-entropy loss"), (right, "accuracy", "Accuracy")):
        axis.plot(epoch, history[f"train_{metric}"], label="train")
        if f"test_{metric}" in history:
            axis.plot(epoch, history[f"test_{metric}"], label="held-out test")
        axis.set(title=title, xlabel="epoch", ylabel=metric)
        axis.grid(alpha=0.3)
        axis.legend()
    figure.suptitle("Training history")
    return _png(figure)


def confusion_matrix(matrix: np.ndarray, classes: list[str]) -> bytes:
    """Heatmap of counts (rows: true class, columns: predicted), the count written in each cell."""
    size = max(4.5, 0.7 * len(classes) + 2)
    figure, axis = plt.subplots(figsize=(size, size * 0.85))
    image = axis.imshow(matrix, cmap="Blues")
    names = [class_label(name) for name in classes]
    ticks = np.arange(len(classes))
    axis.set_xticks(ticks, names, rotation=45, ha="right")
    axis.set_yticks(ticks, names)
    threshold = matrix.max() / 2 if matrix.size else 0
    for (row, column), count in np.ndenumerate(matrix):
        colour = "white" if count > threshold else "black"
        axis.text(column, row, str(count), ha="center", va="center", color=colour)
    axis.set(title="Confusion matrix (test split)", xlabel="predicted class", ylabel="true class")
    figure.colorbar(image, ax=axis, fraction=0.046, pad=0.04)
    return _png(figure)


def roc_curve(fpr, tpr, auc: float, multiclass: bool) -> bytes:
    figure, axis = plt.subplots(figsize=(5, 5))
    label = "micro-average, one class vs rest" if multiclass else "network"
    axis.plot(fpr, tpr, label=f"{label} (AUC {auc:.3f})")
    axis.plot([0, 1], [0, 1], linestyle="--", color="grey", label="chance")
    axis.set(title="ROC curve (test split)", xlabel="false positive rate", ylabel="true positive rate")
    axis.set(xlim=(0, 1), ylim=(0, 1.01))
    axis.grid(alpha=0.3)
    axis.legend(loc="lower right")
    return _png(figure)


def prediction_examples(images, y_true, y_pred, confidence, classes: list[str], count: int = 24) -> bytes:
    """A grid of test photos with true and predicted class and the probability of the prediction; the
    misclassified ones come first, framed and titled in red. Drawn as one mosaic image (one axes, not one
    per photo), which renders several times faster."""
    wrong = np.flatnonzero(y_true != y_pred)
    right = np.flatnonzero(y_true == y_pred)
    shown = np.concatenate([wrong, right])[:count]
    columns = 6
    rows = max(1, int(np.ceil(len(shown) / columns)))
    side = int(round(np.sqrt(images.shape[1])))
    gap, title_room = max(2, side // 5), max(8, side // 2)  # white between photos, room above for two lines
    width, height = side + gap, side + title_room
    mosaic = np.ones((rows * height, columns * width + gap))
    figure, axis = plt.subplots(figsize=(11, 11 * mosaic.shape[0] / mosaic.shape[1]))
    for slot, i in enumerate(shown):
        top, left = title_room + (slot // columns) * height, gap + (slot % columns) * width
        mosaic[top : top + side, left : left + side] = images[i].reshape(side, side)
        mistaken = y_true[i] != y_pred[i]
        colour = "red" if mistaken else "black"
        title = f"true {classes[y_true[i]]} · pred {classes[y_pred[i]]}\np = {confidence[i]:.2f}"
        axis.text(left + side / 2, top - 0.6, title, ha="center", va="bottom", fontsize=8.5, color=colour)
        if mistaken:
            frame = plt.Rectangle((left - 1, top - 1), side + 1, side + 1, fill=False, edgecolor="red", linewidth=2.5)
            axis.add_patch(frame)
    axis.imshow(mosaic, cmap="gray", vmin=0, vmax=1, interpolation="nearest")
    axis.axis("off")
    axis.set_title(f"Test predictions: {len(wrong)} misclassified of {len(y_true)} (shown first, in red)")
    return _png(figure)
