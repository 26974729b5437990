"""Command line: ``signdigits predict PHOTO [PHOTO …]``, ``signdigits compare A B`` and ``signdigits export MODEL
OUT.onnx`` (also ``python -m signdigits``).

Each photo is preprocessed exactly as the pipeline did — read as a viewer shows it, grayscale, image_size²,
divided by the pixel scale — with image_size, pixel scale and class names read from the model file, not from
params.yaml, so a model keeps working after the params change. The answer is a digit with its calibrated
probability, or "?" with the reason (``--json``: "digit": null and "reason") when the photo is too small to show
a hand or unlike the photos the model was trained on (refusal.py): a refusal is an answer, exit status 0. A
photo that cannot be read is reported on stderr (``--json``: its entry holds ``error`` instead of ``digit``), the
others are still predicted, and the exit status is 1. ``export`` writes a model as an ONNX graph (``export.py``;
needs the optional ``onnx`` package).
"""

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from signdigits.errors import UsageError, exit_code, printable

DEFAULT_MODEL = "models/model.npz"
MAX_PIXEL_SCALE = 65535  # pixels are divided by the scale: 255 for 8-bit photos, at most 65535 (16-bit)


def load_predictor(model_path):
    """The network in ``model_path`` and its metadata, checked for what prediction reads: the class names, the
    image size and the pixel scale."""
    from signdigits.modelfile import load_model

    net = load_model(model_path)
    meta = net.metadata
    missing = [key for key in ("classes", "image_size", "pixel_scale") if key not in meta]
    if missing:
        raise UsageError(f"{model_path} has no record of its {missing[0]}; train it with `dvc repro train`")
    classes, image_size, scale = meta["classes"], meta["image_size"], meta["pixel_scale"]
    problem = None
    if not (isinstance(classes, list) and all(isinstance(name, str) for name in classes)):
        problem = f"classes {classes!r}, not a list of names"
    elif isinstance(image_size, bool) or not isinstance(image_size, int) or image_size < 1:
        problem = f"image_size {image_size!r}, not a whole number of pixels ≥ 1"
    elif isinstance(scale, bool) or not isinstance(scale, int | float) or not 1 <= scale <= MAX_PIXEL_SCALE:
        # compared, not converted: a JSON integer of 400 digits overflows a float; 1e-300 would make every input inf
        problem = f"pixel_scale {scale!r:.40}, not a number in [1, {MAX_PIXEL_SCALE}] (the largest pixel value)"
    if problem:
        raise UsageError(f"{model_path} records {problem}; retrain it with `dvc repro train`")
    if image_size**2 != net.n_inputs or len(classes) != max(2, net.n_outputs):
        raise UsageError(
            f"{model_path} is inconsistent: {net.n_inputs} inputs for {image_size}² pixels, "
            f"{net.n_outputs} outputs for classes {classes}; retrain it with `dvc repro train`"
        )
    return net, meta


def predict_photos(paths, model_path=DEFAULT_MODEL):
    """[{path, digit, probability}] for each photo path, in order: the probability is that of the digit given that
    the photo shows one of the model's digits; a model with the "other" output adds ``p_other``, the probability
    that it shows none of them. A photo the model refuses gets digit None, a ``reason`` and its best ``guess``
    (with that guess's probability, if the model saw it); a photo that cannot be read gets {path, error} instead,
    and the others are still predicted. A bad model stops everything (a UsageError)."""
    from signdigits.evaluation import confidence_of_prediction
    from signdigits.images import TooSmall, read_photo
    from signdigits.preprocess import normalize
    from signdigits.refusal import MIN_SIDE, MIN_SPREAD, flat, ood_score, other_probability

    net, meta = load_predictor(model_path)
    if not net.calibrated:
        print(
            f"note: {model_path} is from before calibration: its probabilities are not calibrated and it never "
            "answers '?'; retrain it with `dvc repro train`",
            file=sys.stderr,
        )
    results, rows = [], []
    for path in paths:
        try:
            rows.append(read_photo(path, meta["image_size"], str(path), min_side=MIN_SIDE).reshape(-1))
            results.append({"path": str(path)})
        except TooSmall as refusal:
            results.append({"path": str(path), "digit": None, "probability": None, "reason": str(refusal)})
        except UsageError as error:
            results.append({"path": str(path), "error": printable(" ".join(str(error).split()))})
    if rows:
        X = normalize(np.stack(rows), meta["pixel_scale"])
        Z = net.logits(X)
        predicted, proba = net.classes(Z), net.probabilities(Z)
        confidence = confidence_of_prediction(proba, predicted)
        is_flat = flat(X)
        if net.refusal is not None:
            score, threshold = net.refusal["score"], net.refusal["threshold"]
            scores = ood_score(net, X, score, net.ood_stats, net.temperature, Z)
        other = other_probability(net, X, net.temperature) if net.other_output else None
        seen = [result for result in results if "error" not in result and "reason" not in result]
        for i, (result, k, p) in enumerate(zip(seen, predicted, confidence)):
            result |= {"digit": meta["classes"][k], "probability": round(float(p), 4)}
            if net.other_output:
                result["p_other"] = round(float(other[i]), 4)
            reason = None
            if is_flat[i]:
                reason = f"a flat image, no hand (its grey levels spread {X[i].std():.3f} < {MIN_SPREAD})"
            elif net.refusal is not None and scores[i] < threshold and net.other_output and other[i] > 0.5:
                reason = f"none of its digits: another hand or no hand (P(other) {other[i]:.3f})"
            elif net.refusal is not None and scores[i] < threshold:
                reason = f"unlike the photos it was trained on ({score} score {scores[i]:.4g} < {threshold:.4g})"
            if reason:
                result |= {"digit": None, "guess": meta["classes"][k], "reason": reason}
    return results


def export_model(model_path, onnx_path):
    """``signdigits export``: the model, checked as for prediction, written to ``onnx_path`` as an ONNX graph."""
    from signdigits.export import OPSET, require_onnx, write_onnx

    require_onnx()  # before anything else: without it nothing can be done
    if Path(onnx_path).resolve() == Path(model_path).resolve():
        raise UsageError(f"{onnx_path} is the model file itself; write the ONNX graph to another file")
    net, _ = load_predictor(model_path)
    size = write_onnx(net, onnx_path)
    print(f"{onnx_path}\t{size} bytes\tONNX opset {OPSET}", flush=True)


def main(argv=None) -> int:
    """Run the command line ``argv`` (default: sys.argv[1:]) and return its exit status; the process goes on."""
    parser = argparse.ArgumentParser(prog="signdigits", description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    predict = commands.add_parser("predict", help="predict the digit shown in each photo")
    predict.add_argument("photos", nargs="+", metavar="PHOTO", help="JPEG or PNG photos of a hand sign")
    predict.add_argument("--model", default=DEFAULT_MODEL, help=f"model file (default: {DEFAULT_MODEL})")
    predict.add_argument("--json", action="store_true", help="print a JSON list instead of lines")
    compare = commands.add_parser("compare", help="do two runs differ on the same photos? (exact McNemar test)")
    compare.add_argument("runs", nargs=2, metavar="RUN", help="an experiment name, a git revision, or 'workspace'")
    export = commands.add_parser("export", help="write a model as an ONNX graph, for any ONNX runtime")
    export.add_argument("model", metavar="MODEL", help="model file, e.g. models/model.npz")
    export.add_argument("output", metavar="OUT", help="the ONNX file to write, e.g. model.onnx")
    try:
        arguments = parser.parse_args(argv)
    except SystemExit as stop:  # --help, or a usage mistake argparse has already explained on stderr
        return stop.code

    failed = []

    def run():
        if arguments.command == "compare":
            from signdigits.compare import compare, report

            print(report(*arguments.runs, compare(*arguments.runs)))
            return
        if arguments.command == "export":
            export_model(arguments.model, arguments.output)
            return
        results = predict_photos(arguments.photos, arguments.model)
        failed.extend(result for result in results if "error" in result)
        if arguments.json:
            print(json.dumps(results, indent=2))
        for result in results:  # each unreadable photo: one line on stderr, in the order given
            if "error" in result:
                print(f"error: {result['error']}", file=sys.stderr, flush=True)
            elif arguments.json:
                continue
            elif result["digit"] is None:
                print(f"{printable(result['path'])}\t?\t{result['reason']}", flush=True)
            else:
                # the path and the model's class names are anyone's text: escaped, so each photo is one line
                path, digit = printable(result["path"]), printable(result["digit"])
                print(f"{path}\t{digit}\t{result['probability']:.4f}", flush=True)

    # a bad model: exit status 1 and nothing predicted; a bad photo: the others predicted, then exit status 1
    return exit_code(run) or (1 if failed else 0)


if __name__ == "__main__":
    sys.exit(main())
