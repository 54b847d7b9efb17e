"""A NumPy (float64) reference: forward and hand-written backpropagation through time for the
language models of every cell (tanh RNN, IRNN, LSTM, GRU, IndRNN, minGRU, minLSTM,
batch-normalised LSTM, gated-feedback LSTM stack, echo state reservoir), one readable file per
cell, plus gradient checking against finite differences and against the PyTorch engine."""

from .gradcheck import GradcheckReport, gradcheck, numeric_gradients, relative_error
from .model import CELLS, ReferenceLanguageModel

__all__ = ["ReferenceLanguageModel", "CELLS", "gradcheck", "GradcheckReport", "numeric_gradients",
           "relative_error"]
