"""The label audit (signdigits/audit.py): Confident Learning's definitions against a hand-worked example, and the
properties the paper states, on probabilities and data the tests make."""

import numpy as np
import pytest

from signdigits.audit import (
    audit_labels,
    calibrated_joint,
    confident_class,
    confident_joint,
    issues_csv,
    joint_csv,
    per_class_thresholds,
    prune_by_noise_rate,
    read_out_of_fold,
    self_confidence,
    summary,
    suspects_png,
)
from signdigits.errors import UsageError

# Eight photos, three classes; binary fractions, so that the one comparison at equality (row 4: 0.75 ≥ t_1 = 0.75)
# is exact. Row 2 is labelled 0, and the model is confident it is a 1.
GIVEN = np.array([0, 0, 0, 1, 1, 1, 2, 2])
P = np.array(
    [
        [1.0, 0.0, 0.0],
        [0.75, 0.25, 0.0],
        [0.25, 0.75, 0.0],
        [0.0, 1.0, 0.0],
        [0.0, 0.75, 0.25],
        [0.0, 0.5, 0.5],
        [0.0, 0.0, 1.0],
        [0.5, 0.0, 0.5],
    ]
)


def test_hand_worked_example():
    # t_j: the mean self-confidence of the photos labelled j
    np.testing.assert_array_equal(self_confidence(P, GIVEN), [1, 0.75, 0.25, 1, 0.75, 0.5, 1, 0.5])
    t = per_class_thresholds(P, GIVEN)
    np.testing.assert_allclose(t, [(1 + 0.75 + 0.25) / 3, (1 + 0.75 + 0.5) / 3, (1 + 0.5) / 2])
    # each photo's confident class: the likeliest of the classes at or above their threshold; rows 5 and 7 have
    # none (0.5 < 0.75 in both their classes, and 0.5 < 2/3 for row 7's class 0)
    np.testing.assert_array_equal(confident_class(P, t), [0, 0, 1, 1, 1, -1, 2, -1])
    C = confident_joint(P, GIVEN, t)
    np.testing.assert_array_equal(C, [[2, 1, 0], [0, 2, 0], [0, 0, 1]])
    # rows rescaled to the class counts 3, 3, 2: [2, 1, 0], [0, 3, 0], [0, 0, 2]; then divided by 8
    Q = calibrated_joint(C, [3, 3, 2])
    np.testing.assert_allclose(Q, np.array([[2, 1, 0], [0, 3, 0], [0, 0, 2]]) / 8)
    # prune by noise rate: round(8 · 1/8) = 1 photo labelled 0 with the largest margin p_1 − p_0: row 2 (0.5)
    flagged, suggested = prune_by_noise_rate(P, GIVEN, Q)
    np.testing.assert_array_equal(np.flatnonzero(flagged), [2])
    np.testing.assert_array_equal(suggested, [-1, -1, 1, -1, -1, -1, -1, -1])
    audit = audit_labels(P, GIVEN)
    assert audit.share == pytest.approx(1 / 8)
    np.testing.assert_array_equal(audit.issues, [2])
    assert summary(audit) == {"audited_photos": 8, "label_issues": 1, "label_issue_share": 0.125}


def test_the_files_of_the_hand_worked_example():
    audit = audit_labels(P, GIVEN)
    classes = ["0", "5", "7"]
    sources = np.array([f"Dataset/{classes[g]}/IMG_{n}.JPG" for n, g in enumerate(GIVEN)])
    oof = {"given": GIVEN, "sources": sources, "probabilities": P}
    assert issues_csv(audit, oof, classes) == (
        "rank,source,given,suggested,self_confidence,p_suggested\n1,Dataset/0/IMG_2.JPG,0,5,0.25,0.75\n"
    )
    assert joint_csv(audit, GIVEN, classes).splitlines() == [
        "given,0,5,7,photos,threshold",
        "0,2,1,0,3,0.666667",
        "5,0,2,0,3,0.750000",
        "7,0,0,1,2,0.750000",
    ]
    image = suspects_png(np.linspace(0, 1, 8 * 16).reshape(8, 16), audit, GIVEN, sources, classes)
    assert image.startswith(b"\x89PNG\r\n\x1a\n")


def test_perfect_probabilities_flag_nothing():
    """The paper: when the predicted probabilities are the true labels', C is diagonal and nothing is pruned."""
    rng = np.random.default_rng(0)
    given = rng.integers(0, 4, size=50)
    audit = audit_labels(np.eye(4)[given], given)
    assert np.count_nonzero(audit.confident_joint - np.diag(np.diag(audit.confident_joint))) == 0
    np.testing.assert_array_equal(np.diag(audit.confident_joint), np.bincount(given, minlength=4))
    assert audit.share == 0 and len(audit.issues) == 0 and np.all(audit.suggested == -1)


def separable_blobs(per_class=30, classes=3, seed=0):
    """Points around ``classes`` far-apart centres (10 standard deviations): classes a linear model separates."""
    rng = np.random.default_rng(seed)
    centres = 10 * np.eye(classes)
    y = np.repeat(np.arange(classes), per_class)
    return centres[y] + rng.normal(size=(len(y), classes)), y


def test_two_swapped_labels_on_a_separable_set_are_exactly_those_flagged():
    """Out-of-fold probabilities of a logistic regression (5 folds) on separable classes, two photos' labels swapped
    (a 0 called 2, a 2 called 0): the audit flags exactly those two, suggests their true labels, and estimates
    the share of label issues at 2 of N."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold, cross_val_predict

    X, y = separable_blobs()
    noisy = y.copy()
    noisy[[3, 70]] = noisy[[70, 3]]  # row 3 is a 0, row 70 a 2
    folds = StratifiedKFold(5, shuffle=True, random_state=0)
    P = cross_val_predict(LogisticRegression(), X, noisy, cv=folds, method="predict_proba")
    audit = audit_labels(P, noisy)
    assert sorted(audit.issues) == [3, 70]
    assert audit.suggested[3] == 0 and audit.suggested[70] == 2
    # the estimate: photos below every threshold are left out of C, and eq. 3 scales the rest up to the counts
    assert round(audit.share * len(y)) == 2
    assert audit.confident_joint[0, 2] == 1 and audit.confident_joint[2, 0] == 1


def test_swapped_labels_under_the_true_labels_probabilities_give_the_exact_share():
    """Probabilities that are the true labels' (an ideal model): the swapped photos are flagged, and Q is exactly
    the joint of given and true labels, so the estimated share is the true one."""
    true = np.repeat([0, 1, 2], 20)
    given = true.copy()
    given[[1, 2, 45]] = [2, 1, 0]
    audit = audit_labels(np.eye(3)[true], given)
    assert sorted(audit.issues) == [1, 2, 45]
    np.testing.assert_array_equal(audit.suggested[[1, 2, 45]], true[[1, 2, 45]])
    assert audit.share == pytest.approx(3 / 60)
    expected = np.zeros((3, 3))
    np.add.at(expected, (given, true), 1 / 60)
    np.testing.assert_allclose(audit.joint, expected)


def test_calibrated_joint_sums_to_one_with_the_given_label_shares():
    """Q's rows hold the share of each given label (eq. 3 rescales each row of C to its class count)."""
    rng = np.random.default_rng(1)
    given = np.repeat([0, 1, 2], [10, 20, 30])
    logits = rng.normal(size=(60, 3)) + 3 * np.eye(3)[given]
    P = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    audit = audit_labels(P, given)
    assert audit.joint.sum() == pytest.approx(1)
    np.testing.assert_allclose(audit.joint.sum(axis=1), [10 / 60, 20 / 60, 30 / 60])
    # rows reordered: the same audit, of the same photos
    order = rng.permutation(60)
    again = audit_labels(P[order], given[order])
    np.testing.assert_allclose(again.joint, audit.joint)
    assert sorted(order[again.issues]) == sorted(audit.issues)


def test_ranked_by_self_confidence_lowest_first():
    given = np.repeat([0, 1], 40)
    p1 = np.where(given == 1, 0.9, 0.1)
    p1[[5, 9, 50]] = [0.97, 0.95, 0.02]  # two 0s and a 1 the model is sure are the other digit
    audit = audit_labels(np.column_stack([1 - p1, p1]), given)
    np.testing.assert_array_equal(audit.confident_joint, [[38, 2], [1, 39]])
    np.testing.assert_array_equal(audit.issues, [50, 5, 9])  # self-confidence 0.02, 0.03, 0.05
    np.testing.assert_allclose(audit.self_confidence[audit.issues], [0.02, 0.03, 0.05])


def test_nothing_to_audit():
    audit = audit_labels(np.zeros((0, 2)), np.zeros(0, dtype=np.int64))
    assert summary(audit) == {"audited_photos": 0}
    assert joint_csv(audit, np.zeros(0, dtype=np.int64), ["0", "5"]) == "given,0,5,photos,threshold\n"
    assert suspects_png(np.zeros((0, 64)), audit, np.zeros(0), np.zeros(0, dtype=str), ["0", "5"]).startswith(
        b"\x89PNG"
    )


@pytest.mark.parametrize(
    "P, given",
    [
        (np.array([[0.5, 0.6]]), np.array([0])),  # a row not summing to 1
        (np.array([[0.5, 0.5]]), np.array([2])),  # a label out of range
        (np.array([0.5, 0.5]), np.array([0])),  # not (N, K)
        (np.array([[np.nan, 1]]), np.array([0])),
    ],
)
def test_bad_inputs_are_refused(P, given):
    with pytest.raises(ValueError):
        audit_labels(P, given)


def test_reading_the_out_of_fold_predictions():
    text = (
        "row,fold,true,predicted,probability,source,p_0,p_5\n"
        "0,1,5,0,0.9,Dataset/5/IMG_1.JPG,0.9,0.1\n"
        '1,0,0,0,0.8,"Dataset/0/a,b.png",0.8,0.2\n'
    )
    oof = read_out_of_fold(text, ["0", "5"], "reports/crossval_predictions.csv", 2)
    np.testing.assert_array_equal(oof["given"], [1, 0])
    assert oof["sources"].tolist() == ["Dataset/5/IMG_1.JPG", "Dataset/0/a,b.png"]
    np.testing.assert_allclose(oof["probabilities"], [[0.9, 0.1], [0.8, 0.2]])
    with pytest.raises(UsageError, match="has no column p_7"):
        read_out_of_fold(text, ["0", "7"], "reports/crossval_predictions.csv", 2)
    with pytest.raises(UsageError, match="does not list the 3 training rows"):
        read_out_of_fold(text, ["0", "5"], "reports/crossval_predictions.csv", 3)
    with pytest.raises(UsageError, match="malformed line"):
        read_out_of_fold(text + "2,0,0\n", ["0", "5"], "reports/crossval_predictions.csv", 3)
