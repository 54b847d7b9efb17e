"""Dynamic evaluation (Krause et al. 2018): a language model that keeps learning from the text it
scores. The text is read in order as one stream, in segments; each segment is scored first and
then learnt from, so every token's probability comes from weights that have seen only the tokens
before it. Recurring names, words and phrases of the scored text get cheaper as it goes on.

The update is the paper's RMS-normalised gradient step with decay towards the trained weights
theta_0, except that the mean squared gradient is a running average over the segments already
scored (the paper takes it from the training data, which a finished run no longer has):

    v     <- beta v + (1 - beta) g^2                    (per weight, bias-corrected as in Adam)
    theta <- theta - lr g / (sqrt(v) + eps) + decay (theta_0 - theta)

The decay keeps the model from drifting far from what it was trained to be over a long text.
The trained weights are put back afterwards, so scoring leaves the model as it was.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from tqdm import tqdm

from .errors import UsageError

BETA = 0.99  # running mean squared gradient: about the last hundred segments
EPS = 1e-8


@dataclass(frozen=True)
class DynamicConfig:
    lr: float = 1e-3  # step per weight, in units of its gradient's running RMS
    decay: float = 0.003  # pull towards the trained weights per segment, in [0, 1)
    segment: int = 50  # tokens scored between updates

    def __post_init__(self) -> None:
        if not self.lr > 0:
            raise UsageError(f"--dynamic-lr must be above 0 (got {self.lr})")
        if not 0 <= self.decay < 1:
            raise UsageError(f"--dynamic-decay must be in [0, 1) (got {self.decay})")
        if self.segment < 1:
            raise UsageError(f"--dynamic-segment must be at least 1 (got {self.segment})")


def dynamic_token_nats(model: nn.Module, tokens: np.ndarray, config: DynamicConfig = DynamicConfig(),
                       device: torch.device | str = "cpu", progress: bool | None = None) -> np.ndarray:
    """Cross-entropy (nats) of each of tokens[1:] under dynamic evaluation, as float64, in order.

    `model` maps (1, T) token ids and a state to (1, T, V) logits and the next state. It runs in
    evaluation mode (no dropout); its weights are restored before returning, even on an error.
    `progress`: a progress bar on stderr (None: only when stderr is a terminal).
    """
    n = len(tokens)
    params = [p for p in model.parameters() if p.requires_grad]
    trained = [p.detach().clone() for p in params]
    mean_square = [torch.zeros_like(p) for p in params]
    was_training = model.training
    model.eval()
    out = np.empty(max(n - 1, 0), dtype=np.float64)
    state = None
    starts = range(0, n - 1, config.segment)
    bar = tqdm(total=n - 1, unit="tok", file=sys.stderr, disable=(not sys.stderr.isatty()) if progress is None
               else not progress, desc="dynamic evaluation", leave=False, dynamic_ncols=True)
    # cuDNN's recurrent kernels take no backward pass in evaluation mode; PyTorch's own do (same results)
    with torch.backends.cudnn.flags(enabled=False):
        try:
            for k, t0 in enumerate(starts, start=1):
                t1 = min(t0 + config.segment, n - 1)
                window = torch.from_numpy(np.asarray(tokens[t0:t1 + 1], dtype=np.int64)).to(device)[None]  # (1, t + 1)
                logits, state = model(window[:, :-1], state)
                nats = F.cross_entropy(logits[0], window[0, 1:], reduction="none")  # (t,)
                out[t0:t1] = nats.detach().double().cpu().numpy()  # scored before anything is learnt from it
                grads = torch.autograd.grad(nats.mean(), params, allow_unused=True)
                state = tuple(s.detach() for s in state)
                with torch.no_grad():
                    correction = 1 - BETA ** k
                    for p, g, v, p0 in zip(params, grads, mean_square, trained):
                        if g is None:
                            continue
                        v.mul_(BETA).addcmul_(g, g, value=1 - BETA)
                        p.addcdiv_(g, (v / correction).sqrt_().add_(EPS), value=-config.lr)
                        p.add_(p0 - p, alpha=config.decay)
                bar.update(t1 - t0)
        finally:
            bar.close()
            with torch.no_grad():
                for p, p0 in zip(params, trained):
                    p.copy_(p0)
            model.train(was_training)
    return out
