"""`Recurrent`: one layer type that runs any cell over time, stacked.

Shapes: B batch, T time, D input width, H hidden width, L layers.
State is a tuple with one tensor per name in ``cell.state_names``, each ``(L, B, H)``
(PyTorch's convention, so it feeds the fused kernels without copies).

When every layer's cell is a standard one (``Cell.fused_mode`` set), the whole stack runs on
PyTorch's fused kernel (``nn.LSTM``/``nn.GRU``/``nn.RNN``: oneDNN on CPU, cuDNN on GPU) with the
cells' own parameters swapped in by `torch.func.functional_call`; the cells stay the single owner
of the weights, so checkpoints, init schemes and the step path never see two copies.
A cell whose gates read only the input (``scan`` method: minGRU, minLSTM) runs each layer's whole
chunk as one parallel scan. Otherwise the cells are run step by step in Python.
"""

from __future__ import annotations

import warnings

import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from .cells import CELL_TYPES, Cell, State
from .cells.feedback_sequence import MAX_LAYERS, GatedFeedbackSequence, stacked_weights
from .config import no_matrix_to_drop
from .errors import UsageError
from .feed_forward import FeedForward
from .fused_layers import gather_time, run_by_layer, run_padded, within_length_flip
from .native.calls import usable
from .precision import rnn_kernel_context
from .weight_drop import run_on_dropped_weights

_WEIGHT_NAMES = ("weight_ih", "weight_hh", "bias_ih", "bias_hh")
_FUSED_MODULES = {
    "LSTM": lambda D, H, L, p, bi: nn.LSTM(D, H, L, dropout=p, bidirectional=bi, batch_first=True, device="meta"),
    "GRU": lambda D, H, L, p, bi: nn.GRU(D, H, L, dropout=p, bidirectional=bi, batch_first=True, device="meta"),
    "RNN_TANH": lambda D, H, L, p, bi: nn.RNN(D, H, L, nonlinearity="tanh", dropout=p, bidirectional=bi,
                                             batch_first=True, device="meta"),
    "RNN_RELU": lambda D, H, L, p, bi: nn.RNN(D, H, L, nonlinearity="relu", dropout=p, bidirectional=bi,
                                             batch_first=True, device="meta"),
}


class Recurrent(nn.Module):
    def __init__(self, cell: str | type[Cell], input_size: int, hidden_size: int,
                 num_layers: int = 1, dropout: float = 0.0, bidirectional: bool = False,
                 zoneout: float = 0.0, residual: bool = False, feed_forward: int = 0,
                 weight_drop: float = 0.0) -> None:
        super().__init__()
        cell_type = CELL_TYPES[cell] if isinstance(cell, str) else cell
        if zoneout and not cell_type.zoneout_ready:
            raise UsageError(f"--zoneout does not apply to the {cell} cell; leave it out or choose lstm or gru")
        if bidirectional and cell_type.feedback:
            raise UsageError(f"the {cell} cell reads every layer's previous state at each step, so it cannot also "
                             "read sequences backwards; add --no-bidirectional (bidirectional=False) or choose "
                             "another cell")
        if residual and cell_type.feedback:
            raise UsageError(f"the {cell} cell already connects every layer to every other; leave out --residual")
        if weight_drop and not cell_type.recurrent_matrix:
            raise no_matrix_to_drop(cell)
        self.weight_drop = weight_drop  # see weight_drop.py
        self._dropping = False  # True inside the call that runs on the dropped weights
        # Zoneout (Krueger et al. 2016): during training each unit of each state keeps its previous
        # value with probability p instead of updating; at evaluation the expectation,
        # p * old + (1 - p) * new. No fused kernel does this, so such a stack runs on the step path.
        self.zoneout = zoneout
        self.hidden_size = hidden_size
        self.num_layers = num_layers
        self.dropout = dropout
        self.bidirectional = bidirectional
        self.directions = 2 if bidirectional else 1
        self.output_size = hidden_size * self.directions  # width of the outputs: both directions side by side
        # Residual stacking (pre-norm, as Feng et al. 2024 stack minGRU/minLSTM): each layer above the
        # first reads LayerNorm(its input) and adds its output to that input; the top is normalised
        # once more. Layer 0 maps the input width to H and stays plain (sampling's projection table
        # reads it). Per-layer arithmetic no fused multi-layer kernel has: such a stack runs layer by layer.
        self.residual = residual and num_layers > 1
        if self.residual:
            self.norms = nn.ModuleList(nn.LayerNorm(self.output_size) for _ in range(num_layers - 1))
            self.final_norm = nn.LayerNorm(self.output_size)
        # Feed-forward blocks (`feed_forward` times the width inside; 0 = none): after each layer of a
        # residual stack, as Feng et al. 2024 follow each minGRU/minLSTM layer, Transformer-style.
        if feed_forward and not self.residual:
            raise UsageError("--feed-forward adds a block after each layer of a residual stack: add --residual "
                             "and --num-layers 2 or more, or leave it out")
        self.feed_forward = feed_forward
        if feed_forward:
            self.feed_forwards = nn.ModuleList(FeedForward(self.output_size, feed_forward) for _ in range(num_layers))
        self.state_names = cell_type.state_names
        widths = [input_size] + [self.output_size] * (num_layers - 1)  # each layer's input width
        self.cells = nn.ModuleList(cell_type(widths[k], hidden_size) for k in range(num_layers))
        if cell_type.feedback:  # gated feedback: each layer also reads every layer's previous state
            for k, c in enumerate(self.cells):
                c.add_feedback(num_layers, k)
        # Bidirectional: a second stack reads each sequence from its end (Schuster & Paliwal 1997).
        # Kept apart from `cells` so a one-directional model's parameter names never change.
        if bidirectional:
            self.reverse_cells = nn.ModuleList(cell_type(widths[k], hidden_size) for k in range(num_layers))
        # The fused template holds no real weights (meta device) and is kept out of the module
        # tree so it appears in neither state_dict nor parameters().
        mode = cell_type.fused_mode
        self._fused: list[nn.Module] = (
            # Its dropout acts between layers only; with one layer there is none to apply.
            [_FUSED_MODULES[mode](input_size, hidden_size, num_layers, dropout if num_layers > 1 else 0.0,
                                  bidirectional)] if mode and not zoneout and not self.residual else [])

    def _directions(self) -> list[tuple[nn.ModuleList, str]]:
        """(cells, suffix of the fused kernel's weight names) per direction."""
        return [(self.cells, "")] + ([(self.reverse_cells, "_reverse")] if self.bidirectional else [])

    @property
    def trainable(self) -> bool:
        """False for a fixed reservoir (`esn`): nothing in the stack learns."""
        return self.cells[0].trainable

    @property
    def is_fused(self) -> bool:
        return bool(self._fused)

    def reset_parameters(self, scheme: str = "auto", forget_bias: float = 1.0) -> None:
        for cells, _ in self._directions():
            for cell in cells:
                cell.reset_parameters(scheme, forget_bias)

    def init_state(self, batch: int, device: torch.device | None = None,
                   dtype: torch.dtype | None = None) -> State:
        """One (L * directions, B, H) tensor per state name: PyTorch's layout, layer-major."""
        shape = (self.num_layers * self.directions, batch, self.hidden_size)
        return tuple(torch.zeros(shape, device=device, dtype=dtype) for _ in self.state_names)

    def forward(self, x: torch.Tensor, state: State | None = None, lengths: torch.Tensor | None = None,
                final_state: bool = True) -> tuple[torch.Tensor, State | None]:
        """x: (B, T, D) -> outputs (B, T, H) of the top layer, final state.

        lengths (B,), for padded batches: sequence b is x[b, :lengths[b]]; its outputs past its
        length are zero and its final state is the one after its last real step, so padding never
        changes a result (the fused kernels get a packed sequence, the step path a mask).
        final_state=False, for callers that read only the outputs: a padded batch on a fused kernel
        then runs unpacked (`_forward_padded`), and the state returned is None."""
        if self.weight_drop and self.training and not self._dropping:
            return run_on_dropped_weights(self, self.weight_drop, (x, state, lengths, final_state))
        if state is None:
            state = self.init_state(x.shape[0], x.device, x.dtype)
        if self._fused and lengths is not None and not final_state:
            return self._forward_padded(x, state, lengths), None
        if self._fused:
            return self._forward_fused(x, state, lengths)
        return self.forward_steps(x, state, lengths)

    def _forward_padded(self, x: torch.Tensor, state: State, lengths: torch.Tensor) -> torch.Tensor:
        """The fused kernel over a padded batch without packing, outputs only (fused_layers.run_padded)."""
        return run_padded(self._fused[0].mode, self._layer_params(), x, state, lengths, self.dropout, self.training,
                          self.directions)

    def _layer_params(self) -> list[list[torch.Tensor]]:
        """Per layer: weight_ih, weight_hh, bias_ih, bias_hh of each direction, the fused kernel's order."""
        return [[getattr(cells[k], n) for cells, _ in self._directions() for n in _WEIGHT_NAMES]
                for k in range(self.num_layers)]

    def _forward_fused(self, x: torch.Tensor, state: State,
                       lengths: torch.Tensor | None = None) -> tuple[torch.Tensor, State]:
        kernel = self._fused[0]
        kernel.train(self.training)
        weights = {}
        for cells, suffix in self._directions():
            for k, cell in enumerate(cells):
                for name in _WEIGHT_NAMES:
                    weights[f"{name}_l{k}{suffix}"] = getattr(cell, name)
        hx = state if len(state) > 1 else state[0]
        T = x.shape[1]
        if lengths is not None:
            x = pack_padded_sequence(x, lengths.cpu(), batch_first=True, enforce_sorted=False)
        with warnings.catch_warnings(), rnn_kernel_context(x if lengths is None else x.data):
            # cuDNN prefers one contiguous weight buffer; ours are per-cell. The copy it makes
            # is small next to the activations.
            warnings.filterwarnings("ignore", message=".*contiguous chunk of memory.*")
            if kernel.dropout > 0 and self.training and (x if lengths is None else x.data).device.type != "cpu":
                # cuDNN's dropout between layers has a random state no checkpoint can hold (fused_layers.py)
                out, new = run_by_layer(kernel.mode, self._layer_params(), x, state, kernel.dropout, self.training,
                                        self.bidirectional)
            else:
                out, new = functional_call(kernel, weights, (x, hx))
        if lengths is not None:
            out, _ = pad_packed_sequence(out, batch_first=True, total_length=T)
        return out, (tuple(new) if isinstance(new, tuple) else (new,))

    def forward_steps(self, x: torch.Tensor, state: State, lengths: torch.Tensor | None = None,
                      scan: bool = True) -> tuple[torch.Tensor, State]:
        """The stack run by the cells' step functions, one time step at a time: the path for custom
        cells, and the one the fused kernels and scans are checked against (`rnnkit gradcheck`).
        A cell with a ``scan`` runs each layer as one scan unless `scan` is False."""
        B, T = x.shape[:2]
        if lengths is not None and bool((lengths >= T).all()):
            lengths = None  # no padding (equal-length sequences): no mask, so whole-chunk cell paths apply
        # (T, B, 1): which sequences still have a real step at time t; None: all of them, every step
        live = None if lengths is None else (torch.arange(T, device=x.device)[:, None] < lengths.to(x.device))[..., None]
        if self.cells[0].feedback:
            # no padding, where the C kernels run (CPU, float32/64, no autocast, no tracer): one node
            if scan and live is None and usable(x) and self.num_layers <= MAX_LAYERS:
                return self._forward_feedback_chunk(x, state)
            return self._forward_feedback(x, state, live)
        if self.bidirectional:
            flip = within_length_flip(torch.full((B,), T) if lengths is None else lengths, T, x.device)
        layer_input = x
        final: list[State] = []
        for k in range(self.num_layers):
            shortcut = layer_input if self.residual and k > 0 else None
            if shortcut is not None:
                layer_input = self.norms[k - 1](layer_input)
            if k > 0 and self.dropout > 0:
                layer_input = F.dropout(layer_input, self.dropout, self.training)
            outputs = []
            for d, (cells, _) in enumerate(self._directions()):
                seq = layer_input if d == 0 else gather_time(layer_input, flip)
                first = tuple(part[k * self.directions + d] for part in state)
                if scan and hasattr(cells[k], "scan") and not self.zoneout:  # the whole chunk at once, no loop over time
                    out, s = cells[k].scan(seq, first, live)
                else:
                    out, s = _run_cell(cells[k], seq, first, live, self.zoneout, self.training)
                outputs.append(out if d == 0 else gather_time(out, flip))
                final.append(s)
            layer_input = outputs[0] if len(outputs) == 1 else torch.cat(outputs, dim=2)  # (B, T, H * directions)
            if shortcut is not None:
                layer_input = layer_input + shortcut  # zero past each end, as the outputs
            if self.feed_forward:  # not zero past an end: the mask below clears it
                layer_input = self.feed_forwards[k](layer_input, self.dropout if self.training else 0.0)
        if self.residual:
            layer_input = self.final_norm(layer_input)
            if live is not None:  # outputs past a sequence's end stay zero
                layer_input = layer_input * live.transpose(0, 1).to(layer_input.dtype)
        return layer_input, tuple(torch.stack(parts) for parts in zip(*final))

    def _forward_feedback(self, x: torch.Tensor, state: State,
                          live: torch.Tensor | None) -> tuple[torch.Tensor, State]:
        """A gated-feedback stack, time-major: at each step every layer reads all layers' states of
        the step before, so the loop over layers sits inside the loop over time. The first layer's
        input projections of all T steps are still one multiply."""
        states = self.layer_states(state)
        first = self.cells[0].input_projection(x).transpose(0, 1).contiguous().unbind(0)  # T x (B, G)
        outputs = []
        for t, xp in enumerate(first):
            previous = torch.cat([s[0] for s in states], dim=1)  # (B, L*H): every layer's h at t-1
            new, y = [], None
            for k, cell in enumerate(self.cells):
                if k > 0:
                    xp = cell.input_projection(F.dropout(y, self.dropout, self.training) if self.dropout else y)
                y, s = cell.recurrent_step(xp, states[k], feedback=previous)
                if live is not None:
                    s = tuple(torch.where(live[t], n, old) for n, old in zip(s, states[k]))
                    y = y * live[t]
                new.append(s)
            states = new
            outputs.append(y)
        return torch.stack(outputs, dim=1), self.stack_states(states)

    def _forward_feedback_chunk(self, x: torch.Tensor, state: State) -> tuple[torch.Tensor, State]:
        """The same stack as `_forward_feedback`, as one autograd node (`GatedFeedbackSequence`)."""
        h0, c0 = state
        T, B, L, H = x.shape[1], x.shape[0], self.num_layers, self.hidden_size
        xp = self.cells[0].input_projection(x).transpose(0, 1).contiguous()  # (T, B, 4H + L)
        masks = None
        if self.training and self.dropout > 0 and L > 1:  # dropout on each upper layer's input, as per step
            masks = F.dropout(x.new_ones(L - 1, T, B, H), self.dropout, True)
        weights = [w for group in stacked_weights(list(self.cells)) for w in group]
        biases = torch.stack([c.bias_hh for c in self.cells])
        out, h, c = GatedFeedbackSequence.apply(xp, h0.contiguous(), c0.contiguous(), masks, biases, *weights)
        return out.transpose(0, 1), (h, c)

    def fresh_rows(self, state: State, rows: torch.Tensor) -> State:
        """state with the rows marked in rows (B,) bool set back to the zero state a stream starts from;
        step counters (``Cell.counter_states``) are kept, so every row stays at the same step."""
        # (1, B, 1): 0 where a row starts afresh
        fresh = (~rows).to(device=state[0].device, dtype=state[0].dtype)[None, :, None]
        counters = self.cells[0].counter_states
        return tuple(s if name in counters else s * fresh for name, s in zip(self.state_names, state))

    # ---------------------------------------------------------------- one step at a time
    # Stepping code (sampling, activation capture, diagnostics) keeps the state per layer, a list
    # of L States of (B, H) tensors, so no step slices and re-stacks the (L, B, H) layout.
    def layer_states(self, state: State) -> list[State]:
        """(L, B, H) tensors per state name -> one State of (B, H) tensors per layer."""
        return [tuple(part[k] for part in state) for k in range(self.num_layers)]

    @staticmethod
    def stack_states(states: list[State]) -> State:
        """The inverse of `layer_states`."""
        return tuple(torch.stack(parts) for parts in zip(*states))

    def step(self, x: torch.Tensor, states: list[State], records: list[dict] | None = None,
             projected: bool = False) -> tuple[torch.Tensor, list[State]]:
        """One time step of the whole stack: x (B, D) -> the top layer's output (B, H), new states.

        states: one State per layer (`layer_states`). records: if a list, it receives one dict of
        gate activations per layer. projected: x is already the first layer's input projection
        (B, G*H), e.g. a row of a table made once for a whole vocabulary. No dropout: stepping is
        for inference and diagnostics."""
        if self.bidirectional:
            raise ValueError("a bidirectional layer reads whole sequences; it has no single step")
        new: list[State] = []
        # gated feedback: every layer reads all layers' previous h
        previous = torch.cat([s[0] for s in states], dim=1) if self.cells[0].feedback else None
        for k, cell in enumerate(self.cells):
            record = {} if records is not None else None
            shortcut = x if self.residual and k > 0 else None
            if shortcut is not None:
                x = self.norms[k - 1](x)
            if previous is not None:
                xp = x if k == 0 and projected else cell.input_projection(x)
                x, s = cell.recurrent_step(xp, states[k], record, feedback=previous)
            elif k == 0 and projected:
                x, s = cell.recurrent_step(x, states[0], record)
            else:
                x, s = cell.step(x, states[k], record)
            if self.zoneout:  # stepping is inference: the expectation
                s = tuple(_zoneout(n, old, self.zoneout, training=False) for n, old in zip(s, states[k]))
                x = s[0]
            if shortcut is not None:
                x = x + shortcut
            if self.feed_forward:
                x = self.feed_forwards[k](x)
            new.append(s)
            if records is not None:
                records.append(record)
        return (self.final_norm(x) if self.residual else x), new


def _run_cell(cell: Cell, x: torch.Tensor, s: State, live: torch.Tensor | None, zoneout: float = 0.0,
              training: bool = False) -> tuple[torch.Tensor, State]:
    """One layer, one direction, step by step: x (B, T, D) -> outputs (B, T, H), final state.
    Past a sequence's end (live false) its state is kept and its outputs are zero.

    The input projections of all T steps come from one (B*T, D) x (D, G*H) multiply; only the
    recurrent part runs per step, unless the cell runs the whole chunk itself (`recurrent_sequence`).
    `unbind` hands out the T slices as views whose gradients are stacked once in the backward pass
    (indexing xp[t] would allocate a full-size zero gradient per step: measured 5x slower at H=512)."""
    # (T, B, G*H), time-major from the multiply itself: transposing x (D wide, and already time-major
    # when it is the layer below's output) costs less than transposing the G*H-wide projections
    projections = cell.input_projection(x.transpose(0, 1)).contiguous()
    whole = cell.recurrent_sequence(projections, s) if live is None and not zoneout else None
    if whole is not None:
        return whole[0].transpose(0, 1), whole[1]
    outputs = []
    for t, xp in enumerate(projections.unbind(0)):  # T x (B, G*H)
        if cell.reads_live:
            y, new = cell.recurrent_step(xp, s, live=None if live is None else live[t])
        else:
            y, new = cell.recurrent_step(xp, s)
        if zoneout:
            new = tuple(_zoneout(n, old, zoneout, training) for n, old in zip(new, s))
            y = new[0]
        if live is not None:
            new = tuple(torch.where(live[t], n, old) for n, old in zip(new, s))
            y = y * live[t]
        s = new
        outputs.append(y)
    return torch.stack(outputs, dim=1), s


def _zoneout(new: torch.Tensor, old: torch.Tensor, p: float, training: bool) -> torch.Tensor:
    """Each unit keeps its old value with probability p (training), or p of it (evaluation)."""
    if not training:
        return torch.lerp(new, old, p)
    keep = torch.rand_like(new) < p
    return torch.where(keep, old, new)


def detach_state(state: State) -> State:
    """Cut the autograd graph between truncated-BPTT chunks.

    The carried state keeps its *values* (the model continues reading the stream where it left
    off) but gradients stop at the chunk boundary; without this, every backward pass would run
    through the whole history and memory would grow without bound.
    """
    return tuple(s.detach() for s in state)
