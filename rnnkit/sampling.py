"""Sampling text from a language model: temperature, top-k, top-p (nucleus), greedy; batched.

N samples are generated together as one batch of N. The prime text is read by the fused kernel in
one call; after that each step runs the cells' step functions through `Generator` (one table
lookup for the first layer's input, no autograd), which for one time step is far cheaper than a
fused-kernel call. Measured side by side with a naive loop in `make bench` (docs/performance.md).
"""

from __future__ import annotations

import math
import re
import secrets
from dataclasses import dataclass, replace
from typing import Any, Callable

import torch

from .config import MAX_SEED
from .errors import UsageError
from .models.language_model import LanguageModel
from .precision import flush_denormals


MAX_TOKENS = 50_000_000  # length x num_samples: 400 MB of token ids, far beyond any real use
MAX_SAMPLES = 10_000


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


@dataclass(frozen=True)
class SamplingConfig:
    """How to draw each next token; the one validation for the command line, the Python API and
    the web app (which names fields as its JSON keys do: see `from_request`)."""

    length: int = 500  # characters to generate per sample (after the prime); for a model trained on
    # documents the most per document, which usually ends sooner
    temperature: float = 1.0  # > 0; below 1 sharper and more conservative, above 1 flatter
    top_k: int | None = None  # sample only among the k most likely characters
    top_p: float | None = None  # nucleus sampling: the smallest set of characters reaching probability p, in (0, 1]
    greedy: bool = False  # always take the most likely character
    num_samples: int = 1  # samples generated together in one batch
    seed: int | None = None  # same seed, same output

    def __post_init__(self) -> None:
        if not _is_int(self.length) or self.length < 0:
            raise UsageError(f"--length must be a whole number >= 0 (got {self.length!r})")
        if not _is_int(self.num_samples) or not 1 <= self.num_samples <= MAX_SAMPLES:
            raise UsageError(f"--num-samples must be a whole number in 1..{MAX_SAMPLES} (got {self.num_samples!r})")
        if self.length * self.num_samples > MAX_TOKENS:
            raise UsageError(f"--length x --num-samples is {self.length * self.num_samples:,} characters; at most "
                             f"{MAX_TOKENS:,} are generated in one call")
        if not _is_number(self.temperature) or not self.temperature > 0:
            raise UsageError(f"--temperature must be a finite number > 0 (got {self.temperature!r}); "
                             "use --greedy for the most likely character")
        if self.top_k is not None and (not _is_int(self.top_k) or self.top_k < 1):
            raise UsageError(f"--top-k must be a whole number >= 1 (got {self.top_k!r})")
        if self.top_p is not None and (not _is_number(self.top_p) or not 0 < self.top_p <= 1):
            raise UsageError(f"--top-p must be a number in (0, 1] (got {self.top_p!r})")
        if not isinstance(self.greedy, bool):
            raise UsageError(f"--greedy must be true or false (got {self.greedy!r})")
        if self.seed is not None and (not _is_int(self.seed) or not 0 <= self.seed <= MAX_SEED):
            raise UsageError(f"--seed must be a whole number in 0..2^63-1 (got {self.seed!r})")

    @classmethod
    def from_request(cls, fields: dict[str, Any]) -> "SamplingConfig":
        """Build from a JSON object's fields; errors name the fields as the JSON does (top_k, not --top-k)."""
        try:
            return cls(**fields)
        except UsageError as e:
            raise UsageError(re.sub(r"--([a-z-]+)", lambda m: m.group(1).replace("-", "_"), str(e))) from None


def filter_logits(logits: torch.Tensor, top_k: int | None, top_p: float | None) -> torch.Tensor:
    """Set excluded tokens' logits to -inf. logits: (N, V)."""
    if top_k is not None and top_k < logits.shape[-1]:
        kth = torch.topk(logits, top_k, dim=-1).values[:, -1:]  # (N, 1)
        logits = logits.masked_fill(logits < kth, float("-inf"))
    if top_p is not None and top_p < 1.0:
        sorted_logits, order = torch.sort(logits, dim=-1, descending=True)
        cumulative = torch.softmax(sorted_logits, dim=-1).cumsum(dim=-1)
        # Drop a token when the tokens ranked above it already reach top_p (the top one always stays).
        drop_sorted = (cumulative - torch.softmax(sorted_logits, dim=-1)) >= top_p
        drop = torch.zeros_like(drop_sorted).scatter(-1, order, drop_sorted)
        logits = logits.masked_fill(drop, float("-inf"))
    return logits


def draw(probs: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """One token per row of probs (N, V), by inverting the cumulative distribution at a uniform
    draw: the same distribution as torch.multinomial, a little cheaper for one draw per row
    (softmax + draw 29 us against softmax + multinomial 34 us at batch 1, V = 65)."""
    cumulative = probs.cumsum(dim=-1)  # (N, V)
    u = torch.rand(probs.shape[0], 1, generator=generator, device=probs.device, dtype=probs.dtype)
    # the first token whose cumulative probability exceeds u * total (total is 1 up to rounding)
    token = torch.searchsorted(cumulative, u * cumulative[:, -1:], right=True).squeeze(1)
    return token.clamp_(max=probs.shape[1] - 1)


def next_token(logits: torch.Tensor, config: SamplingConfig, generator: torch.Generator) -> torch.Tensor:
    """One token per row of logits (N, V), drawn as `config` says."""
    if config.greedy:
        return logits.argmax(dim=-1)
    if config.temperature != 1.0:
        # In float64 (a temperature such as 1e-300 is 0 in float32), with the largest logit shifted
        # to 0 first: then no temperature > 0 can overflow, and a vanishing one leaves 0 for the
        # most likely token and -inf for the others (greedy in the limit) instead of inf - inf = NaN.
        logits = logits.double()
        logits = (logits - logits.max(dim=-1, keepdim=True).values) / config.temperature
    if config.top_k is not None or config.top_p is not None:  # after the temperature: the nucleus
        logits = filter_logits(logits, config.top_k, config.top_p)  # is taken from the tempered distribution
    return draw(torch.softmax(logits, dim=-1), generator)


def seeded_generator(seed: int | None, device: torch.device | str = "cpu") -> torch.Generator:
    """A generator of its own: without a seed, one drawn from the OS rather than from torch's global RNG."""
    generator = torch.Generator(device=device)
    generator.manual_seed(seed if seed is not None else secrets.randbits(63))
    return generator


def until_end(tokens: list[int], end: int | None) -> list[int]:
    """A sample's tokens up to (without) its first end-of-document token."""
    return tokens[:tokens.index(end)] if end is not None and end in tokens else tokens


@torch.no_grad()
@flush_denormals()  # a state decaying over a long sample passes through the slow denormals
def generate_tokens(model: LanguageModel, prime: list[int], start: int, config: SamplingConfig,
                    on_tokens: Callable[[torch.Tensor], None] | None = None,
                    device: torch.device | str = "cpu", stop: int | None = None,
                    allowed: Callable[[int], torch.Tensor | None] | None = None,
                    feed: Callable[[torch.Tensor], torch.Tensor] | None = None,
                    filter_from: int = 0) -> torch.Tensor:
    """Generate up to `config.length` tokens for each of `config.num_samples` samples.

    prime: token ids to condition on (may be empty; then `start` seeds the state and is not
    part of the output). on_tokens receives each step's (N,) tokens as they are drawn.
    stop: a token (the end of a document) after which a sample is complete; generation ends early
    once every sample has drawn it (rows that finished first hold arbitrary tokens after it).
    allowed: step t -> a (V,) bool mask of the tokens that may be drawn there, or None for any
    (a grammar the output must follow, such as a tune's header fields in their order).
    feed: each step's (N,) drawn tokens -> the (N,) ids the model reads next, for a model whose
    inputs carry more than the token (called after on_tokens, which may track that information).
    filter_from: the steps before it are drawn from the whole (tempered) distribution, without
    top-k or top-p (a header whose rare values should keep their share).
    Returns (N, length or fewer) token ids.
    """
    model.eval()
    N = config.num_samples
    generator = seeded_generator(config.seed, device)
    context = torch.tensor(prime or [start], dtype=torch.long, device=device).expand(N, -1)  # (N, P)
    logits, state = model(context)
    logits = logits[:, -1]  # (N, V): distribution of the first new token
    stepper = model.generator(state)
    out = torch.empty(N, config.length, dtype=torch.long, device=device)
    finished = torch.zeros(N, dtype=torch.bool, device=device)
    unfiltered = replace(config, top_k=None, top_p=None)
    for t in range(config.length):
        mask = allowed(t) if allowed is not None else None
        if mask is not None:
            logits = logits.masked_fill(~mask, float("-inf"))
        token = next_token(logits, config if t >= filter_from else unfiltered, generator)
        out[:, t] = token
        if on_tokens is not None:
            on_tokens(token)
        if stop is not None:
            finished |= token == stop
            if bool(finished.all()):
                return out[:, :t + 1]
        if t + 1 < config.length:
            logits = stepper.step(token if feed is None else feed(token))
    return out
