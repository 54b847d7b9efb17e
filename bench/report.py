"""Write the measured tables of bench/results.json into docs/performance.md.

The prose of docs/performance.md is written by hand; each table sits between the markers
`<!-- bench:NAME -->` and `<!-- /bench:NAME -->` and is replaced here, so rerunning
`make bench` refreshes the numbers and leaves the text alone. A section with no results yet
says so instead of keeping stale numbers.

usage: python bench/report.py
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results.json"
DOC = ROOT / "docs" / "performance.md"


def verdict(ok: bool) -> str:
    return "met" if ok else "**missed**"


def table(header: list[str], rows: list[list[object]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines)


def machine(r: dict) -> str:
    speed = r.get("speed", {})
    sgemm = speed.get("sgemm")
    m = (sgemm or {}).get("machine") or speed.get("machine")  # a section run on its own notes its machine
    if not m or not sgemm:
        return "_not measured yet: run `make bench QUICK=1`_"
    sizes = ", ".join(f"n={n}: {g}" for n, g in sgemm["gflops_by_n"].items())
    mode = "QUICK (short timings)" if m["quick"] else "full"
    steps = ", ".join(f"H={h}: {g}" for h, g in sgemm.get("lstm_step_gemm_gflops_by_hidden", {}).items())
    return (f"{m['cpu']}, {m['threads']} threads, torch {m['torch']}, measured {m['date']} ({mode} run). "
            f"sgemm GFLOP/s on square matrices: {sizes}; **peak {sgemm['peak_gflops']} GFLOP/s** (the reference "
            f"below). On the shape of one LSTM time step at batch 64, (64 x H) x (H x 4H): {steps} GFLOP/s.")


def training(r: dict) -> str:
    speed = r.get("speed", {})
    rows, peak = speed.get("train"), speed.get("sgemm", {}).get("peak_gflops")
    if not rows:
        return "_not measured yet_"
    out = []
    for row in rows:
        ratio = row["rnnkit_vs_best_torch"]
        of_peak = row["rnnkit"]["gflops"] / peak if peak else float("nan")
        peak_note = f"{of_peak:.2f}" + (f" ({verdict(of_peak >= 0.75)})" if row["cell"] == "lstm" and row["hidden"] >= 512 else "")
        out.append([row["cell"], f"{row['layers']} x {row['hidden']}", row["torch_onednn"]["chars_per_s"],
                    row["torch_native"]["chars_per_s"], row["rnnkit"]["chars_per_s"], row["rnnkit"]["gflops"],
                    f"{ratio:.3f} ({verdict(ratio >= 1.0)})", peak_note])
    return table(["cell", "size", "torch oneDNN chars/s", "torch native chars/s", "rnnkit chars/s",
                  "rnnkit GFLOP/s", "rnnkit / best torch (target >= 1.0)", "of sgemm peak (LSTM H>=512: >= 0.75)"], out)


FEWER_MULTIPLIES = {"indrnn", "mingru", "minlstm", "esn"}  # no recurrent matrix, or none that learns


def custom(r: dict) -> str:
    rows = r.get("speed", {}).get("custom")
    if not rows:
        return "_not measured yet_"
    out = []
    for row in rows:
        if row["cell"] in FEWER_MULTIPLIES:  # an LSTM's FLOPs would be credited for work never done
            chars = row["rnnkit"]["chars_per_s"] / row["torch_lstm"]["chars_per_s"]
            speed, ratio = "n/a", f"n/a: {chars:.2f}x nn.LSTM's chars/s"
        else:
            speed = row["rnnkit"]["gflops"]
            ratio = f"{row['gflops_vs_torch_lstm']:.2f} ({verdict(row['gflops_vs_torch_lstm'] >= 0.6)})"
        out.append([row["cell"], f"{row['layers']} x {row['hidden']}", row["path"], row["naive_loop"]["chars_per_s"],
                    row["rnnkit"]["chars_per_s"], f"{row['rnnkit_vs_naive']:.2f}x", speed,
                    row["torch_lstm"]["gflops"], ratio])
    m = r["speed"].get("custom_machine")  # set when this section was run on its own
    where = f"\n\nThis section measured on its own: {m['cpu']}, {m['threads']} threads, {m['date']}." if m else ""
    return table(["cell", "size", "rnnkit path", "naive loop chars/s", "rnnkit chars/s", "speed-up",
                  "rnnkit GFLOP/s", "nn.LSTM GFLOP/s", "GFLOP/s vs nn.LSTM (target >= 0.6)"], out) + where


def sampling(r: dict) -> str:
    s = r.get("speed", {}).get("sample")
    if not s:
        return "_not measured yet_"
    out = []
    for batch in (1, 64):
        row = s[f"batch_{batch}"]
        ratio = row["rnnkit"] / row["naive_onednn"]
        target = f"{ratio:.1f}x ({verdict(ratio >= 3)})" if batch == 1 else f"{ratio:.1f}x"
        out.append([batch, row["naive_onednn"], row["naive_native"], row["rnnkit"], target,
                    f"{row['rnnkit'] / row['naive_native']:.1f}x"])
    text = table(["batch", "naive loop, oneDNN (PyTorch default) chars/s", "naive loop, oneDNN off",
                  "rnnkit chars/s", "rnnkit / naive default (batch 1: >= 3)", "rnnkit / naive oneDNN off"], out)
    ratio = s["batch_64_vs_batch_1"]
    return text + f"\n\nBatch 64 aggregate / batch 1: **{ratio}x** (target >= 20: {verdict(ratio >= 20)})."


def deploy(r: dict) -> str:
    d = r.get("speed", {}).get("deploy")
    if not d:
        return "_not measured yet_"
    us, speedup, agree = d["us_per_step"], d["speedup"], d["top1_agreement"]
    rows = [["rnnkit float (`Generator`)", us["float"], "1.00x", "(itself)"],
            ["int8 weights (`rnnkit sample --int8`)", us["int8"], f"{speedup['int8']:.2f}x ({verdict(speedup['int8'] >= 2)})",
             f"{agree['int8']:.4f} ({verdict(agree['int8'] >= 0.995)})"],
            ["ONNX step in onnxruntime (`rnnkit export --onnx`)", us["onnx"],
             f"{speedup['onnx']:.2f}x ({verdict(speedup['onnx'] >= 2)})", f"{agree['onnx']:.4f} ({verdict(agree['onnx'] >= 0.995)})"]]
    return table(["batch-1 generation step", "us per step", "speed-up (target >= 2x)",
                  f"top-1 next character = float's, {d['positions']:,} validation positions (target >= 0.995)"], rows) + \
        f"\n\nModel: 2 x {d['hidden']} LSTM trained 300 s on tiny Shakespeare (held-out {d['val_nats']} nats/char)."


def time_to_quality(r: dict) -> str:
    rows = r.get("time_to_quality", {})
    if not rows:
        return "_not measured yet: `make bench` (full run) measures it_"
    goals = {130.0: 1.45, 600.0: 1.40}  # tiny Shakespeare, val-file protocol
    out = []
    for key, row in sorted(rows.items(), key=lambda kv: (kv[0].startswith("python"), kv[1]["time_budget_s"],
                                                         kv[1]["protocol"])):
        corpus = "Python (1.1 MB)" if key.startswith("python") else "tiny Shakespeare"
        goal = goals.get(row["time_budget_s"]) if corpus == "tiny Shakespeare" and row["protocol"] == "val-file" else None
        mc, plain = row["model"], row.get("plain_loop")
        # a precision the defaults chose (not in the row's flags) is named too
        chosen_bf16 = row.get("train", {}).get("autocast", "off") != "off" and "--autocast" not in row.get("flags", "")
        model = f"{mc['cell']} {mc['num_layers']} x {mc['hidden_size']}" + (" bf16" if chosen_bf16 else "")
        out.append([corpus, f"{row['time_budget_s']:g} s", row["protocol"],
                    model + (f" `{row['flags']}`" if row.get("flags") else ""),
                    row["steps"], row["val_nats_per_char"], row.get("dynamic_val_nats_per_char", ""),
                    f"<= {goal} ({verdict(row['val_nats_per_char'] <= goal)})" if goal else "",
                    f"{plain['val_nats_per_char']} ({plain['steps']} steps)" if plain else "not run",
                    f"{row['plain_over_rnnkit']:.3f}" if plain else "", row.get("date", "before 2026-12-01")])
    return table(["corpus", "budget", "protocol", "model", "steps", "val nats/char", "dynamic eval", "goal",
                  "plain PyTorch loop, same budget", "plain / rnnkit", "measured"], out)


def scale(r: dict) -> str:
    rows = r.get("speed", {}).get("scale")
    if not rows:
        return "_not measured yet_"
    out = [[row["megabytes"], row["scan_mb_per_s"], row["encode_mb_per_s"], row["preprocess_mb_per_s"],
            row["preprocess_peak_rss_mb"], row["train_20_steps_peak_rss_mb"], row["train_20_steps_wall_s"]] for row in rows]
    growth = rows[-1]["train_20_steps_peak_rss_mb"] / rows[0]["train_20_steps_peak_rss_mb"]
    size_growth = rows[-1]["megabytes"] / rows[0]["megabytes"]
    return table(["corpus MB", "scan MB/s", "encode MB/s", "preprocess MB/s (both passes)", "encode peak RSS MB",
                  "`rnnkit train` peak RSS MB", "`rnnkit train --max-steps 20` wall s"], out) + (
        f"\n\nCorpus {size_growth:.0f}x larger, peak RSS x{growth:.2f} ({verdict(growth < 1.1)}: flat).")


def sweep(r: dict) -> str:
    rows = r.get("sweep")
    if not rows:
        return "_not measured yet: `make sweep`_"
    out = [[row["budget_s"], row["name"], row["args"], row["steps"], row["val_nats_per_char"]]
           for row in sorted(rows.values(), key=lambda row: (row["budget_s"], row["val_nats_per_char"]))]
    return table(["budget s", "setting", "flags", "steps", "val nats/char"], out)


def ddp(r: dict) -> str:
    d = r.get("speed", {}).get("ddp")
    if not d:
        return "_not measured yet_"
    out = [[row["processes"], row["threads_per_process"], row["chars_per_s"], row["final_train_loss"]] for row in d["runs"]]
    return table(["processes", "threads each", "chars/s (all ranks)", "train loss at the end"], out)


SECTIONS = {"machine": machine, "training": training, "custom": custom, "sampling": sampling, "deploy": deploy,
            "time-to-quality": time_to_quality, "scale": scale, "sweep": sweep, "ddp": ddp}


def main() -> None:
    if not RESULTS.exists():
        sys.exit(f"report.py: {RESULTS} not found; run `make bench` first")
    results = json.loads(RESULTS.read_text())
    text = DOC.read_text()
    for name, render in SECTIONS.items():
        pattern = re.compile(rf"(<!-- bench:{name} -->\n)(?:.*?\n)?(<!-- /bench:{name} -->)", re.S)
        if not pattern.search(text):
            sys.exit(f"report.py: {DOC} has no <!-- bench:{name} --> section")
        text = pattern.sub(lambda m: m.group(1) + render(results) + "\n" + m.group(2), text)
    DOC.write_text(text)
    print(f"wrote {DOC.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
