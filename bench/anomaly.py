"""Anomaly-detection benchmark: RNNAnomalyDetector beside the baselines of
rnnkit.anomaly.baselines, in the same run.

Both of rnnkit's methods run: reconstruction (the default) and prediction; on NAB also
reconstruction with quiet_steps=1000 (alerts: a score counts only when it tops the scores of the
1,000 steps before it), on the labelled sets also an echo state autoencoder (cell esn, 512 units).
On NAB rnnkit's reconstruction runs three ways: an ensemble of five networks on hourly means with
records scored by how far they top the last one (networks=5, block_steps=12: NAB's streams are
mostly 5-minute data; tail_index=2; the rows rnnkit and rnnkit_alerts), the same with one network
(rnnkit_one_alerts: what the ensemble adds, in the same run), and with the library's defaults,
step by step (rnnkit_steps, rnnkit_steps_alerts).

1. The Numenta Anomaly Benchmark (../shared/data/nab, scored by bench/nab.py's rules): every
   stream scored online. Each detector learns from the probationary period (NAB's first 15%) and
   from then on scores each step from the past only; rnnkit's network keeps learning every
   `update_every` steps. The three profiles, beside the published board.
2. Labelled series from packages (see ../shared/docs/data.md): MIT-BIH ECG (sktime), the UCR
   anomaly archive's #135 (aeon), GutenTAG's synthetic ECG (aeon): ROC-AUC, PR-AUC, best F1 and
   point-adjusted F1; on #135 whether the highest score lies in the labelled anomaly.
3. Speed: seconds to score one million points (offline, the fitted network), by each method and
   with NAB's setting (five networks on hourly means).

usage: python bench/anomaly.py [--workers 2] [--files N] [--no-write] [--skip-nab] [--nab-only]
                               [--detectors rnnkit ...] [--set context_length=64 ...]
Writes bench/results.json["nab"] and ["anomaly"] and the tables in docs/anomaly.md. A trial (some
streams, some detectors, or rnnkit's NAB detectors with other settings) prints its table only:
    python bench/anomaly.py --nab-only --detectors rnnkit rnnkit_alerts --set context_length=64
    python bench/anomaly.py --nab-only --detectors rnnkit rnnkit_alerts --block-steps 10
"""

from __future__ import annotations

import argparse
import gzip
import importlib.util
import json
import sys
import time
from multiprocessing import Pool
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from nab import DEFAULT_NAB, load_corpus  # noqa: E402
from rnnkit.anomaly import RNNAnomalyDetector, baselines  # noqa: E402
from rnnkit.anomaly import metrics as M  # noqa: E402
from rnnkit.anomaly.nab import PROFILES, nab_score  # noqa: E402
from store import publish  # noqa: E402

DOC = ROOT / "docs" / "anomaly.md"
# settings for streams: the detector learns only from the probationary period before scoring
STREAM = dict(validation_fraction=0.0, early_stopping=False)
ALERTS = dict(quiet_steps=1000)  # rnnkit's alerting setting: a score counts when it tops the last 1,000 steps' scores
ESN = dict(cell="esn", hidden_size=512)  # an echo state autoencoder, fitted in closed form (labelled sets only)
BLOCK_STEPS = 12  # NAB: the network reads hourly means of the 5-minute streams (fewer steps for short streams)
TAIL_INDEX = 2.0  # NAB: a record error scores more the further it tops the last record (a power-law tail)
NETWORKS = 5  # NAB: an ensemble of five networks (seeds 0-4): a step's error is the root mean square of theirs
DETECTORS = ("rnnkit_alerts", "rnnkit", "rnnkit_one_alerts", "rnnkit_steps_alerts", "rnnkit_steps",
             "rnnkit_prediction", "sliding_gaussian", "rolling_zscore", "level_novelty", "isolation_forest",
             "matrix_profile")
PUBLISHED = ("ARTime", "numenta", "contextOSE", "earthgeckoSkyline", "knncad", "relativeEntropy",
             "randomCutForest", "windowedGaussian", "random")


def score_stream(args) -> tuple[str, dict[str, np.ndarray] | str, dict[str, float]]:
    """Every detector's scores for one NAB stream and the seconds each took, or the error that
    stopped a detector as text: a worker that exits (SystemExit from a missing package, say) would
    leave the pool waiting for its result for ever."""
    try:
        return _score_stream(args)
    except (Exception, SystemExit) as error:
        return args[0], f"{type(error).__name__}: {error}", {}


def _score_stream(args) -> tuple[str, dict[str, np.ndarray], dict[str, float]]:
    import torch
    torch.set_num_threads(1)
    name, values, probation, detectors, settings, block = args
    out, seconds = {}, {}

    def online(chosen: dict) -> np.ndarray:  # learns the probationary period, then scores online
        detector = RNNAnomalyDetector(**{**STREAM, **chosen, **settings}).fit(values[:probation])
        return detector.score_samples(values, online=True, start=probation)

    runs = {
        "rnnkit_alerts": lambda: online({**ALERTS, "block_steps": block, "tail_index": TAIL_INDEX,
                                         "networks": NETWORKS}),
        "rnnkit": lambda: online({"block_steps": block, "tail_index": TAIL_INDEX, "networks": NETWORKS}),
        "rnnkit_one_alerts": lambda: online({**ALERTS, "block_steps": block, "tail_index": TAIL_INDEX}),
        "rnnkit_steps_alerts": lambda: online(ALERTS),
        "rnnkit_steps": lambda: online({}),
        "rnnkit_prediction": lambda: online({"method": "prediction"}),
        "sliding_gaussian": lambda: baselines.sliding_gaussian(values, 6400),
        "rolling_zscore": lambda: baselines.rolling_zscore(values, 100),
        "level_novelty": lambda: baselines.level_novelty(values, train=probation),
        "isolation_forest": lambda: baselines.isolation_forest(values, 16, train=probation),
        "matrix_profile": lambda: baselines.matrix_profile(values, 32, online=True),
    }
    for detector in detectors:
        run = runs[detector]
        start = time.perf_counter()
        out[detector] = run()
        seconds[detector] = time.perf_counter() - start
    return name, out, seconds


def nab_benchmark(workers: int, files: int | None, scores_out: Path, detectors: tuple[str, ...] = DETECTORS,
                  settings: dict | None = None, block: int = BLOCK_STEPS) -> dict:
    """NAB scores of `detectors` (rnnkit's with `settings` on top of the benchmark's; rnnkit and
    rnnkit_alerts on blocks of up to `block` steps, with TAIL_INDEX), seconds each."""
    corpus = load_corpus(DEFAULT_NAB)
    names = list(corpus)[:files] if files else list(corpus)
    if not any(corpus[n][1].windows for n in names):
        sys.exit(f"anomaly.py: the first {len(names)} NAB streams hold no anomaly windows, so NAB cannot score "
                 "them; use --files 6 or more")
    jobs = [(n, corpus[n][0]["value"].to_numpy(np.float64), corpus[n][1].probation(), detectors, settings or {},
             block) for n in names]
    scores: dict[str, dict[str, np.ndarray]] = {d: {} for d in detectors}
    seconds = dict.fromkeys(detectors, 0.0)
    failed = None
    with Pool(workers) as pool:  # leaving the block terminates the workers
        for done, (name, out, took) in enumerate(pool.imap_unordered(score_stream, jobs), 1):
            if isinstance(out, str):  # exiting inside the block left the pool's threads waiting for ever
                failed = f"anomaly.py: {name}: {out}"
                break
            for d in detectors:
                scores[d][name], seconds[d] = out[d], seconds[d] + took[d]
            print(f"[{done}/{len(jobs)}] {name}", file=sys.stderr, flush=True)
    if failed:
        sys.exit(failed)
    if "rnnkit_alerts" in detectors:
        with gzip.open(scores_out, "wt") as f:  # rnnkit's scores, for `python bench/nab.py --scores`
            f.write("file,timestamp,anomaly_score\n")
            for name in names:
                frame = corpus[name][0]
                for when, s in zip(frame["timestamp"].astype(str), scores["rnnkit_alerts"][name]):
                    f.write(f"{name},{when},{s:.6f}\n")
    streams = [corpus[n][1] for n in names]
    results = {}
    for d in detectors:
        results[d] = {p: round(nab_score(streams, [scores[d][n] for n in names], p).score, 2) for p in PROFILES}
        results[d]["seconds"] = round(seconds[d], 1)
    board = json.loads((DEFAULT_NAB / "results" / "final_results.json").read_text())
    results["published"] = {k: {p: round(board[k][p], 2) for p in PROFILES} for k in PUBLISHED if k in board}
    results["files"], results["block_steps"], results["networks"] = len(names), block, NETWORKS
    return results


def nab_table(results: dict) -> str:
    block = f"--block-steps {results.get('block_steps', BLOCK_STEPS)} --tail-index {TAIL_INDEX:g}"
    networks = f"--networks {results.get('networks', NETWORKS)}"
    names = {"rnnkit_alerts": f"rnnkit, reconstruction, {networks} {block} --quiet-steps 1000 (this run)",
             "rnnkit": f"rnnkit, reconstruction, {networks} {block} (this run)",
             "rnnkit_one_alerts": f"rnnkit, reconstruction, one network, {block} --quiet-steps 1000 (this run)",
             "rnnkit_steps_alerts": "rnnkit, reconstruction, step by step, --quiet-steps 1000 (this run)",
             "rnnkit_steps": "rnnkit, reconstruction, step by step (this run)",
             "rnnkit_prediction": "rnnkit, prediction (this run)"}
    rows = [(names.get(d, f"{d} (this run)"), results[d]) for d in DETECTORS if d in results]
    rows += [(f"{k} (published)", v) for k, v in results["published"].items()]
    rows.sort(key=lambda r: -r[1]["standard"])
    lines = ["| detector | standard | reward low FP | reward low FN |", "|---|---:|---:|---:|"]
    for label, r in rows:
        bold = "**" if label.startswith("rnnkit") else ""
        lines.append(f"| {bold}{label}{bold} | {r['standard']:.2f} | {r['reward_low_FP_rate']:.2f} | "
                     f"{r['reward_low_FN_rate']:.2f} |")
    return "\n".join(lines)


# ---------------------------------------------------------------------------- labelled series
def _package_file(package: str, relative: str) -> Path | None:
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(list(spec.submodule_search_locations)[0]) / relative
    return path if path.exists() else None


def labelled_sets() -> dict[str, tuple[np.ndarray, np.ndarray, int, np.ndarray]]:
    """{name: (normal training values, the series scored, the first step measured, the labels of
    the steps from it on)} for the sets installed. MIT-BIH and UCR #135 are one recording each whose
    first steps are the normal training part (UCR's TEST file is the whole recording, its TRAIN file
    the first 1,200 steps of it): the recording is scored as it is, and measured whole. GutenTAG's
    normal series and test series are two series: the test series is scored after the normal one,
    so that its first steps have a past, and only its own steps are measured."""
    import pandas as pd
    sets = {}
    mitdb = _package_file("sktime", "datasets/data/mitdb/mitdb.csv")
    if mitdb:
        frame = pd.read_csv(mitdb)
        values, labels = frame.iloc[:, 0].to_numpy(np.float64), frame.iloc[:, 1].to_numpy(np.int64)
        first = int(np.argmax(labels > 0))  # the detector learns from the steps before the first anomaly
        sets["mitdb"] = (values[:first], values, 0, labels)
    kdd = _package_file("aeon", "datasets/data/KDD-TSAD_135")
    if kdd:
        train = pd.read_csv(kdd / "135_UCR_Anomaly_InternalBleeding16_TRAIN.csv")["value"].to_numpy(np.float64)
        test = pd.read_csv(kdd / "135_UCR_Anomaly_InternalBleeding16_TEST.csv")
        values = test["value"].to_numpy(np.float64)
        if not np.array_equal(values[:len(train)], train):
            raise SystemExit("KDD-TSAD_135: the TEST recording no longer starts with the TRAIN steps")
        sets["kdd_135"] = (train, values, 0, test["is_anomaly"].to_numpy(np.int64))
    ecg = _package_file("aeon", "datasets/data/UnitTest")
    if ecg and (ecg / "ecg-diff-count-3_TEST.csv").exists():
        train = pd.read_csv(ecg / "ecg-diff-count-3_TRAIN_NA.csv").iloc[:, 1].to_numpy(np.float64)
        test = pd.read_csv(ecg / "ecg-diff-count-3_TEST.csv")
        sets["gutentag_ecg"] = (train, np.concatenate([train, test.iloc[:, 1].to_numpy(np.float64)]), len(train),
                                test["is_anomaly"].to_numpy(np.int64))
    return sets


def labelled_benchmark() -> dict:
    results = {}
    for name, (train, series, first, labels) in labelled_sets().items():
        rows = {}
        n = len(train)  # the series' first n steps are the training values
        for label, settings in (("rnnkit", {}), ("rnnkit_prediction", dict(method="prediction")),
                                ("rnnkit_esn", ESN)):
            start = time.perf_counter()
            detector = RNNAnomalyDetector(**settings, validation_fraction=0.0, early_stopping=False).fit(train)
            rows[label] = (detector.score_samples(series), time.perf_counter() - start)
        for d, run in {"sliding_gaussian": lambda: baselines.sliding_gaussian(series, 6400),
                       "rolling_zscore": lambda: baselines.rolling_zscore(series, 100),
                       "level_novelty": lambda: baselines.level_novelty(series, train=n),
                       "isolation_forest": lambda: baselines.isolation_forest(series, 16, train=n),
                       "matrix_profile": lambda: baselines.matrix_profile(series, 64, online=False)}.items():
            start = time.perf_counter()
            rows[d] = (run(), time.perf_counter() - start)
        results[name] = {d: {**{k: round(v, 4) for k, v in M.summary(labels, s[first:]).items()},
                             "top_in_anomaly": M.top_in_anomaly(labels, s[first:]), "seconds": round(t, 1)}
                         for d, (s, t) in rows.items()}
        print(name, json.dumps(results[name]), file=sys.stderr, flush=True)
    return results


def labelled_table(results: dict) -> str:
    lines = ["| set | detector | ROC-AUC | PR-AUC | best F1 | point-adjusted F1 | top score in anomaly |",
             "|---|---|---:|---:|---:|---:|---|"]
    for name, rows in results.items():
        if not isinstance(rows, dict) or "rnnkit" not in rows:
            continue
        for d, r in rows.items():
            bold = "**" if d.startswith("rnnkit") else ""
            lines.append(f"| {name} | {bold}{d}{bold} | {r['roc_auc']:.3f} | {r['pr_auc']:.3f} | {r['best_f1']:.3f} | "
                         f"{r['adjusted_f1']:.3f} | {'yes' if r['top_in_anomaly'] else 'no'} |")
    return "\n".join(lines)


def speed() -> dict:
    """Seconds to fit on 5,000 steps (not timed) and score 1,000,000 (timed), offline, by each method."""
    import torch
    torch.set_num_threads(2)
    rng = np.random.default_rng(0)
    t = np.arange(1_000_000)
    values = np.sin(2 * np.pi * t / 96) + 0.1 * rng.standard_normal(len(t))
    out = {"points": len(values)}
    for method in ("reconstruction", "prediction"):
        detector = RNNAnomalyDetector(method=method, validation_fraction=0.0, early_stopping=False,
                                      min_steps=50).fit(values[:5000])
        start = time.perf_counter()
        detector.score_samples(values)
        out[method] = round(time.perf_counter() - start, 1)
    # NAB's setting: five networks reading hourly means (an ensemble costs its size; the blocks save 12 times)
    detector = RNNAnomalyDetector(validation_fraction=0.0, early_stopping=False, min_steps=50, block_steps=BLOCK_STEPS,
                                  tail_index=TAIL_INDEX, networks=NETWORKS, **ALERTS).fit(values[:5000])
    start = time.perf_counter()
    detector.score_samples(values)
    out["nab_setting"] = round(time.perf_counter() - start, 1)
    return out


def parse_setting(item: str) -> tuple[str, object]:
    """"key=value" as (key, value), the value read as an int, a float, true/false or else text."""
    key, sep, text = item.partition("=")
    if not sep or not key:
        raise ValueError(f"expected KEY=VALUE, got {item!r}")
    for read in (int, float):
        try:
            return key, read(text)
        except ValueError:
            pass
    return key, {"true": True, "false": False}.get(text.lower(), text)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--files", type=int, help="only the first N NAB streams (a quick look; not stored)")
    parser.add_argument("--skip-nab", action="store_true")
    parser.add_argument("--scores-out", type=Path, default=Path("/tmp/rnnkit_nab_scores.csv.gz"))
    parser.add_argument("--no-write", action="store_true")
    parser.add_argument("--nab-only", action="store_true", help="leave out the labelled sets and the speed test")
    parser.add_argument("--detectors", nargs="+", choices=DETECTORS, default=list(DETECTORS),
                        help="NAB: only these detectors (a trial; not stored)")
    parser.add_argument("--block-steps", type=int, default=BLOCK_STEPS, help="NAB: the most steps each block "
                        f"mean of rnnkit and rnnkit_alerts covers (default {BLOCK_STEPS}; other values are a trial, "
                        "not stored)")
    parser.add_argument("--set", nargs="+", default=[], metavar="KEY=VALUE",
                        help="NAB: settings of rnnkit's detectors, e.g. context_length=64 (a trial; not stored)")
    args = parser.parse_args()
    try:
        settings = dict(parse_setting(item) for item in args.set)
        RNNAnomalyDetector(**{**STREAM, **settings}).config()  # the detector's own checks, before any work
    except (TypeError, ValueError) as error:  # UsageError is a ValueError
        parser.error(f"--set: {error}")
    if args.block_steps < 1:
        parser.error(f"--block-steps must be at least 1 (got {args.block_steps})")
    write = not args.no_write and not args.files
    trial = bool(settings) or tuple(args.detectors) != DETECTORS or args.block_steps != BLOCK_STEPS
    if not args.skip_nab:
        start = time.perf_counter()
        nab = nab_benchmark(args.workers, args.files, args.scores_out, tuple(args.detectors), settings,
                            args.block_steps)
        nab["wall_seconds"] = round(time.perf_counter() - start, 1)
        publish("nab", nab, nab_table(nab), DOC, write and not trial)
        if "rnnkit_alerts" in args.detectors:
            print(f"rnnkit's scores: {args.scores_out} (python bench/nab.py --scores {args.scores_out})")
    if args.nab_only:
        return
    labelled = labelled_benchmark()
    labelled["speed"] = speed()
    speed_line = (f"Scoring {labelled['speed']['points']:,} points (offline, 2 threads): "
                  f"{labelled['speed']['reconstruction']} s by reconstruction, {labelled['speed']['prediction']} s by "
                  f"prediction, {labelled['speed']['nab_setting']} s with NAB's setting (--networks {NETWORKS} "
                  f"--block-steps {BLOCK_STEPS} --tail-index {TAIL_INDEX:g} --quiet-steps 1000).")
    publish("anomaly", labelled, labelled_table(labelled) + "\n\n" + speed_line, DOC, write)


if __name__ == "__main__":
    main()
