"""NBSVM (Wang & Manning 2012, "Baselines and Bigrams"): a linear SVM over binarised word and bigram
counts scaled by their naive-Bayes log-count ratios, the strong simple baseline of sentiment
classification (79.4% on movie-review snippets with bigrams).

For a class c against the rest, with binarised features x in {0, 1}^V:
    p = alpha + sum of x over the rows of c,  q = alpha + sum of x over the other rows
    r = log((p / |p|_1) / (q / |q|_1))          (V,) how much each feature leans towards c
and the SVM is trained on r * x. Its weights w are interpolated towards their mean magnitude,
w' = (1 - beta) * mean(|w|) + beta * w, which the paper found more robust than w alone (beta 0.25).
Two classes use one such model; more use one per class (one-vs-rest), the largest score wins.

Interpolating adds (1 - beta) * mean(|w|) * sum(r * x) to every margin, which moves the SVM's
threshold; so the bias is re-fitted on the training rows afterwards, with the scale: a logistic
curve on the interpolated margins (Platt scaling). `decision_function` gives those log-odds and
`predict_proba` their probabilities, which can be averaged with a network's.
"""

from __future__ import annotations

import numpy as np
from scipy import sparse
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.feature_extraction.text import CountVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.svm import LinearSVC
from sklearn.utils.validation import check_is_fitted

MAX_NGRAM = 10  # longest n-gram a saved model may ask for


class NBSVMClassifier(ClassifierMixin, BaseEstimator):
    """Strings in, labels out. ngram_range=(1, 2) is NBSVM-bi; C, alpha and beta are the paper's."""

    def __init__(self, ngram_range: tuple[int, int] = (1, 2), C: float = 1.0, alpha: float = 1.0,
                 beta: float = 0.25, lowercase: bool = True) -> None:
        self.ngram_range, self.C, self.alpha, self.beta, self.lowercase = ngram_range, C, alpha, beta, lowercase

    def _vectorizer(self, vocabulary: dict[str, int] | None = None) -> CountVectorizer:
        # words as rnnkit's word level splits them: runs of letters and digits, other characters alone
        return CountVectorizer(ngram_range=tuple(self.ngram_range), lowercase=self.lowercase, binary=True,
                               token_pattern=r"(?u)\w+|[^\w\s]", vocabulary=vocabulary)

    def fit(self, X, y) -> "NBSVMClassifier":
        self.vectorizer_ = self._vectorizer()
        features = self.vectorizer_.fit_transform(list(X)).astype(np.float64)  # (N, V) in {0, 1}
        self.classes_, targets = np.unique(np.asarray(y), return_inverse=True)
        if len(self.classes_) < 2:
            raise ValueError("y needs at least two classes")
        # one binary model for two classes (class 1 against 0), one per class otherwise
        positives = [targets == 1] if len(self.classes_) == 2 else [targets == c for c in range(len(self.classes_))]
        coefficients, intercepts = [], []
        for is_c in positives:
            p = self.alpha + np.asarray(features[is_c].sum(axis=0)).ravel()
            q = self.alpha + np.asarray(features[~is_c].sum(axis=0)).ravel()
            r = np.log((p / p.sum()) / (q / q.sum()))  # (V,)
            svm = LinearSVC(C=self.C, loss="squared_hinge", max_iter=10_000).fit(
                features @ sparse.diags(r), is_c.astype(int))
            w = svm.coef_.ravel()
            interpolated = (1 - self.beta) * np.abs(w).mean() + self.beta * w
            coefficients.append(r * interpolated)  # on the binarised features directly
            intercepts.append(float(svm.intercept_[0]))
        self.coef_, self.intercept_ = np.stack(coefficients), np.asarray(intercepts)  # (models, V), (models,)
        self.scale_, self.offset_ = np.zeros(len(positives)), np.zeros(len(positives))
        for k, (margin, is_c) in enumerate(zip(self._margins(features).T, positives)):  # Platt scaling per model
            curve = LogisticRegression().fit(margin[:, None], is_c.astype(int))
            self.scale_[k], self.offset_[k] = curve.coef_[0, 0], curve.intercept_[0]
        return self

    def _margins(self, features) -> np.ndarray:
        """(N, V) binarised features -> (N, models) interpolated margins."""
        return np.asarray(features @ self.coef_.T) + self.intercept_

    def _log_odds(self, X) -> np.ndarray:
        check_is_fitted(self, "coef_")
        margins = self._margins(self.vectorizer_.transform(list(X)).astype(np.float64))
        return margins * self.scale_ + self.offset_  # (N, models)

    def decision_function(self, X) -> np.ndarray:
        log_odds = self._log_odds(X)
        return log_odds[:, 0] if len(self.classes_) == 2 else log_odds

    def predict(self, X) -> np.ndarray:
        scores = self.decision_function(X)
        best = (scores > 0).astype(int) if scores.ndim == 1 else scores.argmax(axis=1)
        return self.classes_[best]

    def predict_proba(self, X) -> np.ndarray:
        probabilities = 1 / (1 + np.exp(-self._log_odds(X)))
        if len(self.classes_) == 2:
            return np.concatenate([1 - probabilities, probabilities], axis=1)
        return probabilities / probabilities.sum(axis=1, keepdims=True)

    # ------------------------------------------------------------------ saved beside a network
    def to_state(self) -> tuple[dict, dict[str, np.ndarray]]:
        """(JSON-able settings and n-grams, arrays): everything predicting needs, no pickle."""
        check_is_fitted(self, "coef_")
        ngrams = sorted(self.vectorizer_.vocabulary_, key=self.vectorizer_.vocabulary_.get)
        settings = {"ngram_range": list(self.ngram_range), "C": self.C, "alpha": self.alpha, "beta": self.beta,
                    "lowercase": self.lowercase, "ngrams": ngrams, "classes": self.classes_.tolist()}
        arrays = {"coef": self.coef_, "bias": self.intercept_, "scale": self.scale_, "offset": self.offset_}
        arrays = {name: array.astype(np.float32) for name, array in arrays.items()}
        return settings, arrays

    @classmethod
    def from_state(cls, settings: dict, arrays: dict[str, np.ndarray]) -> "NBSVMClassifier":
        """The model `to_state` described; ValueError when the parts do not fit together."""
        low, high = settings["ngram_range"]
        if not all(type(n) is int for n in (low, high)) or not 1 <= low <= high <= MAX_NGRAM:
            raise ValueError(f"the NBSVM's ngram_range must be two whole numbers 1 <= low <= high <= {MAX_NGRAM}")
        numbers = [settings[k] for k in ("C", "alpha", "beta")]
        if not all(isinstance(v, (int, float)) and not isinstance(v, bool) and np.isfinite(v) for v in numbers):
            raise ValueError("the NBSVM's C, alpha and beta must be finite numbers")
        if not isinstance(settings["lowercase"], bool):
            raise ValueError("the NBSVM's lowercase must be true or false")
        model = cls((low, high), *numbers, settings["lowercase"])
        ngrams, classes = settings["ngrams"], settings["classes"]
        if not isinstance(classes, list) or len(classes) < 2:
            raise ValueError("the NBSVM needs a list of at least two classes")
        if not isinstance(ngrams, list) or not all(isinstance(g, str) for g in ngrams) or len(set(ngrams)) != len(ngrams):
            raise ValueError("the NBSVM's n-grams must be distinct strings")
        coef = np.asarray(arrays["coef"], dtype=np.float64)
        models = 1 if len(classes) == 2 else len(classes)
        if coef.shape != (models, len(ngrams)) or any(np.shape(arrays[k]) != (models,) for k in ("bias", "scale", "offset")):
            raise ValueError("the NBSVM's arrays do not match its n-grams and classes")
        model.vectorizer_ = model._vectorizer({g: i for i, g in enumerate(ngrams)})
        model.classes_ = np.asarray(classes)
        model.coef_ = coef
        model.intercept_, model.scale_, model.offset_ = (np.asarray(arrays[k], dtype=np.float64)
                                                         for k in ("bias", "scale", "offset"))
        return model
