"""Run by tests/test_distributed.py under torchrun (two CPU processes); not a test module.

usage: ddp_worker.py trainer OUT_DIR       train with the Trainer directly; each rank writes its
                                           own final weights, losses and first batch to OUT_DIR
       ddp_worker.py interrupted TEXT RUN  `rnnkit.train` for 24 steps, stopped after step 13
"""

import gc
import json
import sys
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import save_file

import rnnkit
from rnnkit import distributed
from rnnkit.config import ModelConfig, TrainConfig
from rnnkit.models.language_model import LanguageModel
from rnnkit.tasks import LanguageModelTask
from rnnkit.training import Trainer


class Stop(Exception):
    pass


def trainer_run(out: Path) -> None:
    world = distributed.join("cpu")
    rng = np.random.default_rng(0)  # the same text on every rank: a repeating pattern with noise
    text = np.tile(np.arange(12), 4000) + (rng.random(48000) < 0.05)
    tokens = text.astype(np.uint16)
    a, b = distributed.shard(0, 40000, world)
    torch.manual_seed(1)
    model = LanguageModel(ModelConfig(vocab_size=13, hidden_size=32, num_layers=1, embedding_size=8))
    task = LanguageModelTask(tokens[a:b], tokens[40000:], 8, 24, 4000, torch.device("cpu")).bind(model)
    first_batch = task.batches.batch(0)[0]
    config = TrainConfig(max_steps=60, lr=1e-2, eval_every=1000)
    trainer = Trainer(model, task, config, None, lambda: {}, torch.device("cpu"), world=world)
    losses = []
    trainer.on_step.append(lambda step, loss: losses.append(loss))
    trainer.fit()
    distributed.leave(world)
    save_file(model.state_dict(), str(out / f"rank{world.rank}.safetensors"))
    (out / f"rank{world.rank}.json").write_text(json.dumps({"losses": losses, "first_batch": first_batch.tolist()}))


def interrupted_run(text: str, run: str) -> None:
    def stop_after_13(step: int, loss: float) -> None:
        if step == 13:
            raise Stop
    try:
        rnnkit.train(text, out=run, max_steps=24, hidden_size=32, num_layers=1, embedding_size=8,
                     batch_size=8, seq_length=24, eval_chars=2000, on_step=stop_after_13, device="cpu")
    except Stop:
        pass
    # Both ranks stopped after the same step. The exception's frames held the trainer and its
    # DistributedDataParallel model; they are gone now, and collected before the process group
    # is left together: a DDP reducer destroyed after its group aborts the process now and then
    # ("terminate called without an active exception", 2 runs in 8 on a loaded machine).
    gc.collect()
    if torch.distributed.is_initialized():
        torch.distributed.barrier()
        torch.distributed.destroy_process_group()


if __name__ == "__main__":
    if sys.argv[1] == "trainer":
        trainer_run(Path(sys.argv[2]))
    else:
        interrupted_run(sys.argv[2], sys.argv[3])
