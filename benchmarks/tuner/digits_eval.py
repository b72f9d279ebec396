#!/usr/bin/python3
"""digits_svc evaluator for tuner_compare: one trial per stdin line.

Input line: "C gamma n_components tol"; output line: the 3-fold stratified
CV error, defined exactly as digits_svc in ../shared/bench/optuna_baseline.py
(PCA(n_components, svd_solver='full') -> SVC(rbf, C, gamma, tol) on sklearn's
digits scaled to [0, 1], StratifiedKFold(3, shuffle=True, random_state=0)).
Needs Debian's python3-sklearn.
"""

import sys

import numpy as np
from sklearn.datasets import load_digits
from sklearn.decomposition import PCA
from sklearn.model_selection import StratifiedKFold, cross_val_score
from sklearn.pipeline import make_pipeline
from sklearn.svm import SVC


def main():
    X, y = load_digits(return_X_y=True)
    X = X / 16.0
    cv = StratifiedKFold(n_splits=3, shuffle=True, random_state=0)
    for line in sys.stdin:
        if not line.strip():
            continue
        C, gamma, n_components, tol = (float(v) for v in line.split())
        model = make_pipeline(
            PCA(n_components=int(round(n_components)), svd_solver="full"),
            SVC(kernel="rbf", C=C, gamma=gamma, tol=tol),
        )
        acc = cross_val_score(model, X, y, cv=cv)
        sys.stdout.write("%.17g\n" % float(1.0 - np.mean(acc)))
        sys.stdout.flush()


if __name__ == "__main__":
    main()
