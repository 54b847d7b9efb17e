"""Fine-tuning: `rnnkit train new.txt --init-from runs/base` starts from a trained language model.

The new run keeps the base model's architecture and maps its vocabulary: the run's vocabulary is
the base's symbols together with the new text's, every symbol the base knew keeps its embedding
row (one-hot models: its input column) and its output row, and the symbols new to the model start
from a fresh initialisation (reported). The optimizer and learning-rate schedule start afresh;
`--resume` stays what it is, continuing one run exactly.
"""

from __future__ import annotations

import os
from typing import Any

import torch

from ..config import to_dict
from ..data import Vocabulary
from ..errors import UsageError
from ..models.language_model import LanguageModel
from .model import Model, load

# What --init-from fixes (the shapes of the weights it copies); dropout may still be chosen.
ARCHITECTURE = ("cell", "hidden_size", "num_layers", "embedding_size", "init", "forget_bias")


def load_base(init_from: str | os.PathLike, kind: str, model_options: dict[str, Any]) -> Model:
    fixed = sorted(set(model_options) & set(ARCHITECTURE))
    if fixed:
        raise UsageError(f"--init-from keeps the base model's architecture; drop "
                         f"{', '.join('--' + k.replace('_', '-') for k in fixed)}")
    base = load(init_from)
    if base.vocab.kind != kind:
        flag = {"chars": "--tokens char", "bytes": "--bytes"}.get(base.vocab.kind, f"--tokens {base.vocab.kind}")
        raise UsageError(f"{init_from} reads {base.vocab.kind} and this run reads {kind}; pass {flag} to fine-tune it")
    return base


def architecture(base: Model, model_options: dict[str, Any]) -> dict[str, Any]:
    """The new run's model options: the base's architecture, with the dropout the user chose."""
    config = to_dict(base.config)
    return {**{k: config[k] for k in ARCHITECTURE}, "dropout": model_options.get("dropout", config["dropout"])}


@torch.no_grad()
def transfer(base: Model, model: LanguageModel, vocab: Vocabulary) -> dict[str, Any]:
    """Copy the base's weights into `model` (same architecture, on the CPU; vocabulary `vocab`
    holds the base's symbols and more); returns what was mapped, for the run's description."""
    row_of = {symbol: row for row, symbol in enumerate(base.vocab.symbols)}
    pairs = [(new, row_of[symbol]) for new, symbol in enumerate(vocab.symbols) if symbol in row_of]
    to_rows, from_rows = (torch.tensor(side) for side in zip(*pairs))
    source = base.module.cpu()
    stack = source.recurrent.state_dict()
    if model.config.embedding_size:
        model.embed.weight[to_rows] = source.embed.weight[from_rows]
    else:  # one-hot input: the first layer's input weights have a column per symbol
        model.recurrent.cells[0].weight_ih[:, to_rows] = stack.pop("cells.0.weight_ih")[:, from_rows]
    model.recurrent.load_state_dict(stack, strict=False)  # all but the mapped weights, shapes checked
    model.head.weight[to_rows] = source.head.weight[from_rows]
    model.head.bias[to_rows] = source.head.bias[from_rows]
    new_symbols = [vocab.display(i) for i in range(len(vocab)) if vocab.symbols[i] not in row_of]
    return {"run": str(base.run_dir), "step": base.meta["step"], "shared_symbols": len(pairs),
            "new_symbols": new_symbols}
