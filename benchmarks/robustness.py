"""Robustness, calibration and refusal of the README's models against the goals of issue 19, on the real data.

    SIGN_DIGITS_DATA=/path/to/dataset python benchmarks/robustness.py [--models default ten-digits-cnn …]
    SIGN_DIGITS_DATA=/path/to/dataset python benchmarks/robustness.py --models ten-digits-cnn --stage-train 3

For each model (the default params; the README's ``dvc exp run -n course`` line, the course project's network as it was,
the reference the default is measured against; its ``-n ten-digits`` and ``-n ten-digits-cnn`` lines), the pipeline's
own functions run in this process on the real photos, as the stages run them: cross-validation (clean accuracy, accuracy
under the perturbation suite, temperature, refusal threshold) and evaluate's figures on the test split, how many of 120
photos of a red ball the final model answers with a digit, and how honest the folds' networks are on four stand-ins for
photos from elsewhere (``STAND_INS``). Between them stage train runs as `dvc repro` runs it, in a process of its own
(interpreter start and imports included), which gives its time and peak memory (the CNN's cost goals). Every figure is
printed beside its goal; a missed goal with by how much (for a share of photos, how many photos) and why: within the
run's noise if the goal lies inside the figure's 95 % interval, else where what was tried about it is written up
(``WHY_MISSED``). The default's cost goal is measured on identical work in the same run (``dvc_repro_cost``): `dvc
repro` in a copy of the project against one at the commit before issue 19's first change, in turn, a full run and after
learning-rate edits; beside it, each model's share of its work that the robustness measurements take. ``--stage-train
N`` does nothing but time stage train, N times, first thing in the process (``stage_train_alone``).
"""

import argparse
import io
import math
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import matplotlib.cbook as cbook
import numpy as np
import yaml
from common import (
    ROOT,
    blas_kernel,
    copy_of_project,
    emptied,
    environment,
    readme_configuration,
    real_other_hands,
    real_split,
    repro,
    require_commit,
    set_learning_rate,
)
from matplotlib.colors import LightSource
from PIL import Image, ImageDraw

from signdigits.crossval import NO_CALIBRATION, calibrate, cross_validate, robustness_table
from signdigits.evaluation import predict_split, refusal_report, robustness_on_test
from signdigits.files import write_outputs
from signdigits.images import read_photo, to_network_input
from signdigits.modelfile import load_model
from signdigits.perturbations import (
    FAMILIES,
    MEASURED_NON_HANDS,
    SEVERITIES,
    image_side,
    mirror,
    non_hands,
    random_perturbations,
    replace_background,
    shift,
)
from signdigits.preprocess import normalize, stratified_folds
from signdigits.refusal import fit_stats
from signdigits.robustness import HEADLINE_SEVERITIES, robust_accuracy
from signdigits.stats import wilson_interval
from signdigits.training import other_hands_to_learn

MODELS = {
    "default": None,
    "course": "dvc exp run -n course ",
    "ten-digits": "dvc exp run -n ten-digits ",
    "ten-digits-cnn": "dvc exp run -n ten-digits-cnn ",
}
GOALS = {  # issue 19: (minimum clean CV, minimum robust CV, refused non-hands, refused other digits)
    "default": {"cv_robust_accuracy": 0.95, "cv_accuracy_mean": 0.98, "refused_other_digits": 0.80},
    "course": {},  # the reference: the course project's network, which the default replaced
    "ten-digits": {},
    "ten-digits-cnn": {"cv_robust_accuracy": 0.97, "cv_accuracy_mean": 0.99, "refused_non_hands": 0.95},
}
ECE_GOAL, REFUSED_CLEAN_GOAL, FAMILY_GOAL, MIRROR_GAP_GOAL = 0.02, 0.02, 0.90, 0.01
CNN_SECONDS_GOAL, CNN_MIB_GOAL, COST_GOAL = 120.0, 250.0, 1.5
# issue 19's cost goal: the default `dvc repro` within COST_GOAL times its time at ISSUE_COMMIT, the project as issue
# 19 found it (the commit before its first change, 5dbf98a), after each of these train.learning_rate edits in turn
ISSUE_COMMIT, EDITS = "5dbf98a9ce516f1f156b75c3783b73892c3907b3", (0.002, 0.0025, 0.003, 0.0035)
# issue 19's goals for the held-back photos from other sources, printed beside their stand-in here
ANSWERED_GOAL, SURE_AND_WRONG_GOAL, SURE = 0.90, 0.05, 0.9
MIXED_SEED, BUSY_SEED, PHOTO_SEED, OFF_CENTRE_SEED = 7, 8, 9, 10  # the stand-ins' draws
PHOTO_CROP = (0.15, 0.6)  # the side of a crop of a real image put behind the hand, a fraction of its shorter side
OFF_CENTRE = (SEVERITIES["shift"][2], SEVERITIES["shift"][3])  # how far a hand off centre sits, a fraction of the side
# red balls (discs) on light grounds, as a user might photograph one: sizes as fractions of the frame, 20 of each
BALL_SIZES, BALLS_PER_SIZE, BALL_SEED = (0.3, 0.4, 0.5, 0.6, 0.7, 0.8), 20, 3
# Why a goal is missed, printed beside the miss: where what was measured and tried about it is written up, or noise
WHY_MISSED = {
    "accuracy": "what was tried: docs/model.md#what-the-model-can-and-cannot-read",
    "cost": "the robust default trains on more rows for more epochs; where the time goes: "
    "docs/benchmarks.md#where-an-edits-rerun-goes",
    "CNN time": "its time varies with this shared machine's load; --stage-train N times it alone: "
    "docs/benchmarks.md#stage-train-alone",
    "CNN memory": "the CNN's training and its memory: docs/benchmarks.md#the-ten-digit-cnn",
    "noise": "the goal lies inside the 95 % interval: a miss within this run's noise",
}


def verdict(met: bool, short: str = "", why: str = "") -> str:
    """'met', or 'MISSED' with by how much (``short``) and why."""
    if met:
        return "met"
    return "MISSED" + (f" by {short}" if short else "") + (f": {why}" if why else "")


def judged(value: float, goal: float, at_least=True, photos: int | None = None, unit="", decimals=4):
    """A figure against its goal (a minimum, or a maximum if not ``at_least``): (the goal as text, whether it is met,
    by how much it is missed, to ``decimals``: '' if met). For a share of ``photos`` photos the shortfall also counts
    them: the photos more that a minimum needs, or fewer that a maximum allows."""
    met = value >= goal if at_least else value <= goal
    text = f"{'≥' if at_least else '≤'} {goal:g}{unit}"
    if met:
        return text, True, ""
    short = f"{abs(value - goal):.{decimals}f}{unit}"
    if photos:
        counted = round(value * photos)
        limit = math.ceil(goal * photos - 1e-9) if at_least else math.floor(goal * photos + 1e-9)
        short += f" ({abs(counted - limit)} of {photos} photos)"
    return text, False, short


def mixed_changes(X) -> np.ndarray:
    """A stand-in for photos from elsewhere: each photo mirrored half the time, then altered by two of the suite's
    other families in turn, each drawn per photo at a random strength up to severity 3 (random_perturbations,
    seeded)."""
    rng = np.random.default_rng(MIXED_SEED)
    families = [family for family in FAMILIES if family != "mirror"]
    X_mixed = np.where(rng.random(len(X))[:, None] < 0.5, mirror(X), X)
    for _ in range(2):
        X_mixed = random_perturbations(X_mixed, rng, families, 3, clean_share=0.0)
    return X_mixed


def busy_walls(X) -> np.ndarray:
    """A stand-in for photos taken in front of something other than a plain wall: each photo's background replaced
    by a synthetic non-hand image (non_hands, seeded: mostly busy ones, a disc, square or ring, a checkerboard,
    stripes, noise or blobs; some a flat tone or a gradient), which the suite's smooth dark ``background`` does not
    cover."""
    return replace_background(X, non_hands(len(X), image_side(X), seed=BUSY_SEED), 1.0)


def real_walls() -> list[np.ndarray]:
    """Two grey images that no training here draws from (matplotlib's sample data, installed with it): a photo of
    a person (grace_hopper.jpg, read in grey as the pipeline reads a photo: ITU-R 601 luma) and the shaded relief of
    a terrain (jacksboro_fault_dem.npz, lit from the north-west by matplotlib's LightSource), each in [0, 1]."""
    photo = cbook.get_sample_data("grace_hopper.jpg", asfileobj=False)
    person = np.asarray(Image.open(photo).convert("L"), dtype=np.float64) / 255
    with np.load(cbook.get_sample_data("jacksboro_fault_dem.npz", asfileobj=False)) as terrain:
        elevation = terrain["elevation"]
    return [person, LightSource(azdeg=315, altdeg=45).hillshade(elevation, vert_exag=0.05)]


def photo_walls(X) -> np.ndarray:
    """A stand-in for a photo taken in front of a person or a rough wall, made of images the networks never saw:
    each photo's background replaced by a square crop of one of ``real_walls`` in turn, its side a random fraction
    PHOTO_CROP of that source image's shorter side, at a random place, mirrored half the time, resized to the
    photos' side as ingest resizes a photo (images.to_network_input; seeded)."""
    rng, side = np.random.default_rng(PHOTO_SEED), image_side(X)
    walls = real_walls()
    new = np.empty((len(X), side, side))
    for i in range(len(X)):
        wall = walls[i % len(walls)]
        width = int(rng.uniform(*PHOTO_CROP) * min(wall.shape))
        top, left = (int(rng.integers(0, length - width + 1)) for length in wall.shape)
        crop = Image.fromarray(np.round(wall[top : top + width, left : left + width] * 255).astype(np.uint8))
        new[i] = to_network_input(crop, side) / 255
        if rng.random() < 0.5:
            new[i] = new[i][:, ::-1]
    return replace_background(X, new, 1.0)


def answering(nets, X, y, folds, calibrated: dict) -> list:
    """The folds' networks, each given the temperature and refusal threshold chosen on the folds (and the statistics
    of its own training rows that its refusal score reads), as stage train gives them to the final model."""
    score, threshold = calibrated["refusal"]["score"], calibrated["refusal"]["threshold"]
    for fold, net in enumerate(nets):
        training = folds != fold
        net.temperature, net.refusal = calibrated["temperature"], {"score": score, "threshold": threshold}
        net.ood_stats = fit_stats(net, X[training], y[training], score)
    return nets


def honesty(answering_nets, X_altered, y, folds) -> dict:
    """How honest the folds' networks are on altered photos X_altered (the training photos, altered): each fold's
    network, made ``answering`` (the temperature and refusal threshold chosen on the folds), answers its own fold, as
    the final model answers a user's photo. Returns the accuracy over all photos, the share refused, the accuracy of
    the answered ones (and its counts: how many were answered, how many of those right), and the share of all photos
    answered wrongly with probability ≥ SURE."""
    right, is_refused, sure = (np.zeros(len(y), dtype=bool) for _ in range(3))
    for fold, net in enumerate(answering_nets):
        rows = folds == fold
        answers = predict_split(net, {"X_test": X_altered[rows]})  # as evaluate answers the test photos
        right[rows], sure[rows] = answers.y_pred == y[rows], answers.confidence >= SURE
        is_refused[rows] = answers.refused
    answered = ~is_refused
    return {
        "accuracy": float(np.mean(right)),
        "refused": float(np.mean(is_refused)),
        "accuracy_answered": float(np.mean(right[answered])) if answered.any() else float("nan"),
        "answered": int(answered.sum()),
        "right_answered": int((right & answered).sum()),
        "sure_and_wrong": float(np.mean(answered & sure & ~right)),
    }


def off_centre(X) -> np.ndarray:
    """A stand-in for a photo framed with the hand to one side: each photo moved left or right (a seeded coin) by a
    fraction of the frame drawn uniformly in OFF_CENTRE, between the suite's shift at severities 3 and 4, in whole
    pixels, the edge pixels repeated into the uncovered strip (perturbations.shift). The suite moves the hand in a
    random direction; this one only sideways, as a user frames a hand too far left or right, which the dataset's
    photos teach least: its "5" reaches the frame's right edge far more often than its "0"."""
    rng, side = np.random.default_rng(OFF_CENTRE_SEED), image_side(X)
    columns = np.rint(rng.uniform(*OFF_CENTRE, len(X)) * side) * np.where(rng.random(len(X)) < 0.5, 1, -1)
    return shift(X, np.stack([np.zeros(len(X)), columns], axis=1))


STAND_INS = {
    "two changes at once": mixed_changes,
    "a busy background": busy_walls,
    "a photo behind": photo_walls,
    "a hand off centre": off_centre,
}


def red_balls(image_size: int) -> tuple[np.ndarray, np.ndarray]:
    """Photos of a red ball, read as `signdigits predict` reads a photo: for each of BALL_SIZES, BALLS_PER_SIZE
    discs that wide (a fraction of the frame), of a red drawn in [150, 255) × [0, 80)², on a light 200-pixel square
    (each channel in [200, 250)), the centre moved by up to a tenth of the frame (seeded). Returns (the network's
    rows, each photo's size)."""
    rng = np.random.default_rng(BALL_SEED)
    rows, sizes = [], np.repeat(BALL_SIZES, BALLS_PER_SIZE)
    for size in sizes:
        image = Image.new("RGB", (200, 200), tuple(int(v) for v in rng.integers(200, 250, 3)))
        radius, (x, y) = size * 100, 100 + rng.integers(-20, 21, 2)
        red = (int(rng.integers(150, 255)), int(rng.integers(0, 80)), int(rng.integers(0, 80)))
        ImageDraw.Draw(image).ellipse((x - radius, y - radius, x + radius, y + radius), fill=red)
        photo = io.BytesIO()
        image.save(photo, format="PNG")
        rows.append(read_photo(photo.getvalue(), image_size, f"ball {size}").reshape(-1))
    return normalize(np.stack(rows)), sizes


def balls_answered(net, image_size: int) -> dict:
    """How many of the red balls (red_balls) a network (the final model, or a fold's) answers with a digit instead
    of '?', per size."""
    X, sizes = red_balls(image_size)
    answered = ~predict_split(net, {"X_test": X}).refused
    return {float(size): int(np.sum(answered[sizes == size])) for size in BALL_SIZES}


# A stage script run as `python SCRIPT` runs it, which then writes its process's peak resident memory (VmHWM, in KiB)
# to ./peak_kib. Not getrusage's ru_maxrss of the child: a child that Python starts by fork (or vfork) and exec keeps
# the larger high-water mark of the memory it started with, this benchmark's own. Linux only (/proc).
PEAK_REPORTING = """
import runpy, sys
sys.argv = sys.argv[1:]
try:
    runpy.run_path(sys.argv[0], run_name="__main__")
finally:
    status = open("/proc/self/status").read().split("\\n")
    peak = next(line for line in status if line.startswith("VmHWM:")).split()[1]
    open("peak_kib", "w").write(peak)
"""


def train_stage(params: dict, X_train, y_train, X_others, calibrated: dict):
    """Stage train as `dvc repro` runs it, in a process of its own, in a temporary folder holding what it reads
    (these params, the training rows and other hands, the calibration that cross-validation chose): (the model it
    wrote, its wall-clock seconds with the interpreter's start and its imports, its peak memory in MiB: the
    process's maximum resident set, PEAK_REPORTING)."""
    with tempfile.TemporaryDirectory() as name:
        folder = Path(name)
        meta = {"classes": params["filter"]["classes"], "image_size": params["ingest"]["image_size"]}
        write_outputs(
            {
                folder / "params.yaml": yaml.safe_dump(params),
                folder / "data/split/meta.json": meta,
                folder / "data/split/X_train.npy": X_train,
                folder / "data/split/y_train.npy": y_train,
                folder / "data/split/X_others_train.npy": X_others,
                folder / "reports/calibration.json": calibrated,
            }
        )
        command = [sys.executable, "-c", PEAK_REPORTING, str(ROOT / "stages" / "train.py")]
        start = time.perf_counter()
        subprocess.run(command, cwd=folder, env=environment(ROOT), check=True)
        seconds = time.perf_counter() - start
        peak_mib = int((folder / "peak_kib").read_text()) / 1024
        return load_model(folder / "models" / "model.npz"), seconds, peak_mib


def dvc_repro_cost() -> dict:
    """Issue 19's cost goal, on identical work in the same run: in temporary git copies of the project as it is
    (now) and at ISSUE_COMMIT (then), each with the default params, a full `dvc repro` from an empty data/ and DVC
    cache (as the README's first command runs it in a fresh clone: the stages whose outputs are committed, such as
    crossval, are checked, not rerun), then a `dvc repro` after each train.learning_rate edit of EDITS (crossval and
    every stage after it rerun), the two copies in turn, which one first alternating, so that the shared machine's
    load and any order effect fall on both alike. Returns {"full": (now, then), "edits": [(now, then), …]} in seconds
    and "ran": (now, then), the stages each full run ran."""
    with tempfile.TemporaryDirectory() as now_folder, tempfile.TemporaryDirectory() as then_folder:
        copies = copy_of_project(Path(now_folder)), copy_of_project(Path(then_folder), ISSUE_COMMIT)

        def in_turn(turn: int, run) -> tuple:
            """run(project) for both copies, now's first on even turns; the results in the order (now, then)."""
            order = (0, 1) if turn % 2 == 0 else (1, 0)
            results = {side: run(copies[side]) for side in order}
            return results[0], results[1]

        full = in_turn(0, lambda project: repro(emptied(project), "--no-run-cache"))
        edits = []
        for turn, value in enumerate(EDITS, start=1):
            for project in copies:
                set_learning_rate(project, value)
            edits.append(tuple(result["total"] for result in in_turn(turn, repro)))
    ran = tuple(
        sorted(name for name in result if name not in ("total", "cpu") and not name.startswith("dvc"))
        for result in full
    )
    return {"full": tuple(result["total"] for result in full), "edits": edits, "ran": ran}


def measure(name: str) -> dict:
    """Every figure of one model, and the seconds of its core work and of the robustness work."""
    params = readme_configuration(MODELS[name])
    classes, train_params = params["filter"]["classes"], params["train"]
    X_train, X_test, y_train, y_test = real_split(classes)
    folds = stratified_folds(y_train, params["split"]["folds"], params["split"]["seed"])
    X_others, X_others_test, folds_others = real_other_hands(classes)
    learnt = other_hands_to_learn(train_params, X_others)
    seconds = {}

    start = time.perf_counter()
    _, per_fold, out_of_fold, nets = cross_validate(
        train_params, X_train, y_train, folds, len(classes), others=learnt, folds_others=folds_others
    )
    seconds["cross-validation"] = time.perf_counter() - start
    start = time.perf_counter()
    robust_cv = robustness_table(nets, X_train, y_train, folds)
    synthetic = non_hands(MEASURED_NON_HANDS, image_side(X_train))
    calibrated = calibrate(
        nets, X_train, y_train, folds, out_of_fold, params["refusal"], synthetic, X_others, folds_others
    )
    seconds["cross-validation's robustness and calibration"] = time.perf_counter() - start
    answering_nets = answering(nets, X_train, y_train, folds, calibrated)
    stand_ins = {  # the benchmark's, not a stage's
        stand_in: honesty(answering_nets, alter(X_train), y_train, folds) for stand_in, alter in STAND_INS.items()
    }
    image_size = params["ingest"]["image_size"]
    # one network's count says little: it varies with the training's draws
    balls_folds = [sum(balls_answered(net, image_size).values()) for net in answering_nets]

    net, seconds["final training (stage train)"], peak_mib = train_stage(params, X_train, y_train, X_others, calibrated)

    split = {"X_train": X_train, "y_train": y_train, "X_test": X_test, "y_test": y_test}
    start = time.perf_counter()
    predictions = predict_split(net, split)
    seconds["predicting the test split"] = time.perf_counter() - start
    start = time.perf_counter()
    robust_test = robustness_on_test(net, split)
    refusals = refusal_report(net, X_test, y_test, predictions, X_others_test)
    balls = balls_answered(net, image_size)
    seconds["evaluate's robustness and refusals"] = time.perf_counter() - start

    accuracy = [f["accuracy"] for f in per_fold]
    column = HEADLINE_SEVERITIES[-1] - 1
    figures = {"dvc_repro": dvc_repro_cost()} if name == "default" else {}
    return figures | {
        "cv_accuracy_mean": float(np.mean(accuracy)),
        "cv_accuracy_std": float(np.std(accuracy)),
        "cv_robust_accuracy": robust_accuracy(robust_cv),
        "cv_severity_3": {family: accuracies[column] for family, accuracies in robust_cv.items()},
        "oof_accuracy": float(np.mean(out_of_fold["predicted"] == y_train)),
        "validation_photos": len(y_train),
        "other_digits_photos": len(X_others_test),
        "calibrated": calibrated,
        "stand_ins": stand_ins,
        "test_accuracy": float(np.mean(predictions.y_pred == y_test)),
        "test_robust_accuracy": robust_accuracy(robust_test),
        "refusals": refusals,
        "balls": balls,
        "balls_folds": balls_folds,
        "seconds": seconds,
        "peak_mib": peak_mib,
    }


def row(label: str, figure: str, goal: str | None = None, met: bool | None = None, short: str = "", why: str = ""):
    """One line of the report: the figure, then its goal and whether it is met, if it has one; if missed, by how
    much (``short``) and why."""
    print(f"  {label:<26}{figure}" + (f"   goal {goal}: {verdict(met, short, why)}" if goal else ""))


def judged_row(label: str, figure: str, value: float, goal: float | None, why=WHY_MISSED["accuracy"], note="", **how):
    """``row`` for a figure with a goal (``judged``'s ``how``: at_least, photos, unit, decimals; ``note`` follows
    the goal), or none if goal is None. A share of ``photos`` photos that misses a goal lying inside its 95 % interval
    (Wilson) is said to miss within the run's noise, instead of ``why``."""
    if goal is None:
        return row(label, figure)
    text, met, short = judged(value, goal, **how)
    photos = how.get("photos")
    if not met and photos:
        low, high = wilson_interval(round(value * photos), photos)
        why = WHY_MISSED["noise"] if low <= goal <= high else why
    row(label, figure, text + note, met, short, why)


def report(name: str, figures: dict) -> None:
    goals = GOALS[name]
    calibrated, refusals, seconds = figures["calibrated"], figures["refusals"], figures["seconds"]
    chosen, refused = calibrated["refusal"], refusals["refused"]
    print(f"\n{name}: {MODELS[name] or 'the default params'}")

    clean, robust, n = figures["cv_accuracy_mean"], figures["cv_robust_accuracy"], figures["validation_photos"]
    clean_text = f"{clean:.4f} ± {figures['cv_accuracy_std']:.4f} (out-of-fold {figures['oof_accuracy']:.4f})"
    judged_row("clean CV", clean_text, clean, goals.get("cv_accuracy_mean"), photos=n)
    goal = goals.get("cv_robust_accuracy")
    judged_row("cv_robust_accuracy", f"{robust:.4f} (severities 1–3)", robust, goal)
    at_3 = figures["cv_severity_3"]
    row("severity 3, per family", ", ".join(f"{family} {value:.3f}" for family, value in at_3.items()))
    worst = min(at_3, key=at_3.get)
    judged_row("worst family at 3", f"{worst} {at_3[worst]:.4f}", at_3[worst], FAMILY_GOAL, photos=n)
    gap = figures["oof_accuracy"] - at_3["mirror"]
    judged_row("mirrored below clean", f"{gap:+.4f}", gap, MIRROR_GAP_GOAL, at_least=False)
    ece = calibrated["ece_after"]
    ece_text = f"{calibrated['ece_before']:.4f} → {ece:.4f} (temperature {calibrated['temperature']:.3f})"
    judged_row("ECE out-of-fold", ece_text, ece, ECE_GOAL, at_least=False)
    share = chosen["refused_validation"]
    judged_row(
        f"refused clean ({chosen['score']})", f"{share:.4f}", share, REFUSED_CLEAN_GOAL, at_least=False, photos=n
    )
    row("non-hand AUROC per score", str(calibrated["non_hand_auroc"]) + " (folds)")
    share = refused["non_hands"]
    text = f"{share:.4f} (final model; {chosen['refused_non_hands']:.4f} folds), AUROC {refusals['auroc']['non_hands']}"
    judged_row("non-hands refused", text, share, goals.get("refused_non_hands"), photos=MEASURED_NON_HANDS)
    if "other_digits" in refused:
        share = refused["other_digits"]
        folds_text = (
            f"{chosen['refused_other_hands']:.4f} folds, AUROC {calibrated['other_hand_auroc'][chosen['score']]}"
        )
        text = f"{share:.4f} (test split's, AUROC {refusals['auroc']['other_digits']}; {folds_text})"
        goal, others = goals.get("refused_other_digits"), figures["other_digits_photos"]
        judged_row("other digits refused", text, share, goal, photos=others)
    balls = figures["balls"]
    per_size = ", ".join(f"{size:.0%} {count}" for size, count in balls.items())
    total = len(balls) * BALLS_PER_SIZE
    row("red balls answered", f"{sum(balls.values())} of {total} (final model; by width: {per_size})")
    each = figures["balls_folds"]
    row("  by the folds' networks", f"{sum(each)} of {total * len(each)} ({', '.join(map(str, each))})")
    for stand_in, honest in figures["stand_ins"].items():
        text = (
            f"accuracy {honest['accuracy']:.4f}, refused {honest['refused']:.4f} "
            "(folds; a stand-in for photos from elsewhere)"
        )
        row(stand_in, text)
        share, answered = honest["accuracy_answered"], honest["answered"]
        held_back = " (held-back photos)"
        if answered:  # how far the share may be from the model's true one, on so few photos (95 %, Wilson)
            low, high = wilson_interval(honest["right_answered"], answered)
            text = f"{share:.4f} (95 % {low:.3f}–{high:.3f}; {honest['right_answered']} of {answered} answered)"
            judged_row("  right, of the answered", text, share, ANSWERED_GOAL, note=held_back, photos=answered)
        else:  # no share to judge: every photo refused
            row("  right, of the answered", "none answered")
        share = honest["sure_and_wrong"]
        how = {"at_least": False, "photos": n}
        judged_row(f"  wrong at p ≥ {SURE}", f"{share:.4f} of all", share, SURE_AND_WRONG_GOAL, note=held_back, **how)
    test_text = (
        f"accuracy {figures['test_accuracy']:.4f}, robust {figures['test_robust_accuracy']:.4f}, refused "
        f"{refused['test']:.4f}, accuracy of the answered {refusals['accuracy_answered']:.4f}"
    )
    row("test split", test_text)
    row("seconds", ", ".join(f"{k} {v:.1f}" for k, v in seconds.items()))
    ratio = sum(seconds.values()) / sum(v for k, v in seconds.items() if "robustness" not in k)
    row("with robustness / without", f"{ratio:.2f}× (the work above with the robustness measurements, against without)")
    if "dvc_repro" in figures:
        now, then = figures["dvc_repro"]["full"]
        full = f"{now:.1f} s against {then:.1f} s at {ISSUE_COMMIT[:7]}: {now / then:.2f}×"
        ran_now, ran_then = figures["dvc_repro"]["ran"]
        if ran_now == ran_then:
            judged_row(
                "dvc repro, full", full, now / then, COST_GOAL, WHY_MISSED["cost"], at_least=False, unit="×", decimals=2
            )
        else:  # the README's first command then and now, but not the same work: no verdict
            row("dvc repro, full", f"{full} (not the same stages: no verdict)")
        row("  stages it ran", f"now {', '.join(ran_now)}; at {ISSUE_COMMIT[:7]} {', '.join(ran_then)}")
        edits = figures["dvc_repro"]["edits"]
        ratios = [now / then for now, then in edits]
        each = ", ".join(f"{now:.1f}/{then:.1f}" for now, then in edits)
        mean = float(np.mean(ratios))
        text = f"{each} s: mean {mean:.2f}× (crossval and after)"
        judged_row(
            "dvc repro after an edit", text, mean, COST_GOAL, WHY_MISSED["cost"], at_least=False, unit="×", decimals=2
        )
    if name == "ten-digits-cnn":
        final, mib = seconds["final training (stage train)"], figures["peak_mib"]
        text = f"{final:.1f} s (right after the cross-validation; --stage-train times it alone)"
        how = {"at_least": False, "unit": " s", "decimals": 1}
        judged_row("stage train", text, final, CNN_SECONDS_GOAL, WHY_MISSED["CNN time"], **how)
        how = {"at_least": False, "unit": " MiB", "decimals": 0}
        judged_row("stage train, peak memory", f"{mib:.0f} MiB", mib, CNN_MIB_GOAL, WHY_MISSED["CNN memory"], **how)


def stage_train_alone(name: str, repeats: int) -> None:
    """Stage train of one model, timed ``repeats`` times as ``measure`` times it, but first thing in this process
    (for the first model given): in ``measure`` it follows the cross-validation's minutes of full load (the CNN
    line's: 12), after which this machine has run it slower. With NO_CALIBRATION (what a run without cross-validation
    stores) the stage does the same training; only a mahalanobis refusal would store statistics that take one more
    pass over the rows."""
    params = readme_configuration(MODELS[name])
    classes = params["filter"]["classes"]
    X_train, _, y_train, _ = real_split(classes)
    X_others = real_other_hands(classes)[0]
    print(f"\n{name}: {MODELS[name] or 'the default params'}")
    runs = [train_stage(params, X_train, y_train, X_others, NO_CALIBRATION)[1:] for _ in range(repeats)]
    seconds, mib = [run[0] for run in runs], max(run[1] for run in runs)
    median = float(np.median(seconds))
    each = ", ".join(f"{run:.1f}" for run in seconds)
    has_goals = name == "ten-digits-cnn"
    seconds_goal, memory_goal = (CNN_SECONDS_GOAL, CNN_MIB_GOAL) if has_goals else (None, None)
    how = {"at_least": False, "unit": " s", "decimals": 1}
    judged_row(
        "stage train, alone", f"{each} s: median {median:.1f} s", median, seconds_goal, WHY_MISSED["CNN time"], **how
    )
    how = {"at_least": False, "unit": " MiB", "decimals": 0}
    judged_row("stage train, peak memory", f"{mib:.0f} MiB", mib, memory_goal, WHY_MISSED["CNN memory"], **how)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", nargs="+", choices=list(MODELS), default=list(MODELS))
    parser.add_argument(
        "--stage-train",
        type=int,
        metavar="N",
        help="only time each model's stage train, N times, first thing in the process (stage_train_alone)",
    )
    options = parser.parse_args()
    if options.stage_train is not None and options.stage_train < 1:
        parser.error(f"--stage-train N needs N ≥ 1, not {options.stage_train}")
    if "default" in options.models and options.stage_train is None:
        require_commit(ISSUE_COMMIT)  # before minutes of work, not after them
    print(f"BLAS: {blas_kernel()}")
    for name in options.models:
        if options.stage_train is not None:
            stage_train_alone(name, options.stage_train)
        else:
            report(name, measure(name))


if __name__ == "__main__":
    main()
