"""Recurrent cells: each maps (x_t, state) -> (y_t, new_state). See `base.Cell`."""

from .base import Cell, State
from .batchnorm import BatchNormLSTMCell
from .feedback import GatedFeedbackLSTMCell
from .indrnn import IndRNNCell
from .layernorm import LayerNormLSTMCell
from .minimal import MinGRUCell, MinLSTMCell
from .reservoir import EchoStateCell
from .standard import GRUCell, IRNNCell, LSTMCell, RNNCell

CELL_TYPES: dict[str, type[Cell]] = {
    "rnn": RNNCell,
    "irnn": IRNNCell,
    "lstm": LSTMCell,
    "gru": GRUCell,
    "lnlstm": LayerNormLSTMCell,  # no fused kernel: runs on the step path
    "bnlstm": BatchNormLSTMCell,  # statistics per time step; its step count is part of the state
    "gfrnn": GatedFeedbackLSTMCell,  # gated-feedback LSTM stack: every layer reads all layers' previous states
    "indrnn": IndRNNCell,  # element-wise recurrence with a bounded weight per unit
    "mingru": MinGRUCell,  # input-only gates: a whole sequence is one parallel scan
    "minlstm": MinLSTMCell,
    "esn": EchoStateCell,  # a fixed random reservoir: only what reads it learns
}

__all__ = ["Cell", "State", "CELL_TYPES", "RNNCell", "IRNNCell", "LSTMCell", "GRUCell", "LayerNormLSTMCell",
           "MinGRUCell", "MinLSTMCell", "IndRNNCell", "BatchNormLSTMCell", "GatedFeedbackLSTMCell", "EchoStateCell"]
