"""Rescoring for bench/g2p.py: rnnkit's networks and Phonetisaurus's joint n-gram model voting on
each word's candidate pronunciations, as Rao et al. (2015) combined an LSTM with a joint-sequence
FST.

A word's candidates are Phonetisaurus's n best pronunciations and the guesses of rnnkit's systems.
Each candidate gets one column per scorer: the log-probability each network gives it (a network
trained on reversed pronunciations reads it reversed) and minus Phonetisaurus's cost of it (its
negative natural log-probability; a candidate outside the n best costs as much as the n-th). The
winner has the largest weighted sum of the columns. The weights are chosen on words held out from
every system's training (never on the test words), or fixed in advance when there are none.
"""

from __future__ import annotations

import itertools
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

# A scorer: (words, candidates) -> natural log-probabilities, (n,); -inf for a candidate it cannot spell.
Scorer = Callable[[list[str], list[str]], np.ndarray]
WEIGHT_GRID = (0.0, 0.25, 0.5, 0.75, 1.0, 1.25, 1.5, 2.0, 3.0)
COARSE_GRID = (0.0, 0.5, 1.0, 2.0, 3.0)  # every combination of these first when over three columns are free


def n_best(P, model: Path, words: list[str], scratch: Path, n: int) -> dict[str, dict[str, float]]:
    """word -> {pronunciation: cost} for Phonetisaurus's n best of each word (its decoder with
    probabilities summed over the alignments of a pronunciation)."""
    scratch.write_text("\n".join(words) + "\n", encoding="utf-8")
    printed = subprocess.run(["phonetisaurus-g2pfst", f"--model={model}", f"--wordlist={scratch}", f"--nbest={n}",
                              "--accumulate=true"], env=P.guess_environment(), capture_output=True, text=True,
                             check=True).stdout
    listed: dict[str, dict[str, float]] = {}
    for line in printed.splitlines():
        word, cost, pronunciation = line.split("\t")
        listed.setdefault(word, {})[pronunciation] = float(cost)
    return listed


def reverse(pronunciation: str) -> str:
    """The phonemes in the opposite order, as a right-to-left network learns and writes them."""
    return " ".join(pronunciation.split()[::-1])


def reversed_scorer(scorer: Scorer) -> Scorer:
    """A scorer for a network trained on right-to-left pronunciations: it reads each candidate reversed."""
    return lambda words, candidates: scorer(words, [reverse(c) for c in candidates])


def tagger_scorer(probabilities: dict[str, np.ndarray], classes: list[str], unlisted: float = 1e-8) -> Scorer:
    """A scorer for an aligned tagger (bench/g2p.py's letter labels: `_`, or a chunk's phonemes joined
    by |): a candidate's probability is that of all the label sequences, one label per letter, that
    spell it, the sum over its segmentations (a forward pass over letters x phonemes written so
    far). `probabilities`: word -> (letters, len(classes)), the tagger's label distribution per
    letter. A chunk of one or two phonemes that no label spells gets probability `unlisted`, so a
    pronunciation outside the tagger's label set is unlikely, not impossible."""
    label = {tuple(c.split("|")) if c != "_" else (): j for j, c in enumerate(classes)}
    longest = max(len(chunk) for chunk in label)

    def score(words: list[str], candidates: list[str]) -> np.ndarray:
        out = np.full(len(candidates), -np.inf)
        start = 0
        for word, run in itertools.groupby(words):  # a word's candidates are consecutive: scored together
            end = start + sum(1 for _ in run)
            per_letter = probabilities[word]  # (L, C)
            table = np.concatenate([per_letter, np.tile([unlisted, 0.0], (len(per_letter), 1))], axis=1)  # (L, C + 2)
            unlisted_column, no_column = table.shape[1] - 2, table.shape[1] - 1
            phonemes = [c.split() for c in candidates[start:end]]
            lengths = np.array([len(p) for p in phonemes])
            width = lengths.max() + 1
            # column[n, j, k]: the table column of candidate n's phonemes j..j+k (the zero column past its end)
            column = np.full((end - start, width, longest + 1), no_column)
            for n, p in enumerate(phonemes):
                for j in range(len(p) + 1):
                    for k in range(min(longest, len(p) - j) + 1):
                        column[n, j, k] = label.get(tuple(p[j:j + k]), unlisted_column if k <= 2 else no_column)
            forward = np.zeros((end - start, width))  # forward[n, j]: P(the letters so far spell phonemes :j)
            forward[:, 0] = 1.0
            for letter in table:
                step = np.zeros_like(forward)
                for k in range(longest + 1):
                    step[:, k:] += forward[:, :width - k] * letter[column[:, :width - k, k]]
                forward = step
            with np.errstate(divide="ignore"):
                out[start:end] = np.log(forward[np.arange(end - start), lengths])
            start = end
        return out

    return score


@dataclass
class Candidates:
    """Every candidate of every word, one row each; `columns` (n, scorers + 1): the scorers'
    log-probabilities, then minus Phonetisaurus's cost (-inf replaced by a large negative number
    so that a weight of 0 ignores it)."""
    candidates: list[str]
    columns: np.ndarray
    starts: list[int]  # word i's candidates are rows starts[i]:starts[i + 1]
    ranks: np.ndarray  # (n,) each row's place in Phonetisaurus's list by cost; its length for a guess outside it
    guessed: np.ndarray  # (n,) bool: a system guessed it
    listed_costs: list[np.ndarray]  # per word, Phonetisaurus's costs, lowest first

    def pick(self, weights: np.ndarray) -> list[str]:
        """Each word's candidate with the largest weighted sum of its columns ("" for a word without any)."""
        return [self.candidates[r] if r >= 0 else "" for r in self.picked_rows(weights)]

    def layout(self) -> np.ndarray:
        """(words, most candidates): the row of each word's every candidate, -1 past its last."""
        counts = np.diff(self.starts)
        rows = np.full((len(counts), max(1, counts.max(initial=0))), -1)
        for i, (a, b) in enumerate(zip(self.starts[:-1], self.starts[1:])):
            rows[i, :b - a] = np.arange(a, b)
        return rows

    def picked_rows(self, weights: np.ndarray, layout: np.ndarray | None = None) -> np.ndarray:
        """(words,) the row `pick` chooses for each word, -1 for a word without candidates; `layout`:
        this table's, when already at hand (choosing weights calls this thousands of times)."""
        rows = self.layout() if layout is None else layout
        total = self.columns @ weights
        return rows[np.arange(len(rows)), np.argmax(np.where(rows < 0, -np.inf, total[rows]), axis=1)]

    def truncated(self, n: int) -> Candidates:
        """The table Phonetisaurus's n best alone would have made: the guesses and listed candidates
        ranked below n, those outside costing as much as the n-th."""
        keep, cost, starts = [], [], [0]
        for i, (a, b) in enumerate(zip(self.starts[:-1], self.starts[1:])):
            listed = self.listed_costs[i]
            floor = listed[min(n, len(listed)) - 1] if len(listed) else 0.0
            for row in range(a, b):
                if self.ranks[row] < n or self.guessed[row]:
                    keep.append(row)
                    cost.append(-self.columns[row, -1] if self.ranks[row] < n else floor)
            starts.append(len(keep))
        columns = self.columns[keep].copy()
        columns[:, -1] = -np.asarray(cost)
        return Candidates([self.candidates[r] for r in keep], columns, starts,
                          self.ranks[keep], self.guessed[keep], self.listed_costs)


def candidates(words: list[str], nbest: dict[str, dict[str, float]], guesses: list[list[str]],
               scorers: list[Scorer]) -> Candidates:
    """The table of `words`' candidates: Phonetisaurus's listed ones and every system's guess
    (`guesses`: one list per system, aligned with `words`), scored by each of `scorers`."""
    pair_words, pair_candidates, costs, ranks, guessed, starts, listed_costs = [], [], [], [], [], [0], []
    for i, word in enumerate(words):
        listed = dict(sorted(nbest.get(word, {}).items(), key=lambda item: item[1]))
        listed_costs.append(np.array(list(listed.values())))
        floor = max(listed.values(), default=0.0)
        rank = {pronunciation: r for r, pronunciation in enumerate(listed)}
        own = [system[i] for system in guesses if system[i]]  # in the systems' order: the same table every run
        for guess in own:
            listed.setdefault(guess, floor)
        pair_words += [word] * len(listed)
        pair_candidates += list(listed)
        costs += list(listed.values())
        ranks += [rank.get(p, len(rank)) for p in listed]
        guessed += [p in own for p in listed]
        starts.append(len(pair_words))
    columns = [score(pair_words, pair_candidates) for score in scorers] + [-np.asarray(costs, dtype=float)]
    table = np.nan_to_num(np.stack(columns, axis=1), neginf=-1e6)
    return Candidates(pair_candidates, table, starts, np.array(ranks), np.array(guessed, dtype=bool),
                      listed_costs)


def choose(table: Candidates, truth: list[str], sizes: tuple[int, ...],
           fixed: dict[int, float] | None = None) -> tuple[int, np.ndarray, float]:
    """(list size, weights, word error) with the fewest word errors on `table`'s words (whose right
    answers are `truth`), over Phonetisaurus's lists cut to each of `sizes` and weights from
    WEIGHT_GRID for every column but the first network's (weight 1); `fixed` pins columns' weights
    (column index -> weight). Up to three free columns, every combination is tried; with more (the
    grid's 9^4 combinations would take too long), every combination of COARSE_GRID, then each free
    column in turn moves to the grid point that lowers the error most while one does (coordinate
    descent). Ties go to the shorter list and the earlier grid point."""
    best = None
    for n in sorted(sizes):
        errors = _error_counter(table.truncated(n), truth)
        width = table.columns.shape[1]
        weights = np.ones(width)
        for c, w in (fixed or {}).items():
            weights[c] = w
        free = [c for c in range(1, width) if c not in (fixed or {})]
        grid = WEIGHT_GRID if len(free) <= 3 else COARSE_GRID
        chosen = None
        for values in itertools.product(grid, repeat=len(free)):
            weights[free] = values
            error = errors(weights)
            if chosen is None or error < chosen[1]:
                chosen = (weights.copy(), error)
        weights, error = chosen
        moved = grid is COARSE_GRID  # then refine one column at a time on the full grid
        while moved:
            moved = False
            for c in free:
                for value in WEIGHT_GRID:
                    trial = weights.copy()
                    trial[c] = value
                    trial_error = errors(trial)
                    if trial_error < error:
                        weights, error, moved = trial, trial_error, True
        if best is None or error < best[2]:
            best = (n, weights, error)
    return best


def _error_counter(table: Candidates, truth: list[str]) -> Callable[[np.ndarray], float]:
    """weights -> the word error of `table.pick(weights)` against `truth`, fast enough to call for
    every grid point: rows compared, not strings."""
    layout = table.layout()
    right = np.array([next((r for r in range(a, b) if table.candidates[r] == t), -2)  # -2: never a picked row
                      for a, b, t in zip(table.starts[:-1], table.starts[1:], truth)])
    return lambda weights: float(np.mean(table.picked_rows(weights, layout) != right))
