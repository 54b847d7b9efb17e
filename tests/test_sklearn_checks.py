"""scikit-learn's own estimator checks on rnnkit's estimators, and text counterparts of the checks
that need data the tagger and seq2seq do not read."""

import numpy as np
import pytest
from sklearn.utils import estimator_checks as sk_checks
from sklearn.utils.estimator_checks import parametrize_with_checks

from rnnkit.estimators import RNNClassifier, RNNRegressor, RNNTagger, Seq2Seq

from .test_estimators import CHAR, majority_task

# scikit-learn's own estimator checks. The classifier and regressor read numeric sequences too (their
# __sklearn_tags__ say so: a 2-D array (N, T) is N sequences of T steps), so every check applies,
# run on small networks to keep them quick; the ones that fail are listed with the reason.
_VARIABLE_LENGTH = ("a table's columns are time steps, and sequences may differ in length: there is no fixed "
                    "n_features_in_, and predicting on a table of another width is valid input, not an error")
EXPECTED_SKLEARN_FAILURES = {
    "check_n_features_in": _VARIABLE_LENGTH,
    "check_n_features_in_after_fitting": _VARIABLE_LENGTH,
    "check_classifiers_train": "passes its accuracy test, then expects an error on a table of another width: "
                               + _VARIABLE_LENGTH,
    "check_transformer_general": "expects an error on a table of another width: " + _VARIABLE_LENGTH,
    "check_class_weight_classifiers": "class_weight takes 'balanced' (or nothing), not a dict of per-class weights",
    "check_regressors_train": "R^2 about 0.09 on its make_regression table after the 5 epochs of these small "
                              "networks (about 0.87 after 100), under the check's 0.5",
}
QUICK = dict(hidden_size=16, embedding_size=8, epochs=5, bidirectional=False, dropout=0.0, lr=1e-2, random_state=0,
             level="char")


@parametrize_with_checks([RNNClassifier(**QUICK, ensemble="none"), RNNRegressor(**QUICK)],
                         expected_failed_checks=lambda estimator: EXPECTED_SKLEARN_FAILURES)
def test_sklearn_estimator_checks(estimator, check):
    check(estimator)


# The tagger reads token lists and seq2seq strings, which scikit-learn's checks cannot generate (their
# tags say so, and parametrize_with_checks then yields no check): the checks that do not need data
# run on them here; their data checks have text counterparts below.
DATA_FREE_SKLEARN_CHECKS = [
    "check_estimator_cloneable", "check_estimator_repr", "check_no_attributes_set_in_init",
    "check_get_params_invariance", "check_set_params", "check_do_not_raise_errors_in_init_or_set_params",
    "check_mixin_order", "check_valid_tag_types", "check_estimator_tags_renamed",
]


@pytest.mark.parametrize("estimator", [RNNTagger(), Seq2Seq()], ids=lambda e: type(e).__name__)
@pytest.mark.parametrize("check", DATA_FREE_SKLEARN_CHECKS)
def test_data_free_sklearn_checks_on_token_and_string_estimators(estimator, check):
    getattr(sk_checks, check)(type(estimator).__name__, estimator)


def test_tags_say_what_each_estimator_reads():
    from sklearn.utils import get_tags
    for estimator in (RNNClassifier(), RNNRegressor()):
        tags = get_tags(estimator).input_tags
        assert tags.string and tags.two_d_array and tags.three_d_array and not tags.sparse
    for estimator in (RNNTagger(), Seq2Seq()):
        tags = get_tags(estimator).input_tags
        assert tags.string and not tags.two_d_array


def test_parameters_default_constructible():
    for cls in (RNNClassifier, RNNRegressor, RNNTagger, Seq2Seq):
        sk_checks.check_parameters_default_constructible(cls.__name__, cls())


def test_text_counterparts_of_the_data_checks():
    """fit returns self and leaves the parameters alone; refitting with the same random_state gives
    the same predictions (fit idempotent); predictions do not depend on the order of the samples
    or on which other samples share the batch (sample-order and subset invariance); predicting
    before fit raises NotFittedError."""
    from sklearn.exceptions import NotFittedError
    X, y = majority_task(300, 7)
    quick = dict(hidden_size=16, embedding_size=4, epochs=2, random_state=3, **CHAR)
    estimator = RNNClassifier(**quick)
    with pytest.raises(NotFittedError):
        estimator.predict(X[:3])
    params = estimator.get_params()
    assert estimator.fit(X, y) is estimator
    assert estimator.get_params() == params
    proba = estimator.predict_proba(X)
    np.testing.assert_allclose(RNNClassifier(**quick).fit(X, y).predict_proba(X), proba, rtol=1e-5, atol=1e-6)
    order = np.random.default_rng(0).permutation(len(X))
    np.testing.assert_allclose(estimator.predict_proba([X[i] for i in order]), proba[order], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(estimator.predict_proba(X[10:20]), proba[10:20], rtol=1e-5, atol=1e-6)
    for unfitted, sample in ((RNNTagger(), [["a", "b"]]), (Seq2Seq(), ["ab"])):
        with pytest.raises(NotFittedError):
            unfitted.predict(sample)
