"""``signdigits compare A B``: do two runs really differ, judged on the same photos?

A and B are experiment names (as `dvc exp show` lists them), git revisions (a commit, branch or tag), or
``workspace``. The command reads each run's out-of-fold predictions (reports/crossval_predictions.csv, one per
training photo, from stage crossval) through DVC's API, which resolves experiment names as `dvc` does. Both runs
must have cross-validated the same photos in the same folds (same rows, folds and labels), otherwise the pairing
means nothing and the command refuses. It prints each run's out-of-fold accuracy, the discordant counts and the
exact McNemar p-value (``stats.mcnemar_p``), and ends with one plain sentence (``verdict``): which run is right on
more photos, by how many, and whether that is evidence of a difference (p < 0.05) or not.
"""

import csv
from pathlib import Path

import numpy as np

from signdigits.errors import UsageError, printable
from signdigits.files import open_regular, read_capped
from signdigits.stats import discordant_counts, mcnemar_p

PREDICTIONS = "reports/crossval_predictions.csv"
LEVEL = 0.05  # p below it: evidence that one run is more accurate
COLUMNS = ["row", "fold", "true", "predicted", "probability"]
# One line per training photo (2,062 photos at most: about 60 KB); past this the file is not one of ours.
PREDICTIONS_LIMIT = 64 * 2**20
NAME_LIMIT = 255  # characters of a run name: git's limit for one ref name component


def _shown(run: str) -> str:
    """A run name as messages show it: escaped, and cut to 60 characters."""
    return printable(run if len(run) <= 60 else run[:57] + "...")


def _read_text(run: str, repo: str) -> str:
    if run == "workspace":
        path = Path(repo) / PREDICTIONS
        try:
            with open_regular(path) as file:
                data = read_capped(file, PREDICTIONS_LIMIT)
        except FileNotFoundError:
            raise UsageError(f"{PREDICTIONS} not found in the workspace; run `dvc repro`") from None
        except OSError as error:
            raise UsageError(f"cannot read {PREDICTIONS} ({error.strerror}); rerun `dvc repro`") from None
        if data is None:
            raise UsageError(f"{PREDICTIONS} is larger than {PREDICTIONS_LIMIT // 2**20} MiB; rerun `dvc repro`")
        return data.decode(errors="replace")
    if len(run) > NAME_LIMIT or not run.isprintable():
        raise UsageError(
            f"'{_shown(run)}' is not a run name (at most {NAME_LIMIT} printable characters); give an experiment "
            "name from `dvc exp show`, a git revision, or 'workspace'"
        )
    import dvc.api

    try:
        return dvc.api.read(PREDICTIONS, repo=repo, rev=run)
    except Exception as error:  # DvcException, and what git's libraries raise on revisions such as HEAD:reports
        raise UsageError(
            f"cannot read {PREDICTIONS} of '{_shown(run)}' ({type(error).__name__}: {' '.join(str(error).split())}); "
            "give an experiment name from `dvc exp show`, a git revision, or 'workspace'"
        ) from None


def read_predictions(run: str, repo: str = ".") -> dict:
    """The out-of-fold predictions of ``run`` as columns {row, fold, true, predicted} (strings)."""
    rows = list(csv.reader(_read_text(run, repo).splitlines()))  # later columns (source, p_<class>) may follow
    header, *lines = rows or [[]]
    if header[: len(COLUMNS)] != COLUMNS:
        raise UsageError(
            f"{PREDICTIONS} of '{_shown(run)}' does not start with {','.join(COLUMNS)} (empty or damaged); rerun "
            "`dvc repro`"
        )
    if not lines:
        raise UsageError(
            f"'{_shown(run)}' has no out-of-fold predictions: it ran with cross-validation off (split.folds ≤ 1)"
        )
    damaged = next((number for number, row in enumerate(lines, start=2) if len(row) != len(header)), None)
    if damaged is not None:
        raise UsageError(
            f"{PREDICTIONS} of '{_shown(run)}' is truncated or damaged at line {damaged} (not {len(header)} "
            "columns); rerun `dvc repro`"
        )
    cells = np.array([line[:4] for line in lines])
    return {name: cells[:, i] for i, name in enumerate(COLUMNS[:4])}


def compare(run_a: str, run_b: str, repo: str = ".") -> dict:
    """Each run's out-of-fold accuracy, the discordant counts (b: A right and B wrong, c: the reverse) and the
    exact McNemar p-value."""
    a, b = read_predictions(run_a, repo), read_predictions(run_b, repo)
    same = all(np.array_equal(a[name], b[name]) for name in ("row", "fold", "true"))
    if not same:
        raise UsageError(
            f"'{_shown(run_a)}' and '{_shown(run_b)}' were cross-validated on different photos or folds (their "
            "split, filter or ingest params or data differ), so their predictions cannot be paired; compare runs that "
            "share them"
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
    run_a, run_b = printable(run_a), printable(run_b)
    width = max(len(run_a), len(run_b))
    n = result["photos"]
    return "\n".join(
        [
            f"out-of-fold predictions of the same {n} training photos:",
            f"  {run_a:<{width}}  accuracy {result['accuracy_a']:.4f}",
            f"  {run_b:<{width}}  accuracy {result['accuracy_b']:.4f}",
            f"  right in {run_a} only: {result['a_right_b_wrong']}, right in {run_b} only: {result['b_right_a_wrong']}",
            f"  exact McNemar p = {result['p']:.4g} (two-sided binomial test of the discordant photos)",
            verdict(run_a, run_b, result),
        ]
    )


def verdict(run_a: str, run_b: str, result: dict) -> str:
    """One sentence: which run is more accurate on the out-of-fold predictions, by how many photos (right in one
    only, minus the reverse), and whether the exact McNemar p-value makes that evidence (p < LEVEL)."""
    lead = result["a_right_b_wrong"] - result["b_right_a_wrong"]
    p = repr(float(f"{result['p']:.2g}"))  # two significant digits: 1.0, 0.39, 0.0034, 3.4e-05
    if lead == 0:
        return f"{run_a} and {run_b} are right on as many photos: no evidence either is better (p = {p})."
    better, photos = (run_a if lead > 0 else run_b), f"{abs(lead)} photo{'s' if abs(lead) != 1 else ''}"
    if result["p"] < LEVEL:
        return f"{better} is more accurate, by {photos}, and that is evidence it is better (p = {p} < {LEVEL})."
    return f"{better} is right on {photos} more, but that is no evidence either is better (p = {p})."
