"""The label audit: which training photos' labels the model disputes, by Confident Learning (Northcutt, Jiang &
Chuang, 2021, "Confident Learning: Estimating Uncertainty in Dataset Labels", JAIR 70), written here from the
paper's definitions (cleanlab implements them too, under the AGPL, which this project does not take on).

Input: N photos, their given (possibly wrong) labels ỹ ∈ {0 … K−1} and out-of-sample probabilities P (N, K),
P[n, j] = p̂(ỹ = j; x_n), from a network that did not train on photo n (stage crossval's out-of-fold predictions).

- self-confidence of photo n: s_n = P[n, ỹ_n], the probability the model gives its own label.
- per-class threshold (the paper's eq. 2): t_j = mean of P[n, j] over the photos labelled j, i.e. their mean
  self-confidence. A class no photo is labelled with gets t_j = ∞ (no photo is counted in it).
- confident joint (eq. 1): C[i][j] = #{n : ỹ_n = i and j = argmax over l with P[n, l] ≥ t_l of P[n, l]}: photo n
  counts where its given label i meets the class j the model is confident in; a photo with no class at or above
  its threshold counts nowhere. Its diagonal holds the photos the model agrees with.
- calibrated joint (eq. 3): Q[i][j] = (C[i][j] / Σ_j' C[i][j'] · N_i) / Σ_i'j' (the same), N_i the photos
  labelled i: each row rescaled to its class's count, then all to sum 1 (a row of C without counts stays 0).
  Q estimates the joint distribution of given and true labels.
- estimated share of label issues: Σ_{i≠j} Q[i][j].
- prune by noise rate (section 3.2): for each i ≠ j, the round(N · Q[i][j]) photos labelled i with the largest
  margin P[n, j] − P[n, i] are flagged; a photo flagged in several cells is flagged once, its suggested label the
  j of the cell where its margin is largest.

The flagged photos are ranked by self-confidence, lowest first (rank 1: the label the model believes least).
``suspects_png`` draws the first of them with Pillow, not matplotlib, whose import alone takes longer than the
second this stage may add to a `dvc repro`.

The paper's properties, checked in the tests: probabilities that give every photo its label with certainty flag
nothing (C and Q are diagonal); on well-separated classes whose out-of-sample probabilities point at the true
class, two photos with swapped labels are exactly the two flagged.
"""

import csv
import io
from dataclasses import dataclass

import numpy as np

from signdigits.errors import UsageError


@dataclass
class Audit:
    """The audit of N photos of K classes."""

    thresholds: np.ndarray  # (K,) t_j
    confident_joint: np.ndarray  # (K, K) C, int: given label down, the class the model is confident in across
    joint: np.ndarray  # (K, K) Q, the calibrated joint, summing to 1
    self_confidence: np.ndarray  # (N,) s_n
    issues: np.ndarray  # row indices of the flagged photos, ranked (lowest self-confidence first)
    suggested: np.ndarray  # (N,) the suggested label of each flagged photo, −1 for the others

    @property
    def share(self) -> float:
        """The estimated share of photos whose given label is wrong: Σ_{i≠j} Q[i][j]."""
        return float(self.joint.sum() - np.trace(self.joint))


def _checked(P, given) -> tuple[np.ndarray, np.ndarray]:
    P, given = np.asarray(P, dtype=np.float64), np.asarray(given)
    if P.ndim != 2 or P.shape[1] < 2 or given.shape != (len(P),):
        raise ValueError(f"probabilities (N, K ≥ 2) and labels (N,) expected, not {P.shape} and {given.shape}")
    if not np.issubdtype(given.dtype, np.integer) or (len(given) and (given.min() < 0 or given.max() >= P.shape[1])):
        raise ValueError(f"labels must be class indices in 0 … {P.shape[1] - 1}")
    if not np.all(np.isfinite(P)) or np.any(P < 0) or not np.allclose(P.sum(axis=1), 1, atol=1e-4):
        raise ValueError("each row of probabilities must be finite, non-negative and sum to 1")
    return P, given.astype(np.int64)


def self_confidence(P, given) -> np.ndarray:
    """s_n = P[n, ỹ_n]."""
    P, given = _checked(P, given)
    return P[np.arange(len(given)), given]


def per_class_thresholds(P, given) -> np.ndarray:
    """t_j = the mean of P[n, j] over the photos labelled j (∞ for a class without photos)."""
    P, given = _checked(P, given)
    counts = np.bincount(given, minlength=P.shape[1])
    sums = np.bincount(given, weights=self_confidence(P, given), minlength=P.shape[1])
    return np.divide(sums, counts, out=np.full(P.shape[1], np.inf), where=counts > 0)


def confident_class(P, thresholds) -> np.ndarray:
    """For each photo, argmax of P[n, l] over the classes l with P[n, l] ≥ t_l; −1 when there is none."""
    P = np.asarray(P, dtype=np.float64)
    above = P >= thresholds[None, :]
    best = np.where(above, P, -np.inf).argmax(axis=1)
    return np.where(above.any(axis=1), best, -1)


def confident_joint(P, given, thresholds) -> np.ndarray:
    """C[i][j]: the photos labelled i whose confident class (``confident_class``) is j."""
    P, given = _checked(P, given)
    K = P.shape[1]
    confident = confident_class(P, thresholds)
    counted = confident >= 0
    return np.bincount(given[counted] * K + confident[counted], minlength=K * K).reshape(K, K)


def calibrated_joint(C, label_counts) -> np.ndarray:
    """Q: each row of C rescaled to sum to its class's count N_i, then the whole divided by its sum (eq. 3)."""
    C = np.asarray(C, dtype=np.float64)
    rows = C.sum(axis=1, keepdims=True)
    scaled = np.divide(C, rows, out=np.zeros_like(C), where=rows > 0) * np.asarray(label_counts)[:, None]
    total = scaled.sum()
    return scaled / total if total > 0 else scaled


def prune_by_noise_rate(P, given, Q) -> tuple[np.ndarray, np.ndarray]:
    """(flagged (N,) bool, suggested (N,) int): for each i ≠ j, the round(N · Q[i][j]) photos labelled i with the
    largest margin P[n, j] − P[n, i] (ties: the lower row first) are flagged; a photo's suggested label is the j
    of its largest such margin, −1 for a photo not flagged."""
    P, given = _checked(P, given)
    N, K = P.shape
    flagged, suggested = np.zeros(N, dtype=bool), np.full(N, -1, dtype=np.int64)
    best_margin = np.full(N, -np.inf)
    for i in range(K):
        rows = np.flatnonzero(given == i)
        for j in range(K):
            count = min(int(round(N * Q[i][j])), len(rows))
            if i == j or count == 0:
                continue
            margin = P[rows, j] - P[rows, i]
            chosen = rows[np.argsort(-margin, kind="stable")[:count]]
            flagged[chosen] = True
            better = P[chosen, j] - P[chosen, i] > best_margin[chosen]
            suggested[chosen[better]] = j
            best_margin[chosen[better]] = (P[chosen, j] - P[chosen, i])[better]
    return flagged, suggested


def audit_labels(P, given) -> Audit:
    """The whole audit of photos with out-of-sample probabilities P and given labels."""
    P, given = _checked(P, given)
    thresholds = per_class_thresholds(P, given)
    C = confident_joint(P, given, thresholds)
    Q = calibrated_joint(C, np.bincount(given, minlength=P.shape[1]))
    flagged, suggested = prune_by_noise_rate(P, given, Q)
    confidence = self_confidence(P, given)
    rows = np.flatnonzero(flagged)
    ranked = rows[np.argsort(confidence[rows], kind="stable")]
    return Audit(thresholds, C, Q, confidence, ranked, suggested)


# --- the stage's files -----------------------------------------------------------------------------------------------
def read_out_of_fold(text: str, classes: list[str], path: str, training_rows: int) -> dict:
    """Stage crossval's out-of-fold predictions (the text of ``path``) as {row (N,), given (N,) class indices,
    sources (N,) str, probabilities (N, K)}, the columns p_<class> in the order of ``classes``. Its rows must be
    the ``training_rows`` training rows in order, or none (cross-validation off)."""
    fix = f"rerun `dvc repro` to rebuild {path}"
    header, *lines = list(csv.reader(io.StringIO(text))) or [[]]
    wanted = ["row", "true", "source"] + [f"p_{c}" for c in classes]
    missing = [name for name in wanted if name not in header]
    if missing:
        raise UsageError(f"{path} has no column {missing[0]} (classes {', '.join(classes)}); {fix}")
    index = {name: header.index(name) for name in wanted}
    class_of = {name: i for i, name in enumerate(classes)}
    try:
        table = {name: [line[index[name]] for line in lines] for name in wanted}
        given = np.array([class_of[label] for label in table["true"]], dtype=np.int64)
        row = np.array(table["row"], dtype=np.int64)
        P = np.array([table[f"p_{c}"] for c in classes], dtype=np.float64).T.reshape(len(lines), len(classes))
    except (IndexError, KeyError, ValueError) as error:
        raise UsageError(f"{path} holds a malformed line ({type(error).__name__}: {error}); {fix}") from None
    if len(row) and not np.array_equal(row, np.arange(training_rows)):
        raise UsageError(f"{path} does not list the {training_rows} training rows of data/split in order; {fix}")
    return {"row": row, "given": given, "sources": np.array(table["source"], dtype=str), "probabilities": P}


def issues_csv(audit: Audit, out_of_fold: dict, classes: list[str]) -> str:
    """reports/label_issues.csv: one line per flagged photo, ranked: rank, source, given label, suggested label,
    self-confidence and the probability of the suggested label."""
    buffer = io.StringIO()
    table = csv.writer(buffer, lineterminator="\n")
    table.writerow(["rank", "source", "given", "suggested", "self_confidence", "p_suggested"])
    P, given = out_of_fold["probabilities"], out_of_fold["given"]
    for rank, n in enumerate(audit.issues, start=1):
        j = audit.suggested[n]
        confidence = f"{audit.self_confidence[n]:.6g}"
        table.writerow([rank, out_of_fold["sources"][n], classes[given[n]], classes[j], confidence, f"{P[n, j]:.6g}"])
    return buffer.getvalue()


def joint_csv(audit: Audit, given, classes: list[str]) -> str:
    """reports/confident_joint.csv: the confident joint C, given label down and the class the model is confident in
    across, with each given label's count of photos and its threshold t (the mean self-confidence of its photos)."""
    counts = np.bincount(given, minlength=len(classes))
    lines = [",".join(["given", *classes, "photos", "threshold"])]
    if len(given) == 0:  # nothing audited
        return lines[0] + "\n"
    for i, name in enumerate(classes):
        cells = [str(c) for c in audit.confident_joint[i]] + [str(counts[i]), f"{audit.thresholds[i]:.6f}"]
        lines.append(",".join([name, *cells]))
    return "\n".join(lines) + "\n"


def summary(audit: Audit) -> dict:
    """reports/label_audit.json: the photos audited, how many are flagged, and the estimated share of label issues
    (Σ_{i≠j} Q[i][j]). No photo audited (cross-validation off: no out-of-fold probabilities): {"audited_photos": 0}."""
    photos = len(audit.self_confidence)
    if photos == 0:
        return {"audited_photos": 0}
    share = round(audit.share, 4)
    return {"audited_photos": photos, "label_issues": int(len(audit.issues)), "label_issue_share": share}


# --- the figure -------------------------------------------------------------------------------------------------------
CELL, PHOTO, FONT_SIZE, TITLE_HEIGHT = 170, 112, 12, 44  # pixels


def _caption_lines(source: str, given: str, suggested: str, confidence: float) -> list[str]:
    name = "/".join(str(source).split("/")[-2:])  # Dataset/7/IMG_5874.JPG → 7/IMG_5874.JPG
    return [name, f"given {given}, suggested {suggested}", f"s = {confidence:.2g}"]


def suspects_png(images, audit: Audit, given, sources, classes: list[str], count: int = 12) -> bytes:
    """PNG of the first ``count`` flagged photos (ranked), six to a line: each photo (its pixels ``images``, in
    [0, 1], enlarged without smoothing) over its file name, its given and suggested digit, and its self-confidence
    s. Nothing audited or nothing flagged: a line that says so."""
    from PIL import Image, ImageDraw, ImageFont

    font = ImageFont.load_default(size=FONT_SIZE)
    shown = audit.issues[:count]
    columns = max(1, min(6, len(shown)))
    lines = int(np.ceil(len(shown) / columns))
    width = max(columns * CELL, 6 * CELL)
    canvas = Image.new("L", (width, TITLE_HEIGHT + lines * (PHOTO + 4 * FONT_SIZE + 16) + 10), 255)
    draw = ImageDraw.Draw(canvas)
    if len(given) == 0:
        title = ["Label audit: cross-validation is off (split.folds ≤ 1), no out-of-fold probabilities to audit"]
    else:
        title = [
            f"Label audit: {len(audit.issues)} of {len(given)} training photos flagged (Confident Learning), "
            f"estimated share of label issues {audit.share:.1%}; the first {len(shown)}, least confident first",
            "s = the out-of-fold probability of the given digit",
        ]
    draw.multiline_text((8, 6), "\n".join(title), fill=0, font=font)
    side = int(round(np.sqrt(images.shape[1]))) if images.ndim == 2 and images.shape[1] else 1
    scale = max(1, PHOTO // side)
    for k, n in enumerate(shown):
        x = (k % columns) * CELL + (CELL - side * scale) // 2
        y = TITLE_HEIGHT + (k // columns) * (PHOTO + 4 * FONT_SIZE + 16)
        pixels = np.clip(np.rint(np.asarray(images[n]).reshape(side, side) * 255), 0, 255).astype(np.uint8)
        canvas.paste(Image.fromarray(pixels, "L").resize((side * scale, side * scale), Image.NEAREST), (x, y))
        caption = _caption_lines(sources[n], classes[given[n]], classes[audit.suggested[n]], audit.self_confidence[n])
        draw.multiline_text(((k % columns) * CELL + 6, y + side * scale + 4), "\n".join(caption), fill=0, font=font)
    buffer = io.BytesIO()
    canvas.save(buffer, format="PNG", optimize=False)
    return buffer.getvalue()
