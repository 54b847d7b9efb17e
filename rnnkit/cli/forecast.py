"""`rnnkit forecast` (train | predict | backtest): numeric series from CSV files, over RNNForecaster.

    rnnkit forecast train sales.csv --time-col month --value-col sales --horizon 12 --out runs/sales
    rnnkit forecast predict runs/sales sales.csv --quantiles 0.1,0.5,0.9 > forecast.csv
    rnnkit forecast backtest sales.csv --time-col month --value-col sales --horizon 12 --folds 3

`predict` writes a tidy CSV to stdout: the id column (when the model has one), the time column,
`value` (only with several value columns), `forecast` (the mean) and one `q<level>` column per
quantile. `backtest` prints MASE, sMAPE, RMSE, 80% interval coverage and pinball loss of rnnkit
and of the classical baselines, computed in the same command.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import json
import sys

import numpy as np

from ..config import CHOICES
from ..errors import UsageError
from ..extras import require
from .flags import add_config_flags, config_values
from .tasks import _check_new_out

NOT_FLAGS = ("verbose", "horizon")
RENAME = {"random_state": "seed", "max_time": "time"}
DATA_KEYS = ("time_col", "value_cols", "id_col", "fill", "freq")


def add_series_flags(q: argparse.ArgumentParser) -> None:
    """DATA.csv and how its series are read: the flags every numeric-series command shares."""
    from ..timeseries.data import FILLS
    q.add_argument("data", metavar="DATA.csv")
    q.add_argument("--time-col", required=True, metavar="NAME",
                   help="column with the time: dates/times (ISO 8601, e.g. 2024-01-31) or whole-number steps")
    q.add_argument("--value-col", dest="value_cols", required=True, action="append", metavar="NAME",
                   help="column with the values; repeat it (or give NAME,NAME) for several")
    q.add_argument("--id-col", metavar="NAME", help="column naming the series, for many series in one file "
                   "(one model learns them all)")
    q.add_argument("--fill", choices=FILLS, default="none", help="missing steps (gaps, empty cells, NaN): "
                   "none = an error, interpolate = linear, ffill = the last value (default none)")
    q.add_argument("--freq", metavar="F", help="the series' frequency: a pandas alias (D, h, W, MS, QS, YS) or, "
                   "for whole-number time, the step (default: inferred; an error when it cannot be)")


def add_commands(sub, parser_class) -> dict:
    from ..timeseries.configs import ForecasterConfig
    p = sub.add_parser("forecast", help="forecast numeric series from a CSV file (train, predict, backtest)",
                       description="Probabilistic forecasting of one or many numeric series with one recurrent "
                       "model: train on a CSV file, forecast the steps after its end, or backtest against naive, "
                       "seasonal naive, drift, ETS and ARIMA forecasts in the same command.")
    actions = p.add_subparsers(dest="action", required=True, parser_class=parser_class, metavar="ACTION")

    def data_flags(q: argparse.ArgumentParser) -> None:
        add_series_flags(q)
        q.add_argument("--horizon", type=int, required=True, metavar="H", help="steps to forecast")

    t = actions.add_parser("train", help="train on the series of DATA.csv; the model goes to --out",
                           description="Train one model on every series in DATA.csv, forecasting --horizon steps. "
                           "The last --horizon steps of each series are held out to report validation loss "
                           "per epoch (--validation-fraction 0 trains on them too).")
    data_flags(t)
    t.add_argument("--out", required=True, metavar="DIR", help="where to save the model (a new directory)")
    t.add_argument("--quiet", action="store_true", help="print nothing while training; errors still show")
    t.set_defaults(flags=add_config_flags(t, ForecasterConfig, NOT_FLAGS, RENAME))

    pr = actions.add_parser("predict", help="forecast the steps after the end of each series in DATA.csv; "
                            "CSV to stdout", description="Forecast the model's horizon after the last time of each "
                            "series in DATA.csv (read with the training run's columns, frequency and fill).")
    pr.add_argument("model_dir", metavar="DIR", help="directory written by `rnnkit forecast train`")
    pr.add_argument("data", metavar="DATA.csv")
    pr.add_argument("--quantiles", default="0.1,0.5,0.9", metavar="Q,Q,...",
                    help="quantile levels in (0, 1), one column each (default 0.1,0.5,0.9; '' for none)")
    pr.add_argument("--device", choices=CHOICES["device"], default="auto",
                    help="where the model runs: auto = cuda when PyTorch sees a GPU (default auto)")

    e = actions.add_parser("explain", help="which past steps drove a forecast (PNG, and the top steps on stdout)",
                           description="Gradient x input of the forecast of one series in DATA.csv with respect to "
                           "each past step the network read: a PNG of the context, the forecast and each step's "
                           "push up or down, and the most influential steps on stdout.")
    e.add_argument("model_dir", metavar="DIR", help="directory written by `rnnkit forecast train`")
    e.add_argument("data", metavar="DATA.csv")
    e.add_argument("--series", metavar="ID", help="the id of the series to explain (default: the first)")
    e.add_argument("--step", type=int, metavar="H", help="explain the forecast of future step H only "
                   "(default: all steps summed)")
    e.add_argument("--out", required=True, metavar="OUT.png", help="where to draw the figure")
    e.add_argument("--force", action="store_true", help="replace an existing OUT.png that rnnkit did not write")
    e.add_argument("--top", type=int, default=5, metavar="N", help="most influential steps to print (default 5)")
    e.add_argument("--device", choices=CHOICES["device"], default="auto",
                   help="where the model runs: auto = cuda when PyTorch sees a GPU (default auto)")

    b = actions.add_parser("backtest", help="rolling-origin evaluation of rnnkit and classical baselines",
                           description="Forecast the last --folds x --horizon steps of every series in blocks of "
                           "--horizon, each from the history before it: rnnkit (trained once, on the data before the "
                           "first block) beside naive, seasonal naive, drift, ETS and ARIMA (refitted at every "
                           "block). Prints mean and geometric-mean MASE, sMAPE, RMSE, 80% interval coverage, "
                           "scaled pinball loss and seconds per method.")
    data_flags(b)
    b.add_argument("--folds", type=int, default=1, metavar="N", help="forecast blocks per series (default 1)")
    b.add_argument("--baselines", default="naive,seasonal_naive,drift,ets,arima", metavar="LIST",
                   help="comma-separated baselines to run beside rnnkit ('' for none)")
    b.add_argument("--json", action="store_true", help="print the results as one JSON object instead of a table")
    b.add_argument("--plot", dest="out", metavar="OUT.png", help="draw history, rnnkit's last forecast and its 80%% "
                   "interval, and the actual values, for up to 4 series")
    b.add_argument("--force", action="store_true", help="replace an existing --plot file that rnnkit did not write")
    b.add_argument("--quiet", action="store_true", help="no progress bars")
    b.set_defaults(flags=add_config_flags(b, ForecasterConfig, NOT_FLAGS, RENAME))
    return {"forecast": run}


def run(args: argparse.Namespace) -> int:
    require(("pandas", "statsmodels"), "timeseries", f"rnnkit forecast {args.action}")
    return {"train": _train, "predict": _predict, "explain": _explain, "backtest": _backtest}[args.action](args)


def _value_cols(args: argparse.Namespace) -> list[str]:
    cols = [c.strip() for given in args.value_cols for c in given.split(",") if c.strip()]
    if not cols:
        raise UsageError("--value-col needs a column name")
    return cols


def _read(args: argparse.Namespace):
    from ..timeseries.data import read_panel
    if args.horizon < 1:
        raise UsageError(f"--horizon must be >= 1 (got {args.horizon})")
    return read_panel(args.data, args.time_col, _value_cols(args), args.id_col, args.fill, args.freq)


def _forecaster(args: argparse.Namespace, horizon: int):
    from ..timeseries import RNNForecaster
    model = RNNForecaster(**config_values(args, args.flags), horizon=horizon, verbose=0 if args.quiet else 1)
    model.config()  # bad settings are reported before any work
    return model


@contextlib.contextmanager
def _fit_errors(data: str):
    """The estimator's ValueErrors (a series too short, ...) as one-line usage errors."""
    try:
        yield
    except UsageError:
        raise
    except ValueError as e:
        raise UsageError(f"{data}: {e}") from None


def _train(args: argparse.Namespace) -> int:
    from .. import checkpoint
    model = _forecaster(args, args.horizon)
    out = _check_new_out(args.out)
    panel = _read(args)
    with _fit_errors(args.data):
        model.fit(panel)
    model.save(out)
    checkpoint.update_meta(out, time_col=panel.time_col, value_cols=panel.value_cols, id_col=panel.id_col,
                           fill=args.fill, freq=panel.freq, history=model.history_)
    if not args.quiet:
        print(f"trained on {len(panel):,} series ({sum(len(v) for v in panel.values):,} steps, frequency "
              f"{panel.freq}, season {model.season_}); validation loss {model.history_[-1]['val_loss']:.4f}; "
              f"saved in {out}", file=sys.stderr)
    return 0


def _levels(text: str) -> list[float]:
    try:
        levels = [float(q) for q in text.split(",") if q.strip()]
    except ValueError:
        raise UsageError(f"--quantiles must be numbers separated by commas, e.g. 0.1,0.5,0.9 (got {text!r})") from None
    bad = [q for q in levels if not 0 < q < 1]
    if bad:
        raise UsageError(f"--quantiles must be in (0, 1), exclusive (got {bad[0]:g})")
    return sorted(set(levels))


def _saved_data_settings(directory: str, meta: dict) -> dict:
    settings = {key: meta.get(key) for key in DATA_KEYS}
    ok = (isinstance(settings["time_col"], str) and isinstance(settings["value_cols"], list)
          and settings["value_cols"] and all(isinstance(c, str) for c in settings["value_cols"])
          and (settings["id_col"] is None or isinstance(settings["id_col"], str))
          and settings["fill"] in ("none", "interpolate", "ffill")
          and (isinstance(settings["freq"], str) or (isinstance(settings["freq"], int) and settings["freq"] >= 1)))
    if not ok:
        raise UsageError(f"{directory} is corrupted or not a forecasting model: its rnnkit.json lacks valid "
                         "time_col, value_cols, id_col, fill and freq")
    return settings


def _load(directory: str, data: str, estimator=None, command: str = "forecast"):
    """The model in `directory` (an RNNForecaster, or `estimator`'s class) and the series of `data`,
    read with the training run's settings."""
    from ..checkpoint import is_run_dir, read_meta
    from ..timeseries import RNNForecaster
    from ..timeseries.data import read_table, read_panel
    if not is_run_dir(directory):
        raise UsageError(f"{directory} is not a model directory (no rnnkit.json); train one with "
                         f"`rnnkit {command} train`")
    meta = read_meta(directory)
    model = (estimator or RNNForecaster).load(directory)
    s = _saved_data_settings(directory, meta)
    columns = [s["time_col"], *s["value_cols"], *([s["id_col"]] if s["id_col"] else [])]
    header = list(read_table(data, [], header_only=True).columns)
    if any(c not in header for c in columns):
        raise UsageError(f"{data} has columns {', '.join(map(repr, header))}; the model was trained on "
                         f"{', '.join(map(repr, columns))} (time, values{', id' if s['id_col'] else ''})")
    return model, read_panel(data, s["time_col"], s["value_cols"], s["id_col"], s["fill"], s["freq"]), s


def _predict(args: argparse.Namespace) -> int:
    from ..api import resolve_device
    levels = _levels(args.quantiles)
    model, panel, s = _load(args.model_dir, args.data)
    model.model_.to(resolve_device(args.device))
    with _fit_errors(args.data):
        mean, bands = model.forecast(panel, levels)  # (S, H, D), (S, H, D, Q)
    names = ([s["id_col"]] if s["id_col"] else []) + [s["time_col"]] + (["value"] if len(s["value_cols"]) > 1 else [])
    writer = csv.writer(sys.stdout, lineterminator="\n")
    writer.writerow(names + ["forecast"] + [f"q{q:g}" for q in levels])
    for i in range(len(panel)):
        times = _shown_times(panel.future_times(i, model.horizon))
        for h, when in enumerate(times):
            for d, column in enumerate(s["value_cols"]):
                key = ([panel.ids[i]] if s["id_col"] else []) + [when] + ([column] if len(s["value_cols"]) > 1 else [])
                quantile_cells = [f"{v:.6g}" for v in bands[i, h, d]] if levels else []
                writer.writerow(key + [f"{mean[i, h, d]:.6g}"] + quantile_cells)
    return 0


def _explain(args: argparse.Namespace) -> int:
    from .. import outputs
    from ..api import resolve_device
    from ..timeseries.figures import saliency_figure
    from ..timeseries.forecaster import saliency
    claimed = outputs.claim([args.out], args.force)
    if args.top < 0:
        raise UsageError(f"--top must be >= 0 (got {args.top})")
    model, panel, s = _load(args.model_dir, args.data)
    model.model_.to(resolve_device(args.device))
    if args.series is not None and args.series not in panel.ids:
        raise UsageError(f"{args.data} has no series {args.series!r}" + (f" in column {s['id_col']!r}" if s["id_col"]
                         else " (the model has no id column)"))
    i = panel.ids.index(args.series) if args.series is not None else 0
    history = panel.values[i]
    with _fit_errors(args.data):
        contribution = saliency(model, [history], args.step)[0]  # (L, D): a list in, (S, L, D) out
        mean, bands = model.forecast([history], [0.1, 0.9])
    n = min(len(history), len(contribution))
    times = np.asarray(panel.times[i])[-n:]
    title = (f"{panel.ids[i]}: " if s["id_col"] else "") + (f"step {args.step}" if args.step else "all steps")
    figure = saliency_figure(times, history[-n:], panel.future_times(i, model.horizon), mean[0], bands[0],
                             contribution[-n:], f"{title} of the forecast: what drove it")
    outputs.write(claimed[0], outputs.png(figure))
    influence = contribution[-n:].sum(axis=1)
    total = np.abs(influence).sum() or 1.0
    shown = _shown_times(list(panel.times[i][-n:]))
    print("time,value,gradient_x_input,share_of_influence")
    for k in np.argsort(-np.abs(influence))[:args.top]:
        print(f"{shown[k]},{history[-n:][k, 0]:.6g},{influence[k]:.4g},{abs(influence[k]) / total:.3f}")
    print(f"figure written to {claimed[0]}", file=sys.stderr)
    return 0


def _shown_times(times: list) -> list[str]:
    """Integer steps as they are; timestamps as dates when they all fall at midnight."""
    import pandas as pd
    if not times or isinstance(times[0], (int, np.integer)):
        return [str(t) for t in times]
    times = [pd.Timestamp(t) for t in times]
    dates_only = all(t == t.normalize() for t in times)
    return [t.strftime("%Y-%m-%d") if dates_only else t.isoformat() for t in times]


def _backtest(args: argparse.Namespace) -> int:
    from .. import outputs
    from ..timeseries.backtest import run_backtest
    from ..timeseries.baselines import METHODS
    baselines = [b.strip() for b in args.baselines.split(",") if b.strip()]
    unknown = [b for b in baselines if b not in METHODS]
    if unknown:
        raise UsageError(f"--baselines: unknown {unknown[0]!r}; choose from {', '.join(METHODS)}")
    if args.folds < 1 or args.folds > 1000:
        raise UsageError(f"--folds must be in 1..1000 (got {args.folds})")
    claimed = outputs.claim([args.out], args.force, "--plot") if args.out else []
    model = _forecaster(args, args.horizon)
    model.set_params(verbose=0)
    panel = _read(args)
    season = model.season or panel.season()
    with _fit_errors(args.data):
        needed = args.folds * args.horizon + 3 + args.horizon
        short = [i for i, v in enumerate(panel.values) if len(v) < needed]
        if short:
            name = f"series {panel.ids[short[0]]!r}" if panel.id_col else "the series"
            raise ValueError(f"{name} has {len(panel.values[short[0]])} steps; {args.folds} fold(s) of {args.horizon} "
                             f"need at least {needed} (3 of context, a horizon to train on, then the folds)")
        result = run_backtest(model, panel, args.folds, season, baselines, progress=not args.quiet)
    if args.json:
        print(json.dumps({"horizon": result.horizon, "folds": result.folds, "season": season,
                          "series": len(panel), "summary": result.summary, "seconds": result.seconds}, indent=1))
    else:
        print(f"{len(panel)} series, horizon {args.horizon}, {args.folds} fold(s), season {season}")
        print(result.table())
        if baselines:
            best = result.best_baseline()
            ratio = result.summary["rnnkit"]["gmase"] / result.summary[best]["gmase"]
            print(f"rnnkit's geometric-mean MASE is {ratio:.3f} x the best baseline's ({best})")
    if claimed:
        from ..timeseries.figures import backtest_figure
        outputs.write(claimed[0], outputs.png(backtest_figure(panel, result, model.horizon)))
        print(f"figure written to {claimed[0]}", file=sys.stderr)
    return 0
