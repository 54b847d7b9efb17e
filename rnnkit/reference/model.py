"""A character-level language model in NumPy: the whole algorithm, forward and backward, with
nothing hidden in a framework. It is the yardstick the engine is checked against (`gradcheck`)
and small enough to train on its own (`train`, Adagrad as in Karpathy's min-char-rnn).

Shapes: B batch, T time, V vocabulary, E embedding width (V for one-hot input), H hidden, L layers.
Parameter names and layouts are the engine's (`LanguageModel.state_dict()`), so weights move
between the two with `from_engine` / `to_engine`:

    embed.weight                    (V, E)   absent for one-hot input
    recurrent.cells.{k}.weight_ih   (G*H, E or H)   G gate blocks in PyTorch's order
    recurrent.cells.{k}.weight_hh   (G*H, H)
    recurrent.cells.{k}.bias_ih     (G*H,)
    recurrent.cells.{k}.bias_hh     (G*H,)
    head.weight                     (V, H)

    head.bias                       (V,)

(the IndRNN's weight_hh is a vector (H,); minGRU and minLSTM have no weight_hh and bias_hh; the
BN-LSTM adds gains, the gated-feedback LSTM feedback and reset weights: each cell file's PARAMS
lists its own, and its `init` their shapes). A cell file may also declare FIXED (weights the engine
never trains: the echo state reservoir, whose embedding is frozen too), COUNTERS (states that
count steps, start at 0 and carry no gradient), BATCH_STATISTICS (results depend on the whole
batch) and STACKED (`forward_stack` / `backward_stack` run all layers at once, for the
gated-feedback stack whose layers read each other's previous states).

Forward: x_t = embed[token_t] (or one-hot); each layer maps its input sequence to hidden states;
logits_t = head.weight h_t + head.bias; loss = mean over B*T of -log softmax(logits_t)[target_t].
Backward: dlogits = (softmax - onehot(target)) / (B*T), then back through the head, each layer's
BPTT (the cell files), and into the embedding rows that were used.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from . import batchnorm, esn, feedback, gru, indrnn, lstm, rnn
from .minimal import MINGRU, MINLSTM

# cell name -> (module with forward/backward, extra forward arguments)
CELLS = {"rnn": (rnn, {}), "irnn": (rnn, {"relu": True}), "lstm": (lstm, {}), "gru": (gru, {}),
         "indrnn": (indrnn, {}), "mingru": (MINGRU, {}), "minlstm": (MINLSTM, {}), "bnlstm": (batchnorm, {}),
         "gfrnn": (feedback, {}), "esn": (esn, {})}


def log_softmax(logits: np.ndarray) -> np.ndarray:
    shifted = logits - logits.max(axis=-1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))


@dataclass
class ReferenceLanguageModel:
    cell: str
    vocab_size: int
    hidden_size: int
    num_layers: int
    embedding_size: int  # 0 = one-hot input
    params: dict[str, np.ndarray]

    # ------------------------------------------------------------------ construction
    @classmethod
    def random(cls, cell: str, vocab_size: int, hidden_size: int, num_layers: int = 1,
               embedding_size: int = 0, seed: int = 0, scale: float | None = None) -> "ReferenceLanguageModel":
        """Weights ~ U(-s, s) with s = 1/sqrt(H) (PyTorch's default) unless `scale` is given;
        an IRNN's recurrence starts at the identity (Le et al. 2015), an LSTM's forget bias at 1."""
        rng = np.random.default_rng(seed)
        module, _ = CELLS[cell]
        V, E, H = vocab_size, embedding_size, hidden_size
        s = scale if scale is not None else 1.0 / np.sqrt(H)
        params: dict[str, np.ndarray] = {}
        if E > 0:
            params["embed.weight"] = rng.normal(0.0, 1.0, (V, E))
        for k in range(num_layers):
            D = (E or V) if k == 0 else H
            G = module.NUM_GATES
            stack = {"layers": num_layers} if cls._stacked(cell) else {}
            cell_params = module.init(rng, s, H, D, **stack) if hasattr(module, "init") else {
                "weight_ih": rng.uniform(-s, s, (G * H, D)), "weight_hh": rng.uniform(-s, s, (G * H, H)),
                "bias_ih": rng.uniform(-s, s, G * H), "bias_hh": rng.uniform(-s, s, G * H)}
            if cell == "irnn":
                cell_params["weight_hh"] = np.eye(H)
                cell_params["bias_ih"][:] = cell_params["bias_hh"][:] = 0.0
            if cell == "lstm":
                cell_params["bias_ih"][H:2 * H], cell_params["bias_hh"][H:2 * H] = 1.0, 0.0
            params.update({f"recurrent.cells.{k}.{n}": v for n, v in cell_params.items()})
        params["head.weight"] = rng.uniform(-s, s, (V, H))
        params["head.bias"] = np.zeros(V)
        return cls(cell, V, H, num_layers, E, params)

    @classmethod
    def from_engine(cls, model) -> "ReferenceLanguageModel":
        """Copy an engine `LanguageModel`'s weights (any dtype or device) into float64 arrays; its
        other buffers (a BN-LSTM's running statistics) are the engine's own."""
        c = model.config
        layer = CELLS[c.cell][0].PARAMS
        known = {"embed.weight", "head.weight", "head.bias",
                 *(f"recurrent.cells.{k}.{n}" for k in range(c.num_layers) for n in layer)}
        params = {name: t.detach().cpu().double().numpy().copy() for name, t in model.state_dict().items()
                  if name in known}
        return cls(c.cell, c.vocab_size, c.hidden_size, c.num_layers, c.embedding_size, params)

    def to_engine(self):
        """An engine `LanguageModel` (float64) holding exactly these weights."""
        import torch

        from ..config import ModelConfig
        from ..models.language_model import LanguageModel
        model = LanguageModel(ModelConfig(vocab_size=self.vocab_size, cell=self.cell, hidden_size=self.hidden_size,
                                          num_layers=self.num_layers, embedding_size=self.embedding_size)).double()
        missing, unexpected = model.load_state_dict({k: torch.from_numpy(v.copy()) for k, v in self.params.items()},
                                                    strict=False)
        learnt = {name for name, _ in model.named_parameters()}
        if unexpected or learnt & set(missing):
            raise ValueError(f"weights do not match the engine's {self.cell}: missing {sorted(learnt & set(missing))}, "
                             f"unexpected {sorted(unexpected)}")
        return model

    @property
    def state_names(self) -> tuple[str, ...]:
        return CELLS[self.cell][0].STATE_NAMES

    @staticmethod
    def _stacked(cell: str) -> bool:
        """True for a cell file that runs the whole stack at once (forward_stack / backward_stack)."""
        return getattr(CELLS[cell][0], "STACKED", False)

    def _layers(self) -> list[dict[str, np.ndarray]]:
        return [self._layer(k) for k in range(self.num_layers)]

    @property
    def counters(self) -> tuple[str, ...]:
        """State names that count steps: no gradient, and 0 at the start of a sequence."""
        return getattr(CELLS[self.cell][0], "COUNTERS", ())

    @property
    def trained(self) -> list[str]:
        """The parameters the engine trains (an echo state network: the readout only)."""
        fixed = getattr(CELLS[self.cell][0], "FIXED", ())
        if not fixed:
            return list(self.params)
        return [n for n in self.params if n != "embed.weight" and n.rsplit(".", 1)[-1] not in fixed]

    def init_state(self, batch: int) -> tuple[np.ndarray, ...]:
        """One (L, B, H) array per state name, the engine's layout."""
        return tuple(np.zeros((self.num_layers, batch, self.hidden_size)) for _ in self.state_names)

    def _layer(self, k: int) -> dict[str, np.ndarray]:
        return {n: self.params[f"recurrent.cells.{k}.{n}"] for n in CELLS[self.cell][0].PARAMS}

    # ------------------------------------------------------------------ forward and backward
    def forward(self, tokens: np.ndarray, targets: np.ndarray, state=None):
        """tokens, targets (B, T) ints -> mean loss (nats), final state, cache for `backward`."""
        module, extra = CELLS[self.cell]
        B, T = tokens.shape
        state = self.init_state(B) if state is None else state
        inputs = tokens.T  # (T, B): time-major inside, like the cell files
        if self.embedding_size:
            x = self.params["embed.weight"][inputs]  # (T, B, E)
        else:
            x = np.eye(self.vocab_size)[inputs]  # (T, B, V)
        if self._stacked(self.cell):
            x, final_state, caches = module.forward_stack(self._layers(), x, state)
        else:
            caches, finals = [], []
            for k in range(self.num_layers):
                x, final, cache = module.forward(self._layer(k), x, tuple(s[k] for s in state), **extra)
                caches.append(cache)
                finals.append(final)
            final_state = tuple(np.stack(parts) for parts in zip(*finals))
        logits = x @ self.params["head.weight"].T + self.params["head.bias"]  # (T, B, V)
        logp = log_softmax(logits)
        picked = np.take_along_axis(logp, targets.T[..., None], axis=-1)  # (T, B, 1)
        loss = -picked.mean()
        return loss, final_state, (inputs, targets.T, x, logp, caches)

    def backward(self, cache) -> dict[str, np.ndarray]:
        """Gradients of the mean loss for every parameter, and for the initial state
        (`state.h`, `state.c`: what a previous chunk would receive without truncation)."""
        module, _ = CELLS[self.cell]
        inputs, targets, top, logp, caches = cache
        T, B = inputs.shape
        dlogits = np.exp(logp)  # softmax
        np.put_along_axis(dlogits, targets[..., None], np.take_along_axis(dlogits, targets[..., None], -1) - 1.0, -1)
        dlogits /= T * B
        grads = {"head.weight": np.einsum("tbv,tbh->vh", dlogits, top), "head.bias": dlogits.sum(axis=(0, 1))}
        dx = dlogits @ self.params["head.weight"]  # (T, B, H): dL/dh_t of the top layer from the head
        if self._stacked(self.cell):
            dx, dstate0, layer_grads = module.backward_stack(self._layers(), dx, caches)
            for k, g in enumerate(layer_grads):
                grads.update({f"recurrent.cells.{k}.{n}": v for n, v in g.items()})
        else:
            dstates = []
            for k in reversed(range(self.num_layers)):
                zero_final = tuple(np.zeros((B, self.hidden_size)) for _ in self.state_names)
                dx, dstate, layer_grads = module.backward(self._layer(k), dx, zero_final, caches[k])
                grads.update({f"recurrent.cells.{k}.{n}": g for n, g in layer_grads.items()})
                dstates.append(dstate)
            dstates.reverse()
            dstate0 = tuple(np.stack(parts) for parts in zip(*dstates))  # one (L, B, H) per state name
        for name, d in zip(self.state_names, dstate0):
            if name not in self.counters:
                grads[f"state.{name}"] = d
        if self.embedding_size:
            d_embed = np.zeros_like(self.params["embed.weight"])
            np.add.at(d_embed, inputs, dx)  # each use of a token adds to its row
            grads["embed.weight"] = d_embed
        return grads

    def loss_and_gradients(self, tokens: np.ndarray, targets: np.ndarray, state=None):
        loss, final_state, cache = self.forward(tokens, targets, state)
        return loss, self.backward(cache), final_state

    # ------------------------------------------------------------------ training and sampling
    def train(self, tokens: np.ndarray, steps: int, seq_length: int = 25, batch_size: int = 16,
              lr: float = 0.1, clip: float = 5.0, on_step=None) -> list[float]:
        """Adagrad (Duchi et al. 2011) on `batch_size` streams through `tokens`, truncated BPTT with
        the state carried between chunks, the global gradient norm clipped to `clip`.
        Returns the loss of every step."""
        streams = len(tokens) // batch_size
        if streams < seq_length + 1:
            raise ValueError(f"{len(tokens)} tokens are too few for {batch_size} streams of {seq_length + 1}")
        data = np.asarray(tokens[:streams * batch_size]).reshape(batch_size, streams)
        memory = {name: np.zeros_like(self.params[name]) for name in self.trained}
        state, position, losses = None, 0, []
        for step in range(steps):
            if position + seq_length + 1 > streams:
                state, position = None, 0  # back to the start of every stream
            chunk = data[:, position:position + seq_length + 1]
            loss, grads, state = self.loss_and_gradients(chunk[:, :-1], chunk[:, 1:], state)
            position += seq_length
            norm = np.sqrt(sum((grads[n] ** 2).sum() for n in self.trained))
            factor = min(1.0, clip / (norm + 1e-12))
            for name in self.trained:
                p, g = self.params[name], grads[name] * factor
                memory[name] += g * g
                p -= lr * g / np.sqrt(memory[name] + 1e-8)
            losses.append(float(loss))
            if on_step is not None:
                on_step(step + 1, float(loss))
        return losses

    def sample(self, prime: list[int], length: int, temperature: float = 1.0, seed: int = 0) -> list[int]:
        """Feed `prime` (at least one token), then draw `length` tokens one at a time."""
        if getattr(CELLS[self.cell][0], "BATCH_STATISTICS", False):
            raise ValueError(f"the {self.cell} reference normalises with batch statistics only; sample from the engine")
        rng = np.random.default_rng(seed)
        dummy = np.zeros((1, 1), dtype=np.int64)
        state, out = None, []
        token = prime[0]
        for t in range(len(prime) - 1 + length):
            _, state, cache = self.forward(np.array([[token]]), dummy, state)
            if t + 1 < len(prime):
                token = prime[t + 1]
                continue
            logits = cache[3][0, 0] / temperature  # log-probabilities, re-tempered
            p = np.exp(logits - logits.max())
            token = int(rng.choice(self.vocab_size, p=p / p.sum()))
            out.append(token)
        return out
