"""`rnnkit anomaly` (train | score | explain): anomalies in numeric series from CSV files, over RNNAnomalyDetector.

    rnnkit anomaly train normal.csv --time-col time --value-col load --out runs/load
    rnnkit anomaly score runs/load new.csv > scored.csv
    rnnkit anomaly score runs/load stream.csv --online --plot flags.png > scored.csv
    rnnkit anomaly explain runs/load new.csv --at 2024-03-01T10:00 --out why.png

`score` writes the input rows (after the training run's --fill) to stdout as CSV with two more
columns: `score` (higher = more anomalous: how rare the step's error is against the errors before
it, in powers of ten) and `anomaly` (1 where the score exceeds the threshold chosen at training).
"""

from __future__ import annotations

import argparse
import csv
import sys

import numpy as np

from ..config import CHOICES
from ..errors import UsageError
from ..extras import require
from .flags import add_config_flags, config_values
from .forecast import _fit_errors, _load, _shown_times, _value_cols, add_series_flags
from .tasks import _check_new_out

NOT_FLAGS = ("verbose", "transform", "deseasonalize", "calibrate")  # forecasting settings the detector refuses
RENAME = {"random_state": "seed", "max_time": "time"}


def add_commands(sub, parser_class) -> dict:
    from ..anomaly.configs import AnomalyConfig
    p = sub.add_parser("anomaly", help="find anomalies in numeric series from a CSV file (train, score, explain)",
                       description="Anomaly detection with a recurrent network trained on normal data: every step's "
                       "error (how badly an encoder-decoder rebuilds it, or how far a forecaster missed it) is judged "
                       "against the errors before it, and steps whose score exceeds a threshold chosen on held-out "
                       "normal data are flagged.")
    actions = p.add_subparsers(dest="action", required=True, parser_class=parser_class, metavar="ACTION")

    t = actions.add_parser("train", help="train on the (normal) series of DATA.csv; the model goes to --out",
                           description="Train the detector on the series of DATA.csv, taken as normal. The last "
                           "--validation-fraction of each series is held out: the threshold is the (1 - "
                           "--contamination) quantile of its scores, and at least -log10(--contamination).")
    add_series_flags(t)
    t.add_argument("--out", required=True, metavar="DIR", help="where to save the model (a new directory)")
    t.add_argument("--quiet", action="store_true", help="print nothing while training; errors still show")
    t.set_defaults(flags=add_config_flags(t, AnomalyConfig, NOT_FLAGS, RENAME))

    s = actions.add_parser("score", help="score every step of DATA.csv; CSV to stdout",
                           description="Score every step of the series in DATA.csv (read with the training run's "
                           "columns, frequency and fill) and flag those above the threshold. The first steps of "
                           "each series score 0 until enough errors exist to compare with.")
    s.add_argument("model_dir", metavar="DIR", help="directory written by `rnnkit anomaly train`")
    s.add_argument("data", metavar="DATA.csv")
    s.add_argument("--online", action="store_true", help="score as a stream: the network keeps learning, every "
                   "--update-every steps of the model, from everything before the step it scores (the saved "
                   "model is not changed)")
    s.add_argument("--start", type=int, default=0, metavar="N", help="with --online: the first N steps of each "
                   "series are scored by the saved network without learning (default 0)")
    s.add_argument("--plot", metavar="OUT.png", help="draw the values, the expected one-step band, the flags and "
                   "the score of up to 3 series")
    s.add_argument("--force", action="store_true", help="replace an existing --plot file that rnnkit did not write")
    s.add_argument("--device", choices=CHOICES["device"], default="auto",
                   help="where the model runs: auto = cuda when PyTorch sees a GPU (default auto)")

    e = actions.add_parser("explain", help="why one step was flagged: its expected range and the past steps "
                           "that set it (PNG, and the top steps on stdout)",
                           description="For the step at --at of one series in DATA.csv: the value the network "
                           "expected there and its 99% range against the value that came (on stderr), a PNG of the "
                           "context, the expectation and each past step's gradient x input, and the most "
                           "influential past steps as CSV on stdout.")
    e.add_argument("model_dir", metavar="DIR", help="directory written by `rnnkit anomaly train`")
    e.add_argument("data", metavar="DATA.csv")
    e.add_argument("--at", required=True, metavar="TIME", help="the step to explain, as written in the time column")
    e.add_argument("--series", metavar="ID", help="the id of the series (default: the first)")
    e.add_argument("--out", required=True, metavar="OUT.png", help="where to draw the figure")
    e.add_argument("--force", action="store_true", help="replace an existing OUT.png that rnnkit did not write")
    e.add_argument("--top", type=int, default=5, metavar="N", help="most influential past steps to print (default 5)")
    e.add_argument("--device", choices=CHOICES["device"], default="auto",
                   help="where the model runs: auto = cuda when PyTorch sees a GPU (default auto)")
    return {"anomaly": run}


def run(args: argparse.Namespace) -> int:
    require(("pandas",), "anomaly", f"rnnkit anomaly {args.action}")
    return {"train": _train, "score": _score, "explain": _explain}[args.action](args)


def _train(args: argparse.Namespace) -> int:
    from .. import checkpoint
    from ..anomaly import RNNAnomalyDetector
    from ..timeseries.data import read_panel
    model = RNNAnomalyDetector(**config_values(args, args.flags), verbose=0 if args.quiet else 1)
    model.config()  # bad settings are reported before any work
    out = _check_new_out(args.out)
    panel = read_panel(args.data, args.time_col, _value_cols(args), args.id_col, args.fill, args.freq)
    with _fit_errors(args.data):
        model.fit(panel)
    model.save(out)
    checkpoint.update_meta(out, time_col=panel.time_col, value_cols=panel.value_cols, id_col=panel.id_col,
                           fill=args.fill, freq=panel.freq, history=model.history_)
    if not args.quiet:
        _note_unreachable_threshold(model, panel)
        print(f"trained on {len(panel):,} series ({sum(len(v) for v in panel.values):,} steps, frequency "
              f"{panel.freq}); threshold {model.threshold_:.4g}; saved in {out}", file=sys.stderr)
    return 0


def _note_unreachable_threshold(model, panel) -> None:
    """Say so when the network's scores cannot reach the threshold on data as long as the training
    series: an empirical score is at most log10 of the errors it is ranked against (the training
    errors kept and the series' earlier ones), so a short series, or few blocks, never flags."""
    if model.tail_in_use() != "empirical":
        return
    values = max(len(v) for v in panel.values) // model.block_  # what the network reads of the longest series
    largest = float(np.log10(len(model.reference_) + values))
    if model.threshold_ >= largest:
        print(f"note: on a series of {values:,} values the network's largest possible score is {largest:.3g}, not "
              f"above the threshold {model.threshold_:.3g}, so only range breaks will flag; raise --contamination "
              "or train on more data", file=sys.stderr)


def _score(args: argparse.Namespace) -> int:
    from .. import outputs
    from ..anomaly import RNNAnomalyDetector
    from ..api import resolve_device
    claimed = outputs.claim([args.plot], args.force, "--plot") if args.plot else []
    if args.start < 0:
        raise UsageError(f"--start must be >= 0 (got {args.start})")
    model, panel, s = _load(args.model_dir, args.data, RNNAnomalyDetector, "anomaly")
    model.model_.to(resolve_device(args.device))
    with _fit_errors(args.data):
        scores = model.score_samples(panel, online=args.online, start=args.start)  # a Panel: a list back
    writer = csv.writer(sys.stdout, lineterminator="\n")
    writer.writerow(([s["id_col"]] if s["id_col"] else []) + [s["time_col"], *s["value_cols"], "score", "anomaly"])
    for i in range(len(panel)):
        shown = _shown_times(list(panel.times[i]))
        key = [panel.ids[i]] if s["id_col"] else []
        flags = scores[i] > model.threshold_
        for t, when in enumerate(shown):
            writer.writerow(key + [when, *(f"{v:.10g}" for v in panel.values[i][t]), f"{scores[i][t]:.4f}",
                                   int(flags[t])])
    flagged = int(sum((x > model.threshold_).sum() for x in scores))
    print(f"{flagged:,} of {sum(len(x) for x in scores):,} steps flagged (threshold {model.threshold_:.4g})",
          file=sys.stderr)
    if claimed:
        from ..anomaly.figures import anomaly_figure
        level = 0.99
        figure = anomaly_figure(panel, scores, model.expected(panel, level), model.threshold_, level, model.block_)
        outputs.write(claimed[0], outputs.png(figure))
        print(f"figure written to {claimed[0]}", file=sys.stderr)
    return 0


def _step_index(panel, i: int, text: str) -> int:
    """The index in series i of the time written `text`."""
    import pandas as pd
    times = panel.times[i]
    try:
        when = int(text) if panel.integer_time else pd.Timestamp(text)
        found = np.flatnonzero(np.asarray(times == when))
    except (ValueError, TypeError):
        raise UsageError(f"--at {text!r} is not a {'whole number' if panel.integer_time else 'date/time'} like the "
                         "series' times") from None
    if len(found) == 0:
        raise UsageError(f"--at {text!r} is not a time of the series (it runs from {_shown_times([times[0]])[0]} "
                         f"to {_shown_times([times[-1]])[0]})")
    return int(found[0])


def _explain(args: argparse.Namespace) -> int:
    from .. import outputs
    from ..anomaly import RNNAnomalyDetector
    from ..anomaly.figures import flag_figure
    from ..api import resolve_device
    claimed = outputs.claim([args.out], args.force)
    if args.top < 0:
        raise UsageError(f"--top must be >= 0 (got {args.top})")
    model, panel, s = _load(args.model_dir, args.data, RNNAnomalyDetector, "anomaly")
    model.model_.to(resolve_device(args.device))
    if args.series is not None and args.series not in panel.ids:
        raise UsageError(f"{args.data} has no series {args.series!r}" + (f" in column {s['id_col']!r}" if s["id_col"]
                         else " (the model has no id column)"))
    i = panel.ids.index(args.series) if args.series is not None else 0
    t = _step_index(panel, i, args.at)
    B = model.block_
    if t % B != B - 1:  # a model on block means scores, and explains, a block at its last step
        end = t // B * B + B - 1
        where = f"at {_shown_times([panel.times[i][end]])[0]}" if end < len(panel.times[i]) else \
            "after the end of the series (the last steps are not yet a whole block)"
        raise UsageError(f"--at {args.at}: the model reads means of {B} steps and explains a block at its last step; "
                         f"this step's block ends {where}")
    values, level = panel.values[i], 0.99
    with _fit_errors(args.data):
        one = panel.subset([i])  # a Panel: seasonal models keep the calendar, reconstruction its scaling
        scores = model.score_samples(one)[0]
        why = model.explain_step(one, t, level)
    expected, low, high, came = why["expected"][0], why["low"][0], why["high"][0], why["value"][0]
    steps, contribution = why["steps"], why["contribution"]
    blocks = model.block_ > 1  # a block model explains the mean of the block that ends at the step
    value_name = f"the mean of {model.block_} steps" if blocks else "value"
    shown = _shown_times(list(panel.times[i][steps[0]:t + 1]))
    name = f"{panel.ids[i]}: " if s["id_col"] else ""
    verdict = "flagged" if scores[t] > model.threshold_ else "not flagged"
    what = "rebuilt" if model.method == "reconstruction" else "expected"
    came_label = f"mean of the last {model.block_} steps" if blocks else "what came"
    title = f"{name}{shown[-1]}: {what} {expected:.4g} ({low:.4g} .. {high:.4g}), " + \
        (f"{came_label} {came:.4g}" if blocks else f"came {came:.4g}")
    read = steps[steps < t]  # the history drawn: the steps before t
    figure = flag_figure(np.asarray(panel.times[i])[read], values[read], panel.times[i][t], came,
                         expected, low, high, contribution[:len(read)], level, title, came_label)
    outputs.write(claimed[0], outputs.png(figure))
    influence = contribution.sum(axis=1)
    total = np.abs(influence).sum() or 1.0
    print("time,value,gradient_x_input,share_of_influence")
    for k in np.argsort(-np.abs(influence))[:args.top]:
        print(f"{shown[k]},{values[steps[k], 0]:.6g},{influence[k]:.4g},{abs(influence[k]) / total:.3f}")
    side = "inside" if low <= came <= high else ("above" if came > high else "below")
    print(f"{shown[-1]}: {value_name} {came:.6g} is {side} the expected {level:.0%} range {low:.6g} .. {high:.6g} "
          f"({what} {expected:.6g}); score {scores[t]:.3f}, threshold {model.threshold_:.3f}: {verdict}",
          file=sys.stderr)
    print(f"figure written to {claimed[0]}", file=sys.stderr)
    return 0
