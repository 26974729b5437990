"""Stage baseline: scikit-learn's LogisticRegression on the same split → data/baseline.json, so every run
shows whether the network beats a plain linear model (evaluate puts it into reports/metrics.json)."""

from signdigits.errors import exit_on_usage_error
from signdigits.evaluation import logistic_regression_baseline
from signdigits.files import load_split, write_outputs


def main():
    split, _ = load_split()
    write_outputs({"data/baseline.json": logistic_regression_baseline(split)})


if __name__ == "__main__":
    exit_on_usage_error(main)
