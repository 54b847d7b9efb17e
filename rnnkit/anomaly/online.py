"""Online scoring (`score_samples(online=True)`, the Numenta Anomaly Benchmark's rule): every step is
scored by a network that has learnt only from the steps before it. The fitted network is copied;
after each `update_every` steps scored, the copy takes `update_steps` batches of training on
everything seen so far. An ensemble's networks each learn with their own optimizer and random
draws (seeds random_state, random_state + 1, ...), as each would as a detector on its own."""

from __future__ import annotations

import copy

import numpy as np
import torch

from .reconstruction import members


def keep_learning(network, optimizer, positions: np.ndarray, loss_of, generator: torch.Generator, config) -> None:
    """`config.update_steps` batches drawn from `positions` (cuts or window ends that only read the
    past), each a gradient step on loss_of(network, chosen positions)."""
    if len(positions) == 0:
        return
    network.train()
    for _ in range(config.update_steps):
        chosen = positions[torch.randint(len(positions), (min(config.batch_size, len(positions)),),
                                         generator=generator).numpy()]
        loss = loss_of(network, chosen)
        optimizer.zero_grad()
        loss.backward()
        if config.clip:
            torch.nn.utils.clip_grad_norm_(network.parameters(), config.clip)
        optimizer.step()
    network.eval()


def score_online(fitted, length: int, start: int, first: int, record, positions_of, loss_of, config) -> None:
    """Call record(steps, model) for every step from `first` on, in order, with a copy of the
    `fitted` model; from `start` on in blocks of `config.update_every` steps, after each of which
    every network of the copy learns from positions_of(steps seen so far)."""
    model = copy.deepcopy(fitted)
    networks = members(model)
    optimizers = [torch.optim.Adam(network.parameters(), lr=config.lr) for network in networks]
    generators = [torch.Generator().manual_seed(config.random_state + k) for k in range(len(networks))]
    begin = max(start, first)
    record(np.arange(first, begin), model)
    for block in range(begin, length, config.update_every):
        steps = np.arange(block, min(block + config.update_every, length))
        record(steps, model)  # scored before learning from these steps
        if config.update_steps:
            positions = positions_of(steps[-1] + 1)
            for network, optimizer, generator in zip(networks, optimizers, generators):
                keep_learning(network, optimizer, positions, loss_of, generator, config)
