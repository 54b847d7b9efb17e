"""scikit-learn estimators over rnnkit's recurrent models: `RNNClassifier`, `RNNRegressor`, `RNNTagger`,
`Seq2Seq` (and `Seq2SeqEnsemble`, several fitted Seq2Seq decoding together).

X is a sequence of strings (for the tagger: a sequence of token lists); y labels (any hashable
values), numbers, or for the tagger one label list per token list. `fit` learns the tokenizer
(`tokenizer_`), the classes (`classes_`) and the network (`model_`) and returns self; so
`Pipeline`, `GridSearchCV`, `cross_val_score` and `clone` work as with any scikit-learn estimator.
Training uses the one rnnkit Trainer, on the CPU or GPU (`device`), with a validation split for
the loss history (`history_`). `save(dir)` / `load(dir)` use rnnkit's checkpoint format
(safetensors + JSON, never pickle). Each estimator's hyperparameters are the fields of its config
(estimators/configs.py).
"""

from .configs import ClassifierConfig, RegressorConfig, Seq2SeqConfig, TaggerConfig
from .seq2seq import Seq2Seq, Seq2SeqEnsemble
from .tagger import RNNTagger
from .text import RNNClassifier, RNNRegressor

__all__ = ["RNNClassifier", "RNNRegressor", "RNNTagger", "Seq2Seq", "Seq2SeqEnsemble",
           "ClassifierConfig", "RegressorConfig", "TaggerConfig", "Seq2SeqConfig"]
