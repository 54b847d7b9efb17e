"""Score any anomaly detector on the Numenta Anomaly Benchmark with NAB's rules
(rnnkit.anomaly.nab), reading the corpus from ../shared/data/nab (or --nab DIR).

    python bench/nab.py --scores FILE.csv.gz     # columns file,timestamp,anomaly_score
    python bench/nab.py --check                  # the Numenta HTM detector's published scores

prints one JSON object: {"standard": ..., "reward_low_FP_rate": ..., "reward_low_FN_rate": ...}
(normalised scores, each at the threshold that maximises it, as NAB chooses; --verbose adds the
thresholds and raw totals on stderr). --check first proves the scorer: it scores the raw scores
of Numenta's detector and fails unless all three profiles match the published board to 0.01.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from rnnkit.anomaly.nab import PROFILES, LabelledStream, nab_score  # noqa: E402

DEFAULT_NAB = Path(__file__).resolve().parents[2] / "shared" / "data" / "nab"


def load_corpus(root: Path = DEFAULT_NAB) -> dict[str, tuple[pd.DataFrame, LabelledStream]]:
    """{relative file name: (its rows: timestamp, value; its LabelledStream)} for the 58 streams."""
    if not (root / "labels" / "combined_windows.json").is_file():
        sys.exit(f"error: no NAB corpus at {root} (expected labels/combined_windows.json); give --nab DIR")
    windows = json.loads((root / "labels" / "combined_windows.json").read_text())
    corpus = {}
    for name in sorted(windows):
        frame = pd.read_csv(root / "data" / name, parse_dates=["timestamp"])
        times = frame["timestamp"].to_numpy()
        bounds = []
        for start, end in windows[name]:
            a = int(np.searchsorted(times, np.datetime64(pd.Timestamp(start)), side="left"))
            b = int(np.searchsorted(times, np.datetime64(pd.Timestamp(end)), side="right")) - 1
            bounds.append((a, b))
        corpus[name] = (frame, LabelledStream(len(frame), tuple(bounds)))
    return corpus


def read_scores(path: Path, corpus) -> dict[str, np.ndarray]:
    """Per-file anomaly scores from a CSV (file,timestamp,anomaly_score), checked row by row
    against the corpus' timestamps."""
    table = pd.read_csv(path, parse_dates=["timestamp"])
    missing = {"file", "timestamp", "anomaly_score"} - set(table.columns)
    if missing:
        sys.exit(f"error: {path} lacks the column(s) {', '.join(sorted(missing))}")
    out = {}
    for name, (frame, _) in corpus.items():
        rows = table[table["file"] == name]
        if len(rows) != len(frame) or not (rows["timestamp"].to_numpy() == frame["timestamp"].to_numpy()).all():
            sys.exit(f"error: {path} does not hold one score for every row of {name}, in order")
        out[name] = rows["anomaly_score"].to_numpy(dtype=np.float64)
    return out


def score_all(corpus, scores: dict[str, np.ndarray], verbose: bool = False) -> dict[str, float]:
    """The normalised score of each profile at its best threshold."""
    streams = [corpus[name][1] for name in corpus]
    columns = [scores[name] for name in corpus]
    out = {}
    for profile in PROFILES:
        result = nab_score(streams, columns, profile)
        out[profile] = round(result.score, 4)
        if verbose:
            print(f"{profile}: score {result.score:.4f} (raw {result.raw:.4f}, threshold {result.threshold:.6g}, "
                  f"null {result.null}, perfect {result.perfect})", file=sys.stderr)
    return out


def check(root: Path) -> dict[str, float]:
    """Score Numenta HTM's published raw scores at its published thresholds; exit 1 unless each
    profile matches the board to 0.01. (At the best threshold the sweep finds, standard and
    reward_low_FN_rate are the same; reward_low_FP_rate comes out higher, 63.21: the published
    threshold for that profile was not the best one.)"""
    corpus = load_corpus(root)
    scores = read_scores(root / "results" / "numenta_scores.csv.gz", corpus)
    streams, columns = [corpus[name][1] for name in corpus], [scores[name] for name in corpus]
    published = json.loads((root / "results" / "final_results.json").read_text())["numenta"]
    thresholds = json.loads((root / "config" / "thresholds.json").read_text())["numenta"]
    got = {}
    for profile in PROFILES:
        got[profile] = round(nab_score(streams, columns, profile, thresholds[profile]["threshold"]).score, 4)
        if abs(got[profile] - published[profile]) > 0.01:
            sys.exit(f"error: the scorer gives {got[profile]:.4f} for Numenta HTM ({profile}); NAB published "
                     f"{published[profile]:.4f}")
    best = nab_score(streams, columns, "standard").score
    if abs(best - published["standard"]) > 0.01:
        sys.exit(f"error: the best standard threshold gives {best:.4f} for Numenta HTM; NAB published "
                 f"{published['standard']:.4f}")
    return got


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scores", type=Path, help="CSV (gzip allowed) with file,timestamp,anomaly_score")
    parser.add_argument("--check", action="store_true", help="reproduce Numenta HTM's published scores")
    parser.add_argument("--nab", type=Path, default=DEFAULT_NAB, help="the NAB corpus (default ../shared/data/nab)")
    parser.add_argument("--verbose", action="store_true")
    args = parser.parse_args()
    if args.check == bool(args.scores):
        parser.error("give --scores FILE or --check")
    if args.check:
        print(json.dumps(check(args.nab)))
        return
    corpus = load_corpus(args.nab)
    print(json.dumps(score_all(corpus, read_scores(args.scores, corpus), args.verbose)))


if __name__ == "__main__":
    main()
