"""Recurrent cells: each maps (x_t, state) -> (y_t, new_state). See `base.Cell`."""

from .base import Cell, State
from .standard import CELL_TYPES, GRUCell, IRNNCell, LSTMCell, RNNCell

__all__ = ["Cell", "State", "CELL_TYPES", "RNNCell", "IRNNCell", "LSTMCell", "GRUCell"]
