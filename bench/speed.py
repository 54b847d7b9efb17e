"""Speed, side by side in one run: the machine's sgemm peak, training throughput of rnnkit against
raw `torch.nn` recurrent modules (oneDNN on and off), custom cells, sampling, batch-1 generation
with int8 weights and through onnxruntime (reads ../shared's tiny Shakespeare), and preprocessing of
a large corpus. Results go to bench/results.json ("speed"); bench/report.py turns them into
docs/performance.md.

Conventions: character LM, vocabulary 65, embedding 64, batch 64, seq 100, Adam,
gradient clipping at norm 1, carried state (truncated BPTT), every implementation running the
same loop. Throughput is characters (time steps x batch) per second of full training steps.
FLOPs per character = 3 x forward, forward = the recurrent matrix multiplies
2 G H (D + H) per layer plus the output layer 2 H V (G gates; element-wise work not counted); the
gated-feedback LSTM's multiplies by the other layers' states are counted too.

The sections that run rnnkit in child processes (scale, ddp) are in bench/speed_processes.py.

usage: python bench/speed.py [--quick] [--only sgemm,train,custom,sample,deploy,scale,ddp]
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import tempfile
import time
import warnings
from pathlib import Path
from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn

from rnnkit import native
from rnnkit.cells import Cell
from rnnkit.config import ModelConfig
from rnnkit.models.language_model import LanguageModel
from rnnkit.recurrent import detach_state
from rnnkit.memory import keep_freed_memory
from rnnkit.sampling import SamplingConfig, generate_tokens

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results.json"
sys.path.insert(0, str(ROOT / "bench"))
from speed_processes import bench_ddp, bench_scale  # noqa: E402  (the sections in child processes)
V, E, BATCH, SEQ = 65, 64, 64, 100
# Switching oneDNN off and on warns about an Intel-GPU feature on every switch.
warnings.filterwarnings("ignore", message=".*TF32 acceleration on top of oneDNN.*")
# Matrix multiplies per unit; the cells after gfrnn do fewer (IndRNN and minGRU/minLSTM have no
# recurrent matrix, the echo state reservoir's never gets a gradient), so their rows are compared
# by characters per second with nn.LSTM of the same size instead (bench/report.py).
GATES = {"lstm": 4, "gru": 3, "rnn": 1, "irnn": 1, "lnlstm": 4, "bnlstm": 4, "gfrnn": 4,
         "indrnn": 4, "mingru": 4, "minlstm": 4, "esn": 4}
TORCH_MODULES = {"lstm": nn.LSTM, "gru": nn.GRU, "rnn": nn.RNN}
SHAPES = [(128, 2), (256, 2), (512, 2), (1024, 1)]  # (hidden size, layers)


def timed(fn: Callable[[], object], min_seconds: float, min_reps: int, warmup: int = 1) -> float:
    """Median seconds per call of fn, after `warmup` calls, over at least min_reps calls and min_seconds."""
    for _ in range(warmup):
        fn()
    times: list[float] = []
    started = time.perf_counter()
    while len(times) < min_reps or time.perf_counter() - started < min_seconds:
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def flops_per_char(cell: str, hidden: int, layers: int) -> float:
    """Forward FLOPs per character of the model (recurrent layers and output layer)."""
    G, total, width = GATES[cell], 0.0, E
    for _ in range(layers):
        total += 2 * G * hidden * (width + hidden)
        if cell == "gfrnn":  # U_c^{i->j} h^i for the L - 1 other layers; reset gates on the input and on h*
            total += 2 * (layers - 1) * hidden * hidden + 2 * layers * (width + layers * hidden)
        width = hidden
    return total + 2 * hidden * V


# ------------------------------------------------------------------------------------ sgemm
def bench_sgemm(quick: bool) -> dict:
    rows = {}
    for n in (512, 1024, 2048):
        a, b = torch.randn(n, n), torch.randn(n, n)
        seconds = timed(lambda: a @ b, 0.5 if quick else 2.0, 3)
        rows[str(n)] = round(2 * n ** 3 / seconds / 1e9, 1)
        print(f"sgemm n={n}: {rows[str(n)]} GFLOP/s", flush=True)
    # The shape an LSTM time step multiplies at batch 64: (64, H) x (H, 4H). With only 64 rows the
    # GEMM cannot reach the square-matrix peak; this is the ceiling a per-step kernel works under.
    step_shapes = {}
    for hidden in (256, 512, 1024):
        h, w = torch.randn(BATCH, hidden), torch.randn(hidden, 4 * hidden)
        seconds = timed(lambda: h @ w, 0.5 if quick else 2.0, 10)
        step_shapes[str(hidden)] = round(2 * BATCH * hidden * 4 * hidden / seconds / 1e9, 1)
        print(f"sgemm (64 x {hidden}) x ({hidden} x {4 * hidden}): {step_shapes[str(hidden)]} GFLOP/s", flush=True)
    return {"gflops_by_n": rows, "peak_gflops": max(rows.values()), "lstm_step_gemm_gflops_by_hidden": step_shapes}


# ------------------------------------------------------------------------ training models
class RawModel(nn.Module):
    """What a PyTorch user writes: embedding -> nn.LSTM/GRU/RNN -> linear."""

    def __init__(self, cell: str, hidden: int, layers: int) -> None:
        super().__init__()
        self.embed = nn.Embedding(V, E)
        self.rnn = TORCH_MODULES[cell](E, hidden, layers, batch_first=True)
        self.head = nn.Linear(hidden, V)

    def forward(self, tokens, state=None):
        out, state = self.rnn(self.embed(tokens), state)
        return self.head(out), state


class NaiveLoopModel(nn.Module):
    """rnnkit's cells driven by the loop a user would write: the cell's equations on every time step of
    every layer (input projection included, no fused one-step op)."""

    def __init__(self, model: LanguageModel) -> None:
        super().__init__()
        self.model = model

    def forward(self, tokens, state=None):
        rec = self.model.recurrent
        B, T = tokens.shape
        state = state if state is not None else rec.init_state(B)
        x, final = self.model.embed(tokens), []
        if rec.cells[0].feedback:  # every layer reads all layers' previous states: time-major
            states, outputs = rec.layer_states(state), []
            for t in range(T):
                previous, y, new = torch.cat([s[0] for s in states], 1), x[:, t], []
                for k, cell in enumerate(rec.cells):
                    y, s = cell.recurrent_step(cell.input_projection(y), states[k], feedback=previous)
                    new.append(s)
                states = new
                outputs.append(y)
            return self.model.head(torch.stack(outputs, dim=1)), rec.stack_states(states)
        for k, cell in enumerate(rec.cells):
            s, outputs = tuple(part[k] for part in state), []
            for t in range(T):
                y, s = cell.recurrent_step(cell.input_projection(x[:, t]), s)
                outputs.append(y)
            x = torch.stack(outputs, dim=1)
            final.append(s)
        return self.model.head(x), tuple(torch.stack(parts) for parts in zip(*final))


def rnnkit_model(cell: str, hidden: int, layers: int) -> LanguageModel:
    return LanguageModel(ModelConfig(vocab_size=V, cell=cell, hidden_size=hidden, num_layers=layers, embedding_size=E))


def training_step_fn(model: nn.Module) -> Callable[[], None]:
    """One full training step per call, on random tokens, with the state carried between calls."""
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    generator = torch.Generator().manual_seed(0)
    tokens = torch.randint(0, V, (BATCH, SEQ + 1), generator=generator)
    carried: list = [None]

    def step() -> None:
        logits, state = model(tokens[:, :-1], carried[0])
        loss = F.cross_entropy(logits.reshape(-1, V), tokens[:, 1:].reshape(-1))
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        carried[0] = detach_state(state if isinstance(state, tuple) else (state,))
        if isinstance(model, RawModel) and len(carried[0]) == 1:
            carried[0] = carried[0][0]
    return step


def with_onednn(step: Callable[[], None], enabled: bool | None) -> Callable[[], None]:
    """step run with PyTorch's oneDNN switch set (None: left as it is)."""
    if enabled is None:
        return step

    def switched() -> None:
        with torch.backends.mkldnn.flags(enabled=enabled):
            step()
    return switched


def interleaved(steps: dict[str, Callable[[], None]], quick: bool) -> dict[str, float]:
    """Median seconds per call of each step function, timed in alternation (A, B, C, A, B, C, ...)
    so that drift in the machine's speed (other processes, turbo, heat) hits all of them alike and
    the ratios stay honest."""
    for step in steps.values():
        step()  # warm-up: allocator, oneDNN primitive caches
    times: dict[str, list[float]] = {name: [] for name in steps}
    budget, rounds, started = (1.5 if quick else 6.0) * len(steps), 0, time.perf_counter()
    while rounds < (2 if quick else 5) or time.perf_counter() - started < budget:
        for name, step in steps.items():
            t0 = time.perf_counter()
            step()
            times[name].append(time.perf_counter() - t0)
        rounds += 1
    return {name: statistics.median(values) for name, values in times.items()}


def rates(seconds: float, cell: str, hidden: int, layers: int) -> dict:
    chars = BATCH * SEQ / seconds
    return {"chars_per_s": round(chars), "gflops": round(3 * flops_per_char(cell, hidden, layers) * chars / 1e9, 1),
            "ms_per_step": round(seconds * 1000, 1)}


def bench_training(quick: bool) -> list[dict]:
    rows = []
    for cell in ("lstm", "gru", "rnn"):
        for hidden, layers in SHAPES:
            torch.manual_seed(0)
            seconds = interleaved({
                "torch_onednn": with_onednn(training_step_fn(RawModel(cell, hidden, layers)), True),
                "torch_native": with_onednn(training_step_fn(RawModel(cell, hidden, layers)), False),
                "rnnkit": training_step_fn(rnnkit_model(cell, hidden, layers))}, quick)
            row = {"cell": cell, "hidden": hidden, "layers": layers,
                   **{name: rates(t, cell, hidden, layers) for name, t in seconds.items()}}
            best = max(row["torch_onednn"]["chars_per_s"], row["torch_native"]["chars_per_s"])
            row["rnnkit_vs_best_torch"] = round(row["rnnkit"]["chars_per_s"] / best, 3)
            print(f"train {cell} {layers}x{hidden}: torch oneDNN {row['torch_onednn']['chars_per_s']}, "
                  f"native {row['torch_native']['chars_per_s']}, rnnkit {row['rnnkit']['chars_per_s']} chars/s "
                  f"({row['rnnkit_vs_best_torch']:.2f}x best torch)", flush=True)
            rows.append(row)
    return rows


def path_of(model: LanguageModel) -> str:
    cell = model.recurrent.cells[0]
    if model.recurrent.is_fused:
        return "fused kernel"
    if hasattr(cell, "scan"):  # one call for the whole chunk: in C where the kernels are built, else chunked
        return "whole-chunk scan, in C" if native.library() is not None else "whole-chunk scan, chunked"
    if type(cell).recurrent_sequence is not Cell.recurrent_sequence and native.library() is not None:
        return "native C kernels, input projection hoisted"
    if cell.feedback and native.library() is not None:  # the whole stack and chunk as one node
        return "native C kernels, whole stack per step"
    return "step path, input projection hoisted"


def bench_custom_cells(quick: bool) -> list[dict]:
    rows = []
    for cell in ("lnlstm", "bnlstm", "gfrnn", "irnn", "indrnn", "mingru", "minlstm", "esn"):
        for hidden in (128, 256, 512):
            torch.manual_seed(0)
            model = rnnkit_model(cell, hidden, 2)
            seconds = interleaved({
                "rnnkit": training_step_fn(model),
                "naive_loop": training_step_fn(NaiveLoopModel(rnnkit_model(cell, hidden, 2))),
                "torch_lstm": training_step_fn(RawModel("lstm", hidden, 2))}, quick)
            row = {"cell": cell, "hidden": hidden, "layers": 2,
                   "path": path_of(model),
                   "rnnkit": rates(seconds["rnnkit"], cell, hidden, 2),
                   "naive_loop": rates(seconds["naive_loop"], cell, hidden, 2),
                   "torch_lstm": rates(seconds["torch_lstm"], "lstm", hidden, 2)}
            row["rnnkit_vs_naive"] = round(row["rnnkit"]["chars_per_s"] / row["naive_loop"]["chars_per_s"], 2)
            row["gflops_vs_torch_lstm"] = round(row["rnnkit"]["gflops"] / row["torch_lstm"]["gflops"], 2)
            print(f"custom {cell} 2x{hidden}: rnnkit {row['rnnkit']['chars_per_s']} chars/s "
                  f"{row['rnnkit']['gflops']} GF, naive {row['naive_loop']['chars_per_s']}, nn.LSTM "
                  f"{row['torch_lstm']['gflops']} GF -> {row['gflops_vs_torch_lstm']:.2f}x", flush=True)
            rows.append(row)
    return rows


# --------------------------------------------------------------------------------- sampling
def naive_sampler(model: RawModel, batch: int, length: int) -> Callable[[], None]:
    """The per-character loop from PyTorch tutorials: the fused module called on one step at a time."""
    generator = torch.Generator().manual_seed(1)

    @torch.no_grad()
    def run() -> None:
        token, state = torch.zeros(batch, 1, dtype=torch.long), None
        for _ in range(length):
            logits, state = model(token, state)
            probs = torch.softmax(logits[:, -1], dim=-1)
            token = torch.multinomial(probs, 1, generator=generator)
    return run


def bench_sampling(quick: bool) -> dict:
    hidden, layers = 512, 2
    torch.manual_seed(0)
    ours, raw = rnnkit_model("lstm", hidden, layers), RawModel("lstm", hidden, layers).eval()
    rows = {}
    for batch in (1, 64):
        length = (500 if quick else 2000) if batch == 1 else (50 if quick else 200)
        config = SamplingConfig(length=length, num_samples=batch, seed=1, temperature=0.8)
        seconds = interleaved({"rnnkit": lambda: generate_tokens(ours, [0], 0, config),
                               "naive_onednn": with_onednn(naive_sampler(raw, batch, length), True),
                               "naive_native": with_onednn(naive_sampler(raw, batch, length), False)}, quick)
        row = {"length": length, **{name: round(batch * length / t) for name, t in seconds.items()}}
        row["rnnkit_vs_naive"] = round(row["rnnkit"] / max(row["naive_onednn"], row["naive_native"]), 2)
        rows[f"batch_{batch}"] = row
        print(f"sample 2x512 batch {batch}: rnnkit {row['rnnkit']} chars/s, naive oneDNN {row['naive_onednn']}, "
              f"naive native {row['naive_native']}", flush=True)
    rows["batch_64_vs_batch_1"] = round(rows["batch_64"]["rnnkit"] / rows["batch_1"]["rnnkit"], 1)
    return rows


# ----------------------------------------------------------------------------------- deploy
def bench_deploy(quick: bool) -> dict:
    """Batch-1 generation steps of a trained 2 x 512 LSTM, side by side: rnnkit's float step (the
    `Generator` sampling uses), int8 weights (`rnnkit sample --int8`) and the exported ONNX step in
    onnxruntime; and how often int8 and ONNX choose the float model's top next character over the
    validation text (tiny Shakespeare's last 10%, read by all three with the state carried)."""
    import numpy as np
    import rnnkit
    from rnnkit.export import language_model_onnx
    text = (ROOT.parent / "shared" / "data" / "tinyshakespeare.txt").read_text(encoding="utf-8")
    cut = int(0.9 * len(text))
    with tempfile.TemporaryDirectory() as tmp:
        train_file = Path(tmp) / "train.txt"
        train_file.write_text(text[:cut], encoding="utf-8")
        model = rnnkit.train(train_file, out=Path(tmp) / "lm", hidden_size=512, num_layers=2, dropout=0.2,
                             time=30 if quick else 300, log=lambda line: None, progress=False)
    model.module.cpu().eval()
    fast = model.int8()
    onnx_bytes = language_model_onnx(model)
    import onnxruntime
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = torch.get_num_threads()
    session = onnxruntime.InferenceSession(onnx_bytes, options, providers=["CPUExecutionProvider"])
    tokens = torch.from_numpy(model.encode(text[cut:cut + (2_000 if quick else 20_000)], "text"))
    steps = 200 if quick else 1000

    def run(kind: str, count: int, record: list | None = None) -> None:
        with torch.no_grad():
            if kind == "onnx":
                state = {f"state_{n}": np.zeros((2, 1, 512), np.float32) for n in ("h", "c")}
                for t in range(count):
                    logits, h, c = session.run(None, {"token": tokens[t:t + 1].numpy(), **state})
                    state = {"state_h": h, "state_c": c}
                    if record is not None:
                        record.append(int(logits.argmax()))
                return
            _, state = model.module(tokens[None, :1])
            stepper = (fast.module if kind == "int8" else model.module).generator(state)
            for t in range(1, count + 1):
                logits = stepper.step(tokens[t:t + 1])
                if record is not None:
                    record.append(int(logits.argmax()))

    seconds = interleaved({kind: lambda kind=kind: run(kind, steps) for kind in ("float", "int8", "onnx")}, quick)
    per_step = {kind: round(1e6 * t / steps, 1) for kind, t in seconds.items()}
    count = len(tokens) - 2
    choices = {}
    for kind in ("float", "int8", "onnx"):
        choices[kind] = []
        run(kind, count, choices[kind])
    # onnx records the choice after reading token t (t = 0..), the others after token t + 1: align them
    agree = {kind: round(float(np.mean([a == b for a, b in zip(choices["float"], choices[kind][1:] if kind == "onnx"
                                                                else choices[kind])])), 5)
             for kind in ("int8", "onnx")}
    row = {"hidden": 512, "layers": 2, "val_nats": round(model.meta["best_val"], 3), "positions": count,
           "us_per_step": per_step, "speedup": {k: round(per_step["float"] / per_step[k], 2) for k in ("int8", "onnx")},
           "top1_agreement": agree}
    print(f"deploy 2x512 batch 1: {per_step} us/step, speed-up {row['speedup']}, top-1 agreement {agree}", flush=True)
    return row


SECTIONS = {"sgemm": bench_sgemm, "train": bench_training, "custom": bench_custom_cells,
            "sample": bench_sampling, "deploy": bench_deploy, "scale": bench_scale, "ddp": bench_ddp}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="shorter timings and a smaller corpus (under 5 minutes)")
    parser.add_argument("--only", default=",".join(SECTIONS), help="comma-separated sections to run")
    args = parser.parse_args()
    # as `rnnkit` does at start (rnnkit/memory.py): PyTorch's layers, timed in this process too, gain alike
    keep_freed_memory()
    wanted = [name.strip() for name in args.only.split(",") if name.strip()]
    unknown = [name for name in wanted if name not in SECTIONS]
    if unknown:
        sys.exit(f"speed.py: unknown section(s) {', '.join(unknown)}; choose from {', '.join(SECTIONS)}")
    results = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    speed = results.setdefault("speed", {})
    machine = {"cpu": platform.processor() or platform.machine(), "threads": torch.get_num_threads(),
               "torch": torch.__version__, "quick": args.quick, "date": time.strftime("%Y-%m-%d")}
    if set(wanted) == set(SECTIONS):
        speed["machine"] = machine  # the machine of every section; a partial run notes its own in its sections
    for name in wanted:
        started = time.perf_counter()
        speed[name] = SECTIONS[name](args.quick)
        if set(wanted) != set(SECTIONS):  # a partial run: the machine of this section, which may differ
            if isinstance(speed[name], dict):
                speed[name]["machine"] = machine
            else:
                speed[f"{name}_machine"] = machine
        print(f"-- {name}: {time.perf_counter() - started:.0f} s", flush=True)
        RESULTS.write_text(json.dumps(results, indent=1) + "\n")  # keep what is done if a later section fails


if __name__ == "__main__":
    main()
