"""Interpretable-unit finder: which units track simple properties of the text?

Each property is a number per position of the text (inside quotes: 0/1, bracket depth, position
in the line, ...). Every unit is scored by the Pearson correlation of its activation with the
property over the positions, and units are ranked by |r|: a unit with r = 0.9 for "inside double
quotes" is the famous quote cell of Karpathy, Johnson & Fei-Fei (2015).
"""

from __future__ import annotations

import numpy as np

OPEN, CLOSE = "([{", ")]}"


def text_properties(text: str) -> dict[str, np.ndarray]:
    """Per-character properties; position t describes the text up to and including character t."""
    n = len(text)
    props = {name: np.zeros(n) for name in (
        "inside double quotes", "inside single quotes", "inside brackets", "bracket depth", "position in line",
        "indentation", "start of word", "inside word", "vowel", "uppercase", "inside # comment")}
    in_double = in_single = in_comment = False
    depth = column = indent = 0
    at_line_start = True
    previous = "\n"
    for t, ch in enumerate(text):
        if ch == '"':
            in_double = not in_double
        elif ch == "'" and not in_double:
            in_single = not in_single
        elif ch == "#" and not (in_double or in_single):
            in_comment = True
        if ch in OPEN:
            depth += 1
        elif ch in CLOSE:
            depth = max(0, depth - 1)
        if ch == "\n":
            column, indent, at_line_start, in_comment = 0, 0, True, False
            in_single = False  # an apostrophe in prose must not leave the rest of the text "quoted"
        else:
            column += 1
            if at_line_start and ch in " \t":
                indent += 1
            else:
                at_line_start = False
        props["inside double quotes"][t] = in_double or ch == '"'
        props["inside single quotes"][t] = in_single or ch == "'"
        props["inside brackets"][t] = depth > 0
        props["bracket depth"][t] = depth
        props["position in line"][t] = column
        props["indentation"][t] = indent
        props["start of word"][t] = ch.isalpha() and not previous.isalpha()
        props["inside word"][t] = ch.isalpha()
        props["vowel"][t] = ch in "aeiouAEIOU"
        props["uppercase"][t] = ch.isupper()
        props["inside # comment"][t] = in_comment
        previous = ch
    return props


def correlations(activations: np.ndarray, properties: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Pearson r of every unit (columns of activations, (N, U)) with every property that varies
    over the text; a property that is constant (no quotes in the text) is left out."""
    a = activations - activations.mean(axis=0)
    a_norm = np.sqrt((a ** 2).sum(axis=0))
    a_norm[a_norm == 0] = np.inf  # a dead unit correlates with nothing
    result = {}
    for name, p in properties.items():
        p = p - p.mean()
        p_norm = np.sqrt((p ** 2).sum())
        if p_norm == 0:
            continue
        result[name] = (p @ a) / (a_norm * p_norm)
    return result


def rank_units(unit_names: list[str], activations: np.ndarray, properties: dict[str, np.ndarray],
               top: int = 5) -> dict[str, list[tuple[str, float]]]:
    """For each property, the `top` units with the largest |r|, as (unit name, r)."""
    ranked = {}
    for name, r in correlations(activations, properties).items():
        order = np.argsort(-np.abs(r))[:top]
        ranked[name] = [(unit_names[j], float(r[j])) for j in order]
    return ranked


def best_units(ranked: dict[str, list[tuple[str, float]]], limit: int) -> list[str]:
    """Units in order of their best |r| over all properties, without repeats."""
    scores: dict[str, float] = {}
    for entries in ranked.values():
        for unit, r in entries:
            scores[unit] = max(scores.get(unit, 0.0), abs(r))
    return sorted(scores, key=lambda u: -scores[u])[:limit]
