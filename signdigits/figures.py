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

DPI = 110


def png(figure) -> bytes:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=DPI)
    plt.close(figure)
    return buffer.getvalue()


def notice(text: str):
    """A figure that only says ``text``: what a figure shows when there is nothing to draw."""
    figure = plt.figure(figsize=(10, 4), layout="constrained")
    figure.text(0.5, 0.5, text, ha="center")
    return figure


def loss_curve(history: dict):
    """Loss (left) and accuracy (right) per epoch, from cross-validation: the mean over folds on their training
    rows and on their validation folds, the validation curve in a band of ± one standard deviation over folds.
    An empty history (cross-validation off) gives a figure that says so."""
    if not history:
        return notice("cross-validation is off (split.folds ≤ 1): no per-epoch curves")
    figure, (left, right) = plt.subplots(1, 2, figsize=(10, 4), layout="constrained")
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
    from sklearn.metrics import ConfusionMatrixDisplay  # imported where used: stage perturbations needs no sklearn

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
    each digit against the rest (thin), and their macro average (bold), whose area is test_details.json's
    test_roc_auc."""
    from signdigits.metrics import macro_average_roc, roc_auc, roc_curves  # imported where used, as sklearn above

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


def reliability_diagram(before: dict, after: dict, title: str = "Reliability (out-of-fold predictions)"):
    """Calibration before (left) and after (right) temperature scaling. ``before`` and ``after`` are each the
    dict ``calibration.reliability(confidence, correct)`` returns (per confidence bin: ``lower``, ``upper``,
    ``count``, ``confidence``, ``accuracy``) with one more key, ``ece``: its expected calibration error
    (``calibration.expected_calibration_error`` of the same predictions), and optionally ``temperature``.

    Top: the accuracy of each non-empty bin as a bar, the gap up (or down) to the bin's mean confidence hatched
    in red, against the diagonal of perfect calibration; the ECE is in the title. Below: how many predictions
    each bin holds (log scale: most sit in the last bin)."""
    figure, axes = plt.subplots(
        2, 2, figsize=(10, 6), height_ratios=[3, 1], sharex=True, layout="constrained", squeeze=False
    )
    for column, (table, name) in enumerate(
        ((before, "Before temperature scaling"), (after, "After temperature scaling"))
    ):
        top, bottom = axes[0, column], axes[1, column]
        lower, width = np.asarray(table["lower"]), np.asarray(table["upper"]) - np.asarray(table["lower"])
        count = np.asarray(table["count"])
        filled = count > 0
        accuracy, confidence = np.asarray(table["accuracy"])[filled], np.asarray(table["confidence"])[filled]
        top.bar(
            lower[filled],
            accuracy,
            width[filled],
            align="edge",
            color="C0",
            edgecolor="black",
            linewidth=0.5,
            label="accuracy",
        )
        top.bar(
            lower[filled],
            confidence - accuracy,
            width[filled],
            bottom=accuracy,
            align="edge",
            facecolor="none",
            edgecolor="red",
            hatch="///",
            linewidth=0.8,
            label="gap to mean confidence",
        )
        top.plot([0, 1], [0, 1], linestyle="--", color="grey", label="perfect calibration")
        temperature = f" (T = {table['temperature']:.3g})" if "temperature" in table else ""
        top.set(title=f"{name}{temperature}\nECE {table['ece']:.3f}", ylabel="accuracy", xlim=(0, 1), ylim=(0, 1))
        top.grid(alpha=0.3)
        top.legend(loc="upper left", fontsize="small")
        bottom.bar(
            lower[filled], count[filled], width[filled], align="edge", color="grey", edgecolor="black", linewidth=0.5
        )
        bottom.set(xlabel="confidence (probability of the predicted digit)", ylabel="predictions", yscale="log")
        bottom.set_ylim(bottom=0.7)
        bottom.grid(alpha=0.3)
    figure.suptitle(f"{title}: accuracy against confidence, {len(before['count'])} bins of equal width")
    return figure


def perturbations_grid(image, side: int, seed: int = 0):
    """One photo (a row of side² pixels in [0, 1], or a side × side array) under every perturbation family (one row
    each, in the order of perturbations.FAMILIES) at severities 1–5 (columns), the photo as it is in the first
    column; each picture is captioned with its family's parameter (perturbations.SEVERITIES), all drawn with the
    same ``seed``."""
    from signdigits.perturbations import FAMILIES, SEVERITIES, suite

    row = np.asarray(image, dtype=np.float32).reshape(1, side * side)
    severities = (1, 2, 3, 4, 5)
    changed = {(family, severity): picture for family, severity, picture in suite(row, severities, seed)}
    figure, axes = plt.subplots(
        len(FAMILIES), 1 + len(severities), figsize=(8.2, 1.45 * len(FAMILIES) + 0.8), layout="constrained"
    )
    for family, axes_row in zip(FAMILIES, axes):
        pictures = [row] + [changed[family, severity] for severity in severities]
        captions = ["original"] + [_parameter_caption(family, SEVERITIES[family][s - 1]) for s in severities]
        for axis, picture, caption in zip(axes_row, pictures, captions):
            axis.imshow(picture.reshape(side, side), cmap="gray", vmin=0, vmax=1, interpolation="nearest")
            axis.set_xticks([])
            axis.set_yticks([])
            axis.set_title(caption, fontsize=8, pad=3)
        axes_row[0].set_ylabel(family, fontsize=10)
    for axis, severity in zip(axes[0, 1:], severities):
        axis.set_title(f"severity {severity}\n{axis.get_title()}", fontsize=8, pad=3)
    figure.suptitle(f"Perturbation families (rows) at severities 1–5 (columns), {side} × {side} pixels", fontsize=11)
    return figure


def _parameter_caption(family: str, value) -> str:
    """A severity's parameter as a short caption (the units of perturbations.SEVERITIES)."""
    captions = {
        "mirror": lambda v: "flipped",
        "rotate": lambda v: f"± {v}°",
        "shift": lambda v: f"{v:.0%} of side",
        "scale": lambda v: f"× {1 - v:.2f} or {1 + v:.2f}",
        "brighten": lambda v: f"+ {v}",
        "darken": lambda v: f"− {v}",
        "contrast": lambda v: f"× {v} or {1 / v:.2f}",
        "gamma": lambda v: f"x^{v} or x^1/{v}",
        "noise": lambda v: f"σ = {v}",
        "blur": lambda v: f"σ = {v} px at 28",
        "occlude": lambda v: f"{v:.0%} of area",
        "background": lambda v: f"weight {v}",
    }
    return captions.get(family, str)(value)


def robustness_curves(table: dict, clean_accuracy: float, chance: float | None = None, title: str | None = None):
    """Accuracy against severity, one line per perturbation family.

    ``table`` maps each family to its accuracies at severities 1, 2, … (a list, e.g. 5 values for severities
    1–5): {"mirror": [0.61, 0.61, 0.61, 0.61, 0.61], "rotate": [0.99, 0.97, …], …}. Every line starts at severity 0
    from ``clean_accuracy``, the accuracy on the unperturbed images, which is also drawn as a dashed horizontal line;
    ``chance`` (1 / number of classes), if given, as a dotted one."""
    figure, axis = plt.subplots(figsize=(8, 5.2), layout="constrained")
    colours = plt.get_cmap("tab20")
    markers = "os^vD<>pXh*P"
    for k, (family, accuracies) in enumerate(table.items()):
        severities = np.arange(len(accuracies) + 1)
        axis.plot(
            severities,
            [clean_accuracy, *accuracies],
            marker=markers[k % len(markers)],
            markersize=4,
            linewidth=1.3,
            color=colours((2 * k) % 20 + (2 * k) // 20),
            label=family,
        )
    axis.axhline(clean_accuracy, linestyle="--", color="black", linewidth=1, label=f"clean ({clean_accuracy:.3f})")
    if chance is not None:
        axis.axhline(chance, linestyle=":", color="grey", linewidth=1, label=f"chance ({chance:.2f})")
    longest = max((len(accuracies) for accuracies in table.values()), default=5)
    axis.set(
        title=title or "Accuracy under perturbation (severity 0: the unperturbed images)",
        xlabel="severity",
        ylabel="accuracy",
        xticks=range(longest + 1),
        ylim=(min(0.0, chance or 0.0), 1.01),
    )
    axis.grid(alpha=0.3)
    axis.legend(loc="center left", bbox_to_anchor=(1.01, 0.5), fontsize="small")
    return figure
