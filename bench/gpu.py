"""rnnkit on a CUDA GPU, side by side in one run: training throughput of every cell against
PyTorch's cuDNN `nn.LSTM` of the same size, mixed precision (`--autocast bf16|fp16`), the
minGRU/minLSTM scan against cuDNN's GRU/LSTM over long sequences, and every cell trained, sampled
and reloaded end to end through the public API on the GPU.

Conventions as bench/speed.py (character LM, vocabulary 65, embedding 64, batch 64, seq 100, Adam,
clipping at norm 1, carried state; FLOPs counted as there) and bench/scan.py (one layer, batch 8,
input 64, hidden 256). Every timed call ends with `torch.cuda.synchronize()`, so a time is the
GPU's work, not the launch. Without a CUDA GPU it says so and stops (exit 0): `make bench` runs
on machines without one. Results go to bench/results.json ("gpu") and docs/performance.md.

usage: python bench/gpu.py [--quick] [--no-write]
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import sys
import tempfile
import time
import traceback
from pathlib import Path
from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parent))
from speed import BATCH, SEQ, V, RawModel, flops_per_char, rnnkit_model  # noqa: E402
from store import ROOT, publish  # noqa: E402

import rnnkit  # noqa: E402
from rnnkit.recurrent import Recurrent, detach_state  # noqa: E402

CELLS = ("lstm", "gru", "rnn", "irnn", "lnlstm", "bnlstm", "gfrnn", "indrnn", "mingru", "minlstm", "esn")
# cells whose matrix multiplies match an LSTM's count of speed.py (the rest are compared by chars/s)
MATMUL_COMPARABLE = {"lstm", "lnlstm", "bnlstm", "gfrnn"}
# nats/char: a unigram model of the end-to-end text scores about 2.8; the echo state network's
# readout alone reaches about 1.0 in 150 steps, the gated cells under 0.1
LEARNT = 1.5
PRECISIONS = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}


DEVICE = torch.device("cuda")  # --device cpu checks this script on a machine without a GPU (nothing stored)


def synchronised(fn: Callable[[], object]) -> Callable[[], None]:
    def run() -> None:
        fn()
        if DEVICE.type == "cuda":
            torch.cuda.synchronize()
    return run


def training_step_fn(model: nn.Module, dtype: torch.dtype | None = None) -> Callable[[], None]:
    """One full training step per call on random tokens on the GPU, state carried between calls;
    the forward pass under autocast when dtype is given (fp16 with a gradient scaler, as the trainer)."""
    device = DEVICE
    model.to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    scaler = torch.amp.GradScaler(device.type, enabled=dtype == torch.float16)
    tokens = torch.randint(0, V, (BATCH, SEQ + 1), generator=torch.Generator().manual_seed(0)).to(device)
    carried: list = [None]

    def step() -> None:
        with torch.autocast(DEVICE.type, dtype=dtype) if dtype else contextlib.nullcontext():
            logits, state = model(tokens[:, :-1], carried[0])
            loss = F.cross_entropy(logits.float().reshape(-1, V), tokens[:, 1:].reshape(-1))
        optimizer.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        scaler.unscale_(optimizer)
        nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        scaler.step(optimizer)
        scaler.update()
        carried[0] = detach_state(state if isinstance(state, tuple) else (state,))
        if isinstance(model, RawModel) and len(carried[0]) == 1:
            carried[0] = carried[0][0]
    return synchronised(step)


def interleaved(steps: dict[str, Callable[[], None]], seconds: float) -> dict[str, float]:
    """Median seconds per call of each function, timed in turns (A, B, A, B, ...) after two warm-ups."""
    for step in steps.values():
        step()
        step()
    times: dict[str, list[float]] = {name: [] for name in steps}
    started = time.perf_counter()
    while min(len(t) for t in times.values()) < 5 or time.perf_counter() - started < seconds * len(steps):
        for name, step in steps.items():
            t0 = time.perf_counter()
            step()
            times[name].append(time.perf_counter() - t0)
    return {name: statistics.median(t) for name, t in times.items()}


def chars_per_s(seconds: float) -> int:
    return round(BATCH * SEQ / seconds)


def bench_training(hiddens: tuple[int, ...], seconds: float) -> list[dict]:
    """Every cell, 2 layers, float32, against cuDNN's nn.LSTM of the same size in the same turns."""
    rows = []
    for hidden in hiddens:
        for cell in CELLS:
            torch.manual_seed(0)
            times = interleaved({"rnnkit": training_step_fn(rnnkit_model(cell, hidden, 2)),
                                 "torch_lstm": training_step_fn(RawModel("lstm", hidden, 2))}, seconds)
            row = {"cell": cell, "hidden": hidden, "layers": 2,
                   "rnnkit_chars_per_s": chars_per_s(times["rnnkit"]),
                   "torch_lstm_chars_per_s": chars_per_s(times["torch_lstm"])}
            row["chars_vs_torch_lstm"] = round(times["torch_lstm"] / times["rnnkit"], 3)
            if cell in MATMUL_COMPARABLE:
                row["gflops_vs_torch_lstm"] = round(row["chars_vs_torch_lstm"] * flops_per_char(cell, hidden, 2)
                                                    / flops_per_char("lstm", hidden, 2), 3)
            print(f"train {cell} 2x{hidden}: rnnkit {row['rnnkit_chars_per_s']} chars/s, nn.LSTM "
                  f"{row['torch_lstm_chars_per_s']} -> {row['chars_vs_torch_lstm']:.2f}x", flush=True)
            rows.append(row)
    return rows


def bench_autocast(hidden: int, seconds: float) -> list[dict]:
    """rnnkit's LSTM and LN-LSTM under each precision, against its own float32 in the same turns."""
    rows = []
    precisions = PRECISIONS if DEVICE.type == "cuda" else {"fp32": None, "bf16": torch.bfloat16}  # fp16: CUDA only
    for cell in ("lstm", "lnlstm"):
        torch.manual_seed(0)
        times = interleaved({name: training_step_fn(rnnkit_model(cell, hidden, 2), dtype)
                             for name, dtype in precisions.items()}, seconds)
        row = {"cell": cell, "hidden": hidden, "layers": 2,
               **{f"{name}_chars_per_s": chars_per_s(t) for name, t in times.items()},
               **{f"{name}_vs_fp32": round(times["fp32"] / times[name], 3) for name in precisions if name != "fp32"}}
        print(f"autocast {cell} 2x{hidden}: " + ", ".join(f"{k} {v}" for k, v in row.items() if "chars" in k),
              flush=True)
        rows.append(row)
    return rows


def bench_scan(lengths: tuple[int, ...], seconds: float) -> list[dict]:
    """One layer over sequences of each length: minGRU/minLSTM's scan against cuDNN's GRU/LSTM."""
    device, rows = DEVICE, []
    torch.manual_seed(0)
    layers = {"nn.GRU": nn.GRU(64, 256, batch_first=True), "nn.LSTM": nn.LSTM(64, 256, batch_first=True),
              "mingru": Recurrent("mingru", 64, 256), "minlstm": Recurrent("minlstm", 64, 256)}
    for T in lengths:
        x = torch.randn(8, T, 64, device=device, requires_grad=True)

        def step(layer: nn.Module) -> Callable[[], None]:
            layer.to(device)
            return synchronised(lambda: layer(x)[0].square().mean().backward())
        times = interleaved({name: step(layer) for name, layer in layers.items()}, seconds / 2)
        row = {"length": T, **{f"{name}_ms": round(t * 1000, 3) for name, t in times.items()},
               "gru_over_mingru": round(times["nn.GRU"] / times["mingru"], 2),
               "lstm_over_minlstm": round(times["nn.LSTM"] / times["minlstm"], 2)}
        print(f"scan T={T}: " + ", ".join(f"{k} {v}" for k, v in row.items() if k != "length"), flush=True)
        rows.append(row)
    return rows


def end_to_end(workdir: Path) -> list[dict]:
    """Every cell (and the LSTM under each autocast) trained on the GPU through rnnkit.train, then
    sampled, then reloaded and sampled on the CPU: does the whole path run, and does it learn?"""
    text = workdir / "text.txt"
    text.write_text("the quick brown fox jumps over the lazy dog. " * 400)
    runs = [(cell, "off") for cell in CELLS] + [("lstm", "bf16"), ("lstm", "fp16"), ("lnlstm", "bf16")]
    rows = []
    for cell, autocast in runs:
        row: dict = {"cell": cell, "autocast": autocast}
        try:
            start = time.perf_counter()
            # the IRNN diverges under Adam even at 3e-4 (on CPU too): SGD, as Le et al. 2015 and the tests
            optimizer = dict(optimizer="sgd", lr=0.1) if cell == "irnn" else dict(lr=3e-3)
            model = rnnkit.train(text, out=workdir / f"{cell}-{autocast}", cell=cell, autocast=autocast,
                                 device=DEVICE.type, max_steps=150, hidden_size=64, num_layers=2, seq_length=32,
                                 batch_size=16, eval_every=50, log=lambda line: None, progress=False, **optimizer)
            row["train_s"] = round(time.perf_counter() - start, 1)
            row["best_val"] = round(model.meta["best_val"], 4)
            row["sample"] = model.generate(prime="the ", length=40, seed=1)
            on_cpu = rnnkit.load(workdir / f"{cell}-{autocast}", device="cpu")
            row["cpu_sample"] = on_cpu.generate(prime="the ", length=40, seed=1)
            row["ok"] = row["best_val"] < LEARNT
        except Exception as error:  # a broken path is a result here, not the end of the run
            row["ok"], row["error"] = False, f"{type(error).__name__}: {error}"
            traceback.print_exc()
        print(f"end to end {cell} autocast {autocast}: {row}", flush=True)
        rows.append(row)
    return rows


def markdown(header: list[str], rows: list[list]) -> list[str]:
    return (["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
            + ["| " + " | ".join(str(value) for value in row) + " |" for row in rows])


def table(results: dict) -> str:
    m = results["machine"]
    lines = [f"Measured on {m['gpu']} ({m['torch']}, cuDNN {m['cudnn']}), {m['date']}.", ""]
    lines += markdown(["cell", "size", "rnnkit chars/s", "cuDNN nn.LSTM chars/s", "chars/s vs nn.LSTM",
                       "GFLOP/s vs nn.LSTM"],
                      [[r["cell"], f"2 x {r['hidden']}", r["rnnkit_chars_per_s"], r["torch_lstm_chars_per_s"],
                        f"{r['chars_vs_torch_lstm']:.2f}", r.get("gflops_vs_torch_lstm", "n/a")]
                       for r in results["train"]])
    lines += [""] + markdown(["cell", "size", "fp32 chars/s", "bf16 chars/s", "fp16 chars/s", "bf16 / fp32",
                              "fp16 / fp32"],
                             [[r["cell"], f"2 x {r['hidden']}", r["fp32_chars_per_s"], r["bf16_chars_per_s"],
                               r.get("fp16_chars_per_s", "n/a"), f"{r['bf16_vs_fp32']:.2f}",
                               r.get("fp16_vs_fp32", "n/a")] for r in results["autocast"]])
    lines += [""] + markdown(["steps", "nn.GRU ms", "minGRU ms", "nn.GRU / minGRU", "nn.LSTM ms", "minLSTM ms",
                              "nn.LSTM / minLSTM"],
                             [[r["length"], r["nn.GRU_ms"], r["mingru_ms"], r["gru_over_mingru"], r["nn.LSTM_ms"],
                               r["minlstm_ms"], r["lstm_over_minlstm"]] for r in results["scan"]])
    lines += [""] + markdown(["cell", "autocast", "trains, samples, reloads on CPU",
                              "validation nats/char after 150 steps"],
                             [[r["cell"], r["autocast"], "yes" if r["ok"] else "no: " + r.get("error", "did not learn"),
                               r.get("best_val", "n/a")] for r in results["end_to_end"]])
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="shorter timings, one model size")
    parser.add_argument("--no-write", action="store_true", help="print the tables only")
    parser.add_argument("--device", choices=["cuda", "cpu"], default="cuda",
                        help="cpu: a check of this script where there is no GPU (implies --no-write)")
    parser.add_argument("--skip-train", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    global DEVICE
    DEVICE = torch.device(args.device)
    if DEVICE.type == "cuda" and not torch.cuda.is_available():
        print("bench/gpu.py: PyTorch sees no CUDA GPU here; nothing measured (the stored results stay)")
        return
    seconds = 0.5 if args.quick else 1.5
    gpu = torch.cuda.get_device_name() if DEVICE.type == "cuda" else "CPU (script check)"
    results = {"machine": {"gpu": gpu, "torch": torch.__version__, "cudnn": torch.backends.cudnn.version(),
                           "date": time.strftime("%Y-%m-%d")}}
    results["train"] = bench_training((256,) if args.quick else (256, 1024), seconds) if not args.skip_train else []
    results["autocast"] = bench_autocast(256 if args.quick else 1024, seconds)
    results["scan"] = bench_scan((64, 256, 1024, 4096), seconds)
    with tempfile.TemporaryDirectory() as tmp:
        results["end_to_end"] = end_to_end(Path(tmp))
    write = not args.no_write and DEVICE.type == "cuda"
    publish("gpu", results, table(results), ROOT / "docs" / "performance.md", write=write)


if __name__ == "__main__":
    main()
