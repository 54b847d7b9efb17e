"""`rnnkit viz`: one self-contained HTML page (no network, no external files) showing a text
coloured by a chosen unit's activation, with the model's top-5 next-character predictions under
the pointer. The unit picker lists the unit finder's best units first.
"""

from __future__ import annotations

import base64
import html
import json
from importlib import resources

import numpy as np

from ..diagnostics.activations import capture
from ..diagnostics.units import best_units, rank_units, text_properties
from ..outputs import HTML_SIGNATURE

TOP_PREDICTIONS = 5


def asset(name: str) -> str:
    return resources.files("rnnkit.viz").joinpath("assets", name).read_text(encoding="utf-8")


def html_head(title: str, extra_css: str = "") -> str:
    """Doctype through </head>, with the viewer's stylesheet inline."""
    return (f'<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n{HTML_SIGNATURE}\n<title>{html.escape(title)}</title>\n'
            f"<style>\n{asset('viewer.css')}\n{extra_css}</style>\n</head>\n")


def script_json(data) -> str:
    """JSON safe inside a <script> element (no "</script>" can end it early)."""
    return json.dumps(data, separators=(",", ":")).replace("</", "<\\/")


def top_predictions(probs: np.ndarray, display: list[str], k: int = TOP_PREDICTIONS) -> list[list]:
    """(N, V) probabilities -> per position [[char, p], ...] for the k most likely tokens."""
    order = np.argsort(-probs, axis=1)[:, :k]
    return [[[display[j], round(float(row[j]), 4)] for j in idx] for row, idx in zip(probs, order)]


def unit_order(names: list[str], ranked: dict[str, list[tuple[str, float]]]) -> tuple[list[int], list[str]]:
    """Column order (the finder's best units first, then the rest) and a label per listed unit."""
    best_for: dict[str, tuple[str, float]] = {}
    for prop, entries in ranked.items():
        for unit, r in entries:
            if unit not in best_for or abs(r) > abs(best_for[unit][1]):
                best_for[unit] = (prop, r)
    first = best_units(ranked, len(names))
    index = {n: j for j, n in enumerate(names)}
    order = [index[u] for u in first] + [j for j, n in enumerate(names) if n not in best_for]
    labels = [f"{names[j]}: {best_for[names[j]][0]} (r = {best_for[names[j]][1]:+.2f})" if names[j] in best_for
              else names[j] for j in order]
    return order, labels


def build_page(model, tokens: np.ndarray, title: str) -> str:
    """The HTML of the page for `model` (an rnnkit Model) reading `tokens` (token ids)."""
    acts = capture(model.module, tokens, gates=False)
    display = [model.vocab.display(i) for i in range(len(model.vocab))]
    chars = [display[t] for t in tokens.tolist()]
    ranked = rank_units(acts.unit_names, acts.units, text_properties("".join(chars)), top=3)
    order, labels = unit_order(acts.unit_names, ranked)
    units, blocks = [], []
    for j, label in zip(order, labels):
        column = acts.units[:, j]
        scale = float(np.abs(column).max()) or 1.0
        quantised = np.round(column / scale * 127).astype(np.int8)  # 1 byte per value keeps the page small
        units.append({"name": acts.unit_names[j], "label": label, "scale": scale})
        blocks.append(base64.b64encode(quantised.tobytes()).decode("ascii"))
    data = {"chars": chars, "top": top_predictions(acts.probs, display), "units": units, "values": blocks,
            "ranked": {k: [[u, round(r, 3)] for u, r in v] for k, v in ranked.items()}}
    c = model.config
    meta = (f"{c.cell} {c.num_layers} x {c.hidden_size}, {len(model.vocab)} symbols, step {model.meta['step']}; "
            f"{len(chars):,} characters; {len(units)} units")
    return PAGE.format(head=html_head(title), title=html.escape(title), meta=html.escape(meta),
                       js=asset("viewer.js"), data=script_json(data))


PAGE = """{head}<body>
<h1>{title}</h1>
<div class="rv-meta">{meta}</div>
<div class="rv-controls">
<label>unit <select id="rv-unit"></select></label>
<span class="rv-legend">red: positive, blue: negative (scaled by the unit's largest |value|); hover a character for the model's next-character guesses</span>
</div>
<div id="rv-text" class="rv-text"></div>
<div id="rv-tip"></div>
<script id="rv-data" type="application/json">{data}</script>
<script>
{js}
const data = JSON.parse(document.getElementById("rv-data").textContent);
const viewer = new RnnViewer(document.getElementById("rv-text"), document.getElementById("rv-unit"), data.units);
const columns = data.values.map((b, u) => rvDecode(b, data.units[u].scale));
data.chars.forEach((ch, t) => viewer.append(ch, data.top[t], columns.map((col) => col[t]), false));
viewer.setUnit(0);
</script>
</body>
</html>
"""
