#!/usr/bin/python3
"""diabetes_svr evaluator for tuner_compare: one trial per stdin line.

A held-out real objective (no Optuna baseline exists for it; no tuning
decision looked at it): input line "C gamma epsilon", output line the 3-fold
CV mean squared error (KFold(3, shuffle=True, random_state=0)) of
StandardScaler -> SVR(rbf, C, gamma, epsilon) on sklearn's bundled diabetes
data (442 x 10, target 25..346). Needs Debian's python3-sklearn; run with
/usr/bin/python3.
"""

import sys

from sklearn.datasets import load_diabetes
from sklearn.model_selection import KFold, cross_val_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import SVR


def main():
    X, y = load_diabetes(return_X_y=True)
    cv = KFold(n_splits=3, shuffle=True, random_state=0)
    for line in sys.stdin:
        if not line.strip():
            continue
        C, gamma, epsilon = (float(v) for v in line.split())
        model = make_pipeline(StandardScaler(), SVR(kernel="rbf", C=C, gamma=gamma, epsilon=epsilon))
        mse = -cross_val_score(model, X, y, cv=cv, scoring="neg_mean_squared_error").mean()
        sys.stdout.write("%.17g\n" % float(mse))
        sys.stdout.flush()


if __name__ == "__main__":
    main()
