"""Train a tiny iris classifier for the end-to-end test: `python train_iris.py OUT.joblib`."""

import sys

import joblib
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression

X, y = load_iris(return_X_y=True)
joblib.dump(LogisticRegression(max_iter=500).fit(X, y), sys.argv[1])
