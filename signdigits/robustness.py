"""Accuracy under everyday changes: the perturbation suite (perturbations.py) applied to held-out photos.

Each family (the other hand, a turn, a shift, nearer or farther, a brighter or darker room, contrast, exposure,
noise, blur, a covered part, another background) at severities 1–5 is applied to every held-out photo with a
fixed seed, and the network's accuracy measured on the result. The headline, ``robust_accuracy``, is the mean
over families of severities 1–3 (everyday changes; 4–5 are harsh, and stay in the table and the figure): crossval
reports it on the validation folds (``cv_robust``, for choosing), evaluate on the test split.

Families the training augmentation also draws from (train.augment_perturb) are measured all the same; their
figures are then those of a model that has seen such changes, and the families it has not seen say more about
photos nobody here took.
"""

import numpy as np

from signdigits.perturbations import suite

SEVERITIES = (1, 2, 3, 4, 5)
HEADLINE_SEVERITIES = (1, 2, 3)  # robust_accuracy's
SEED = 0  # the suite's random choices (directions, noise, patches), the same for every run


def accuracy_table(predict, X, y) -> dict[str, list[float]]:
    """{family: [accuracy at severity 1, …, 5]} of ``predict`` (rows → class indices) on the perturbed X."""
    table = {}
    for family, _, X_changed in suite(X, SEVERITIES, seed=SEED):
        table.setdefault(family, []).append(float(np.mean(predict(X_changed) == y)))
    return table


def robust_accuracy(table: dict[str, list[float]]) -> float:
    """The mean over families and severities 1–3 of ``accuracy_table``'s accuracies."""
    columns = [SEVERITIES.index(s) for s in HEADLINE_SEVERITIES]
    return float(np.mean([[accuracies[c] for c in columns] for accuracies in table.values()]))


def table_csv(table: dict[str, list[float]], clean: float) -> str:
    """family,severity,accuracy, one line per family and severity, after a line for the clean photos
    (family "none", severity 0)."""
    lines = ["family,severity,accuracy", f"none,0,{clean:.4f}"]
    for family, accuracies in table.items():
        lines += [f"{family},{s},{a:.4f}" for s, a in zip(SEVERITIES, accuracies)]
    return "\n".join(lines) + "\n"
