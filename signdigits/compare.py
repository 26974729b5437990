"""``signdigits compare A B``: do two runs really differ, judged on the same photos?

A and B are experiment names (as `dvc exp show` lists them), git revisions (a commit, branch or tag), or
``workspace``. The command reads each run's out-of-fold predictions (reports/crossval_predictions.csv, one per
training photo, from stage crossval) through DVC's API, which resolves experiment names as `dvc` does. Both runs
must have cross-validated the same photos in the same folds (same rows, folds and labels), otherwise the pairing
means nothing and the command refuses. It prints each run's out-of-fold accuracy, the discordant counts and the
exact McNemar p-value (``stats.mcnemar_p``).
"""

import csv
from pathlib import Path

import numpy as np

from signdigits.errors import UsageError
from signdigits.stats import discordant_counts, mcnemar_p

PREDICTIONS = "reports/crossval_predictions.csv"
COLUMNS = ["row", "fold", "true", "predicted", "probability"]


def read_predictions(run: str, repo: str = ".") -> dict:
    """The out-of-fold predictions of ``run`` as columns {row, fold, true, predicted} (strings)."""
    if run == "workspace":
        path = Path(repo) / PREDICTIONS
        if not path.is_file():
            raise UsageError(f"{PREDICTIONS} not found in the workspace; run `dvc repro`")
        text = path.read_text()
    else:
        import dvc.api
        from dvc.exceptions import DvcException

        try:
            text = dvc.api.read(PREDICTIONS, repo=repo, rev=run)
        except DvcException as error:
            raise UsageError(
                f"cannot read {PREDICTIONS} of '{run}' ({' '.join(str(error).split())}); give an experiment name "
                "from `dvc exp show`, a git revision, or 'workspace'"
            ) from None
    header, *lines = csv.reader(text.splitlines())  # later columns (source, p_<class>) may follow; a path may hold ","
    if header[: len(COLUMNS)] != COLUMNS:
        raise UsageError(f"{PREDICTIONS} of '{run}' does not start with {','.join(COLUMNS)}; rerun `dvc repro`")
    if not lines:
        raise UsageError(f"'{run}' has no out-of-fold predictions: it ran with cross-validation off (split.folds ≤ 1)")
    cells = np.array([line[:4] for line in lines])
    return {name: cells[:, i] for i, name in enumerate(COLUMNS[:4])}


def compare(run_a: str, run_b: str, repo: str = ".") -> dict:
    """Each run's out-of-fold accuracy, the discordant counts (b: A right and B wrong, c: the reverse) and the
    exact McNemar p-value."""
    a, b = read_predictions(run_a, repo), read_predictions(run_b, repo)
    same = all(np.array_equal(a[name], b[name]) for name in ("row", "fold", "true"))
    if not same:
        raise UsageError(
            f"'{run_a}' and '{run_b}' were cross-validated on different photos or folds (their split, filter or "
            "ingest params or data differ), so their predictions cannot be paired; compare runs that share them"
        )
    right_only_a, right_only_b = discordant_counts(a["true"], a["predicted"], b["predicted"])
    return {
        "photos": len(a["true"]),
        "accuracy_a": float(np.mean(a["predicted"] == a["true"])),
        "accuracy_b": float(np.mean(b["predicted"] == b["true"])),
        "a_right_b_wrong": right_only_a,
        "b_right_a_wrong": right_only_b,
        "p": mcnemar_p(right_only_a, right_only_b),
    }


def report(run_a: str, run_b: str, result: dict) -> str:
    width = max(len(run_a), len(run_b))
    n = result["photos"]
    return "\n".join(
        [
            f"out-of-fold predictions of the same {n} training photos:",
            f"  {run_a:<{width}}  accuracy {result['accuracy_a']:.4f}",
            f"  {run_b:<{width}}  accuracy {result['accuracy_b']:.4f}",
            f"  right in {run_a} only: {result['a_right_b_wrong']}, right in {run_b} only: {result['b_right_a_wrong']}",
            f"  exact McNemar p = {result['p']:.4g} (two-sided binomial test of the discordant photos)",
        ]
    )
