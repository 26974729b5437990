"""Stage audit: the label audit (signdigits/audit.py, Confident Learning) of the training photos, on stage
crossval's out-of-fold probabilities → reports/label_issues.csv (the flagged photos, ranked, by source path),
reports/confident_joint.csv, reports/label_audit.json (the estimated share of label issues) and
reports/label_issues.png (the top suspects; not committed: it shows dataset photos)."""

import sys

from signdigits.audit import audit_labels, issues_csv, joint_csv, read_out_of_fold, summary, suspects_png
from signdigits.errors import exit_code
from signdigits.files import load_array, load_json, load_text, write_outputs

PREDICTIONS = "reports/crossval_predictions.csv"


def main():
    classes = load_json("data/split/meta.json")["classes"]
    X = load_array("data/split/X_train.npy")
    oof = read_out_of_fold(load_text(PREDICTIONS), classes, PREDICTIONS, len(X))
    audit = audit_labels(oof["probabilities"], oof["given"])
    write_outputs(
        {
            "reports/label_issues.csv": issues_csv(audit, oof, classes),
            "reports/confident_joint.csv": joint_csv(audit, oof["given"], classes),
            "reports/label_audit.json": summary(audit),
            "reports/label_issues.png": suspects_png(X, audit, oof["given"], oof["sources"], classes),
        }
    )


if __name__ == "__main__":
    sys.exit(exit_code(main))
