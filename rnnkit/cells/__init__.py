"""Recurrent cells: each maps (x_t, state) -> (y_t, new_state). See `base.Cell`."""

from .base import Cell, State
from .layernorm import LayerNormLSTMCell
from .standard import GRUCell, IRNNCell, LSTMCell, RNNCell

CELL_TYPES: dict[str, type[Cell]] = {
    "rnn": RNNCell,
    "irnn": IRNNCell,
    "lstm": LSTMCell,
    "gru": GRUCell,
    "lnlstm": LayerNormLSTMCell,  # no fused kernel: runs on the step path
}

__all__ = ["Cell", "State", "CELL_TYPES", "RNNCell", "IRNNCell", "LSTMCell", "GRUCell", "LayerNormLSTMCell"]
