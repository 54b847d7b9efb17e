"""Two trainings on one machine at once: how PyTorch's thread pools share the cores, side by side
in one run.

A training process starts one compute thread per core (PyTorch's default). Two such processes,
or one beside any other busy process, ask for more threads than there are cores, and a pool whose
threads must meet after every operation then waits for a thread the system has paused. Each job
here runs training steps (forward and backward) of a one-layer rnnkit LSTM, 256 units over 128
steps, batch 64 (a language model's chunk), for --seconds, all of a case's jobs over the same
seconds, with its thread count set as `OMP_NUM_THREADS=N rnnkit ...` sets it. Cases: one job with
all the machine's threads, one job with half of them, then two jobs at once: all threads each
(two default trainings), all threads beside a job with half, and half each. Reports each job's
steps per second and their sum. Writes bench/results.json ("shared_cpu") and the table in
docs/performance.md.

usage: python bench/shared_cpu.py [--seconds 15] [--no-write]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from store import ROOT, publish  # noqa: E402

HIDDEN, STEPS, BATCH = 256, 128, 64
START_AFTER = 10.0  # seconds for every job of a case to import PyTorch and warm up before they start together


def worker(threads: int, seconds: float, start_at: float) -> None:
    """One job: training steps from `start_at` (a time.time()) for `seconds`; prints its steps per second."""
    import torch

    from rnnkit.recurrent import Recurrent
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    layer = Recurrent("lstm", HIDDEN, HIDDEN)
    x = torch.randn(BATCH, STEPS, HIDDEN)

    def step() -> None:
        layer(x)[0].sum().backward()
        layer.zero_grad(set_to_none=True)

    for _ in range(3):
        step()
    time.sleep(max(0.0, start_at - time.time()))
    began, steps = time.perf_counter(), 0
    while time.perf_counter() - began < seconds:
        step()
        steps += 1
    print(json.dumps({"threads": threads, "steps_per_s": steps / (time.perf_counter() - began)}))


def run_case(thread_counts: list[int], seconds: float) -> list[float]:
    """Steps per second of each job of one case, all of them started over the same seconds."""
    start_at = time.time() + START_AFTER
    jobs = [subprocess.Popen([sys.executable, __file__, "--worker", str(n), str(seconds), str(start_at)],
                             stdout=subprocess.PIPE, text=True, env={**os.environ, "OMP_NUM_THREADS": str(n)})
            for n in thread_counts]
    outputs = [job.communicate()[0] for job in jobs]
    if any(job.returncode for job in jobs):
        sys.exit("bench/shared_cpu.py: a job failed; see its error above")
    return [json.loads(out.strip().splitlines()[-1])["steps_per_s"] for out in outputs]


def main() -> None:
    if len(sys.argv) == 5 and sys.argv[1] == "--worker":
        worker(int(sys.argv[2]), float(sys.argv[3]), float(sys.argv[4]))
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=15.0)
    parser.add_argument("--no-write", action="store_true", help="print the table only")
    args = parser.parse_args()
    cores = len(os.sched_getaffinity(0))
    half = max(1, cores // 2)
    cases = {"one job, all threads": [cores], "one job, half the threads": [half],
             "two jobs, all threads each": [cores, cores], "two jobs, all threads beside half": [cores, half],
             "two jobs, half the threads each": [half, half]}
    rows = {}
    for name, counts in cases.items():
        rates = run_case(counts, args.seconds)
        rows[name] = {"threads": counts, "steps_per_s": [round(r, 1) for r in rates], "total": round(sum(rates), 1)}
        print(name, rows[name], flush=True)
    alone = rows["one job, all threads"]["total"]
    lines = ["| case | threads per job | steps/s per job | steps/s in all | against one job alone |",
             "|---|---|---|---|---|"]
    lines += [f"| {name} | {' + '.join(map(str, r['threads']))} | {' + '.join(map(str, r['steps_per_s']))} | "
              f"{r['total']} | {r['total'] / alone:.2f}x |" for name, r in rows.items()]
    table = "\n".join(lines) + (f"\n\n{cores} cores; training steps of a 1 x {HIDDEN} LSTM, {STEPS} steps, batch "
                                f"{BATCH}, {args.seconds:g} s per case; command: `python bench/shared_cpu.py`")
    publish("shared_cpu", {"cores": cores, **rows}, table, ROOT / "docs" / "performance.md",
            write=not args.no_write)


if __name__ == "__main__":
    main()
