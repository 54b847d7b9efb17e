"""The noisy channel as two more rescoring columns for bench/g2p.py: how well a candidate
pronunciation explains the spelling, and how likely it is as a pronunciation at all.

Every other scorer reads the spelling and asks how likely a candidate is given it, P(phonemes |
letters). Bayes' rule factors the same quantity the other way, P(letters | phonemes) x P(phonemes)
/ P(letters), where P(letters) is the same for all of a word's candidates. So two networks trained
the other way round add a view the others lack: a phoneme-to-grapheme seq2seq model (the channel:
it reads the candidate and scores the spelling) and a pronunciation language model (the prior: a
seq2seq model whose source is one fixed symbol, so its decoder is a language model over phonemes
with stress). A candidate that drops or invents a sound leaves letters unexplained or explains
letters that are not there, which the channel sees whatever the direct models believe. Yee et al.
(2019) rescored a direct translation model's candidates with both terms, the noisy channel of
statistical translation revived with networks, and gained over the direct model alone.
"""

from __future__ import annotations

import numpy as np

from rnnkit.estimators import Seq2Seq

PRIOR_SOURCE = "#"  # the prior's one source symbol: it reads nothing about the word


def channel_model(epochs: float, hidden_size: int, batch_size: int, seed: int = 0) -> Seq2Seq:
    """The unfitted phoneme-to-grapheme network: phonemes in (one token each), letters out."""
    return _network("word", "char", 40, epochs, hidden_size, batch_size, seed)


def prior_model(epochs: float, hidden_size: int, batch_size: int, seed: int = 0) -> Seq2Seq:
    """The unfitted pronunciation language model: a seq2seq model with one fixed source symbol."""
    return _network("char", "word", 30, epochs, hidden_size, batch_size, seed)


def _network(source_level: str, target_level: str, max_length: int, epochs: float, hidden_size: int,
             batch_size: int, seed: int) -> Seq2Seq:
    """A seq2seq model with the direct models' settings (bench/g2p.py) but for its tokens and length."""
    return Seq2Seq(hidden_size=hidden_size, embedding_size=64, source_level=source_level,
                   target_level=target_level, epochs=epochs, batch_size=batch_size, lr=3e-3,
                   max_length=max_length, random_state=seed, verbose=1)


def channel_rows(words: list[str], entries: dict[str, str]) -> tuple[list[str], list[str]]:
    """The channel's training pairs: each word's pronunciation in, its spelling out."""
    return [entries[w] for w in words], list(words)


def prior_rows(words: list[str], entries: dict[str, str]) -> tuple[list[str], list[str]]:
    """The prior's training pairs: the fixed symbol in, each word's pronunciation out."""
    return [PRIOR_SOURCE] * len(words), [entries[w] for w in words]


def channel_scorer(model: Seq2Seq):
    """A rescoring scorer: log P(the word's spelling | the candidate), its end included; -inf for an
    empty candidate (Phonetisaurus lists one now and then), which explains no letter."""
    def score(words: list[str], candidates: list[str]) -> np.ndarray:
        out = np.full(len(candidates), -np.inf)
        spoken = [i for i, c in enumerate(candidates) if c.strip()]
        out[spoken] = model.log_likelihood([candidates[i] for i in spoken], [words[i] for i in spoken])
        return out

    return score


def prior_scorer(model: Seq2Seq):
    """A rescoring scorer: log P(the candidate) under the pronunciation language model. A word's
    candidates are often another word's too, so each distinct one is read once."""
    def score(words: list[str], candidates: list[str]) -> np.ndarray:
        unique = list(dict.fromkeys(candidates))
        where = {c: i for i, c in enumerate(unique)}
        read = model.log_likelihood([PRIOR_SOURCE] * len(unique), unique)
        return read[[where[c] for c in candidates]]

    return score
