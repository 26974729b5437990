"""The evaluate stage's figures, drawn headless with matplotlib (and scikit-learn's ConfusionMatrixDisplay).

Each function returns a matplotlib Figure laid out with constrained layout, so everything it draws lies inside
its canvas; ``png`` turns one into PNG bytes.

Confusion matrices, here and in DVC's confusion plot (dvc.yaml), share one orientation, scikit-learn's: the true
class on the vertical axis (rows), the predicted class on the horizontal one (columns)."""

import io

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from sklearn.metrics import ConfusionMatrixDisplay  # noqa: E402

from signdigits.metrics import macro_average_roc, roc_auc, roc_curves  # noqa: E402

DPI = 110


def png(figure) -> bytes:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=DPI)
    plt.close(figure)
    return buffer.getvalue()


def loss_curve(history: dict):
    """Loss (left) and accuracy (right) per epoch, from cross-validation: the mean over folds on their training
    rows and on their validation folds, the validation curve in a band of ± one standard deviation over folds.
    An empty history (cross-validation off) gives a figure that says so."""
    figure, (left, right) = plt.subplots(1, 2, figsize=(10, 4), layout="constrained")
    if not history:
        for axis in (left, right):
            axis.axis("off")
        figure.text(0.5, 0.5, "cross-validation is off (split.folds ≤ 1): no per-epoch curves", ha="center")
        return figure
    epoch = history["epoch"]
    for axis, metric, title in ((left, "loss", "Cross-entropy loss"), (right, "accuracy", "Accuracy")):
        axis.plot(epoch, history[f"train_{metric}"], label="train (mean over folds)")
        mean, std = history[f"val_{metric}"], history[f"val_{metric}_std"]
        (line,) = axis.plot(epoch, mean, label="validation (mean over folds)")
        band = {"color": line.get_color(), "alpha": 0.2, "label": "± 1 std over folds"}
        high = np.minimum(mean + std, 1.0) if metric == "accuracy" else mean + std  # no accuracy above 1
        axis.fill_between(epoch, mean - std, high, **band)
        axis.set(title=title, xlabel="epoch", ylabel=metric)
        axis.grid(alpha=0.3)
        axis.legend()
    figure.suptitle("Training history (cross-validation; the test split is not used)")
    return figure


def confusion_matrix(y_true, y_pred, classes: list[str]):
    """Counts of test photos by true digit (rows) and predicted digit (columns); the colour scale starts at 0."""
    size = max(4.5, 0.55 * len(classes) + 2.5)
    figure, axis = plt.subplots(figsize=(size + 0.8, size), layout="constrained")
    ConfusionMatrixDisplay.from_predictions(
        y_true,
        y_pred,
        labels=list(range(len(classes))),
        display_labels=classes,
        cmap="Blues",
        im_kw={"vmin": 0},
        ax=axis,
    )
    axis.set(title="Confusion matrix (test split)", xlabel="predicted digit", ylabel="true digit")
    return figure


def roc_curve(y_true, proba, classes: list[str]):
    """The ROC curve of the test split. Two classes: that of the second class (P(class 1) is the score). More:
    each digit against the rest (thin), and their macro average (bold), whose area is metrics.json's
    test_roc_auc."""
    figure, axis = plt.subplots(figsize=(5.5, 5.5), layout="constrained")
    curves = roc_curves(y_true, proba)
    auc = roc_auc(y_true, proba)
    if len(curves) == 1:
        fpr, tpr = curves[0]
        axis.plot(fpr, tpr, linewidth=2, label=f'"{classes[1]}" against "{classes[0]}" (AUC {auc:.3f})')
        title = "ROC curve (test split)"
    else:
        colours = plt.get_cmap("tab10")
        for k, (fpr, tpr) in enumerate(curves):
            axis.plot(fpr, tpr, linewidth=0.8, alpha=0.6, color=colours(k % 10), label=f"{classes[k]} against the rest")
        fpr, tpr = macro_average_roc(curves)
        axis.plot(fpr, tpr, linewidth=2.5, color="black", label=f"macro average (AUC {auc:.3f})")
        title = "ROC curves, one digit against the rest (test split)"
    axis.plot([0, 1], [0, 1], linestyle="--", color="grey", label="chance")
    axis.set(title=title, xlabel="false positive rate", ylabel="true positive rate", xlim=(-0.01, 1), ylim=(0, 1.01))
    axis.grid(alpha=0.3)
    axis.legend(loc="lower right", fontsize="small")
    return figure


def prediction_examples(images, y_true, y_pred, confidence, classes: list[str], count: int = 24):
    """A grid of test photos, each captioned with its true and predicted digit and p, the network's probability
    for the digit it predicts; the misclassified ones come first, framed and captioned in red."""
    wrong = np.flatnonzero(y_true != y_pred)
    right = np.flatnonzero(y_true == y_pred)
    shown = np.concatenate([wrong, right])[:count]
    columns = min(6, len(shown))
    rows = max(1, int(np.ceil(len(shown) / columns)))
    side = int(round(np.sqrt(images.shape[1])))
    figure, axes = plt.subplots(
        rows, columns, figsize=(1.7 * columns, 1.95 * rows + 0.7), layout="constrained", squeeze=False
    )
    for axis in axes.flat:
        axis.set_axis_off()
    for axis, i in zip(axes.flat, shown):
        mistaken = y_true[i] != y_pred[i]
        colour = "red" if mistaken else "black"
        axis.set_axis_on()
        axis.imshow(images[i].reshape(side, side), cmap="gray", vmin=0, vmax=1, interpolation="nearest")
        axis.set_xticks([])
        axis.set_yticks([])
        for spine in axis.spines.values():
            spine.set(color=colour, linewidth=3 if mistaken else 0.5)
        caption = f"true {classes[y_true[i]]} · pred {classes[y_pred[i]]}\np = {confidence[i]:.2f}"
        axis.set_title(caption, color=colour, fontsize=9, pad=6)
    figure.suptitle(
        f"Test photos: {len(wrong)} of {len(y_true)} misclassified (first, framed in red)\n"
        "p = the network's probability for the digit it predicts",
        fontsize=11,
    )
    return figure
