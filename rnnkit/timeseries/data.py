"""Numeric series from CSV files: one or more value columns over a time column, optionally many
series in one file (an id column). Everything a file can get wrong is a UsageError naming the
line: a missing column, a value that is not a number, timestamps out of order or repeated, gaps
(unless a fill is chosen), series of different frequencies. Nothing is guessed silently.

A `Panel` holds the series as float64 arrays of shape (T, D) (D value columns) with their time
index (pandas DatetimeIndex, or integer steps), all on one regular grid (`freq`).

Fills (`--fill`), applied after the series is laid on its regular grid:
  none         missing steps (gaps, empty cells, NaN) are an error
  interpolate  linear between the nearest observed values; the ends take the nearest observed value
  ffill        the last observed value; the start takes the first observed value
"""

from __future__ import annotations

import re
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import UsageError

FILLS = ("none", "interpolate", "ffill")
MAX_FILE_BYTES = 2 * 1024**3  # a CSV above this is refused: it is read into memory
_INTEGER = re.compile(r"^\s*[+-]?\d+\s*$")
# Season length by the start of a pandas frequency alias (yearly data has no season, quarterly 4,
# ...), and each timestamp's place in that season (so the place does not depend on where a file starts)
_SEASONS = (("Y", 1, None), ("A", 1, None), ("BY", 1, None),
            ("Q", 4, lambda t: t.quarter - 1), ("BQ", 4, lambda t: t.quarter - 1),
            ("M", 12, lambda t: t.month - 1), ("BM", 12, lambda t: t.month - 1),
            ("SM", 24, lambda t: 2 * (t.month - 1) + (t.day >= 15)),
            ("W", 52, lambda t: min(t.isocalendar()[1], 52) - 1), ("B", 5, lambda t: t.dayofweek),
            ("D", 7, lambda t: t.dayofweek), ("C", 5, lambda t: t.dayofweek), ("h", 24, lambda t: t.hour),
            ("H", 24, lambda t: t.hour), ("bh", 8, lambda t: t.hour), ("min", 60, lambda t: t.minute),
            ("T", 60, lambda t: t.minute), ("s", 60, lambda t: t.second), ("S", 60, lambda t: t.second))

@dataclass
class Panel:
    value_cols: list[str]
    time_col: str
    id_col: str | None
    freq: str | int  # a pandas frequency alias ("MS", "D", ...) or, for integer time, the step
    ids: list[str] = field(default_factory=list)
    times: list = field(default_factory=list)  # per series: pandas DatetimeIndex or int64 array
    values: list[np.ndarray] = field(default_factory=list)  # per series: (T, D) float64

    def __len__(self) -> int:
        return len(self.values)

    @property
    def integer_time(self) -> bool:
        return isinstance(self.freq, int)

    def _season_rule(self):
        alias = re.sub(r"^\d+", "", str(self.freq)).split("-")[0]
        for prefix, length, place in sorted(_SEASONS, key=lambda s: -len(s[0])):
            if alias == prefix or (alias.startswith(prefix) and alias[len(prefix):] in ("S", "E", "")):
                return length, place
        return 1, None

    def season(self) -> int:
        """Season length implied by the frequency (1: none known)."""
        return 1 if self.integer_time else self._season_rule()[0]

    def phases(self) -> np.ndarray:
        """Each series' first step's place in the season (0 .. season - 1), from the calendar."""
        length, place = (1, None) if self.integer_time else self._season_rule()
        if place is None:
            return np.zeros(len(self), dtype=np.int64)
        import pandas as pd
        return np.array([place(pd.Timestamp(t[0])) % length for t in self.times], dtype=np.int64)

    def future_times(self, i: int, steps: int) -> list:
        """The `steps` time stamps after the end of series i, on the panel's grid."""
        last = self.times[i][-1]
        if self.integer_time:
            return [int(last) + self.freq * k for k in range(1, steps + 1)]
        import pandas as pd
        return list(pd.date_range(start=last, periods=steps + 1, freq=self.freq)[1:])

    def subset(self, keep: list[int], cut: list[int] | None = None) -> "Panel":
        """Series `keep`, each cut to its first cut[k] steps when `cut` is given (no copies)."""
        cut = cut or [len(self.values[i]) for i in keep]
        return Panel(self.value_cols, self.time_col, self.id_col, self.freq, [self.ids[i] for i in keep],
                     [self.times[i][:n] for i, n in zip(keep, cut)], [self.values[i][:n] for i, n in zip(keep, cut)])


def read_panel(path: str | Path, time_col: str, value_cols: list[str], id_col: str | None = None,
               fill: str = "none", freq: str | int | None = None) -> Panel:
    """Read, check and regularise the series of a CSV file (see the module docstring)."""
    if fill not in FILLS:
        raise UsageError(f"--fill must be one of {', '.join(FILLS)} (got {fill!r})")
    columns = [time_col, *value_cols, *([id_col] if id_col else [])]
    if len(set(columns)) != len(columns):
        raise UsageError("the time, value and id columns must be different columns")
    table = read_table(path, columns)
    p = Path(path)
    ids = table[id_col].tolist() if id_col else [""] * len(table)
    for c in columns:
        table[c] = table[c].str.strip()
    empty = table[time_col] == ""
    if empty.any():
        raise UsageError(f"{p}, line {int(np.argmax(empty.to_numpy())) + 2}: column {time_col!r} is empty")
    numbers = _numbers(table, value_cols, p)
    stamps, integer = _times(table[time_col], p, time_col)
    panel = Panel(list(value_cols), time_col, id_col, 1)
    order: dict[str, list[int]] = {}
    for row, key in enumerate(ids):
        order.setdefault(key, []).append(row)
    steps = []
    for key, rows in order.items():
        rows = np.asarray(rows)
        t = stamps[rows]
        _check_order(t, rows, p, key, id_col)
        steps.append((key, t, numbers[rows]))
    panel.freq = _frequency(steps, integer, freq, id_col)
    for key, t, v in steps:
        grid, v = _on_grid(t, v, panel.freq, integer, key, id_col)
        panel.ids.append(key)
        panel.times.append(grid)
        panel.values.append(_fill(v, fill, key, id_col, grid))
    return panel


def read_table(path: str | Path, columns: list[str], header_only: bool = False):
    """The CSV file as a table of strings, every named column present and, unless only the header
    is asked for, at least one row."""
    import pandas as pd
    p = Path(path)
    if not p.exists():
        raise UsageError(f"{p}: no such file")
    if not p.is_file():
        raise UsageError(f"{p} is not a regular file")
    if p.stat().st_size > MAX_FILE_BYTES:
        raise UsageError(f"{p} is larger than {MAX_FILE_BYTES // 1024**3} GB; split it into several files")
    try:
        table = pd.read_csv(p, dtype=str, keep_default_na=False, na_filter=False, encoding="utf-8",
                            skipinitialspace=True, nrows=0 if header_only else None)
    except UnicodeDecodeError as e:
        raise UsageError(f"{p} is not valid UTF-8 (bad byte at offset {e.start}); save it as UTF-8") from None
    except pd.errors.EmptyDataError:
        raise UsageError(f"{p} is empty; it needs a header line and rows") from None
    except (pd.errors.ParserError, ValueError) as e:
        first = str(e).strip().splitlines()[0][:200] if str(e).strip() else type(e).__name__
        raise UsageError(f"{p} is not a CSV file rnnkit can read ({first})") from None
    missing = [c for c in columns if c not in table.columns]
    if missing:
        raise UsageError(f"{p} has no column {', '.join(repr(c) for c in missing)}; its columns are "
                         f"{', '.join(repr(c) for c in table.columns) or '(none)'}")
    if len(table) == 0 and not header_only:
        raise UsageError(f"{p} has no rows")
    return table


def _numbers(table, value_cols: list[str], p: Path) -> np.ndarray:
    """(rows, D) float64; empty cells and NaN are missing (NaN), anything else not a number is an error."""
    import pandas as pd
    out = np.empty((len(table), len(value_cols)))
    for d, c in enumerate(value_cols):
        cells = table[c]
        values = pd.to_numeric(cells.where(cells != "", "nan"), errors="coerce").to_numpy(dtype=np.float64)
        bad = np.isnan(values) & ~cells.str.lower().isin(["", "nan", "na"]).to_numpy()
        if bad.any():
            row = int(np.argmax(bad))
            raise UsageError(f"{p}, line {row + 2}: column {c!r} holds {cells.iloc[row][:40]!r}, not a number")
        if np.isinf(values).any():
            row = int(np.argmax(np.isinf(values)))
            raise UsageError(f"{p}, line {row + 2}: column {c!r} is infinite; give finite numbers")
        out[:, d] = values
    return out


def _times(cells, p: Path, time_col: str):
    """Integer steps (int64) when every cell is a whole number, else timestamps (datetime64[ns])."""
    import pandas as pd
    if cells.str.match(_INTEGER).all():
        try:
            return cells.astype(np.int64).to_numpy(), True
        except (OverflowError, ValueError):
            raise UsageError(f"{p}: column {time_col!r} holds integers too large for time steps") from None
    try:
        stamps = pd.to_datetime(cells, errors="coerce", format="ISO8601")
    except (ValueError, TypeError):  # mixed time zones, or no ISO 8601 at all
        stamps = pd.to_datetime(cells, errors="coerce", format="mixed")
    if getattr(stamps.dt, "tz", None) is not None:
        stamps = stamps.dt.tz_convert(None)
    bad = stamps.isna().to_numpy()
    if bad.any():
        row = int(np.argmax(bad))
        raise UsageError(f"{p}, line {row + 2}: column {time_col!r} holds {cells.iloc[row][:40]!r}, which is "
                         "neither a date/time (e.g. 2024-01-31 or 2024-01-31T12:00) nor a whole-number step")
    return stamps.to_numpy(dtype="datetime64[ns]"), False


def _series_name(key: str, id_col: str | None) -> str:
    return f"series {key!r}" if id_col else "the series"


def _check_order(t: np.ndarray, rows: np.ndarray, p: Path, key: str, id_col: str | None) -> None:
    step = np.diff(t)
    zero = np.zeros((), dtype=step.dtype)
    if (step == zero).any():
        k = int(np.argmax(step == zero)) + 1
        raise UsageError(f"{p}, line {rows[k] + 2}: {_series_name(key, id_col)} repeats the time {t[k]} of line "
                         f"{rows[k - 1] + 2}; keep one row per time step")
    if (step < zero).any():
        k = int(np.argmax(step < zero)) + 1
        raise UsageError(f"{p}, line {rows[k] + 2}: time {t[k]} comes before the line above's ({t[k - 1]}) in "
                         f"{_series_name(key, id_col)}; sort the file by time (rnnkit does not reorder rows)")


def _frequency(steps, integer: bool, given: str | int | None, id_col: str | None) -> str | int:
    """The one regular frequency of all series: given, or inferred (an error when it cannot be)."""
    import pandas as pd
    if integer:
        if given is not None:
            try:
                step = int(given)
            except (TypeError, ValueError):
                raise UsageError(f"--freq must be a whole-number step for integer time (got {given!r})") from None
            if step < 1:
                raise UsageError(f"--freq must be >= 1 for integer time (got {step})")
            return step
        gaps = np.concatenate([np.diff(t) for _, t, _ in steps])
        # the smallest step between rows; larger ones are gaps of several steps
        return int(gaps.min()) if len(gaps) else 1
    if given is not None:
        try:
            pd.tseries.frequencies.to_offset(str(given))
        except ValueError:
            raise UsageError(f"--freq {given!r} is not a pandas frequency (e.g. D, h, W, MS, QS, YS)") from None
        return str(given)
    found = set()
    for key, t, _ in steps:
        if len(t) < 3:
            raise UsageError(f"{_series_name(key, id_col)} has {len(t)} rows, too few to infer its frequency; "
                             "give --freq (e.g. D, MS, YS)")
        with warnings.catch_warnings():  # pandas 3 warns that infer_freq will return an offset; both work
            warnings.simplefilter("ignore")
            freq = pd.infer_freq(pd.DatetimeIndex(t))
        freq = getattr(freq, "freqstr", freq)
        if freq is None:
            raise UsageError(f"cannot infer a regular frequency for {_series_name(key, id_col)} (its time steps "
                             "differ: gaps?); give --freq (e.g. D, h, MS) and a --fill for the gaps")
        found.add(freq)
    if len(found) > 1:
        raise UsageError(f"the series have different frequencies ({', '.join(sorted(found))}); one model needs one "
                         "frequency: give --freq, or split the file")
    return found.pop()


def _on_grid(t: np.ndarray, v: np.ndarray, freq: str | int, integer: bool, key: str, id_col: str | None):
    """Lay the rows on the regular grid from the first to the last time; missing steps are NaN."""
    import pandas as pd
    if integer:
        offsets = t - t[0]
        if (offsets % freq != 0).any():
            k = int(np.argmax(offsets % freq != 0))
            hint = " (dates written as YYYYMMDD? write them as YYYY-MM-DD)" if 19000101 <= t[0] <= 21001231 else ""
            raise UsageError(f"{_series_name(key, id_col)}: time {t[k]} is not on the grid of step {freq} from "
                             f"{t[0]}; give --freq with the right step{hint}")
        grid = np.arange(t[0], t[-1] + 1, freq, dtype=np.int64)
        where = (offsets // freq).astype(np.int64)
    else:
        grid = pd.date_range(start=t[0], end=t[-1], freq=freq)
        where = grid.get_indexer(pd.DatetimeIndex(t))
        if (where < 0).any():
            k = int(np.argmax(where < 0))
            raise UsageError(f"{_series_name(key, id_col)}: time {pd.Timestamp(t[k])} is not on the {freq!r} grid "
                             f"that starts at {pd.Timestamp(t[0])}; give the right --freq")
    if len(grid) > 50 * len(t) + 1000:
        raise UsageError(f"{_series_name(key, id_col)} would have {len(grid):,} steps at frequency {freq} for "
                         f"{len(t):,} rows; give the right --freq")
    full = np.full((len(grid), v.shape[1]), np.nan)
    full[where] = v
    return grid, full


def _fill(v: np.ndarray, fill: str, key: str, id_col: str | None, grid) -> np.ndarray:
    missing = np.isnan(v)
    if not missing.any():
        return v
    name = _series_name(key, id_col)
    if missing.all(axis=0).any():
        raise UsageError(f"{name} has no values at all in one of its value columns")
    if fill == "none":
        first = grid[int(np.argmax(missing.any(axis=1)))]
        raise UsageError(f"{name} has {int(missing.any(axis=1).sum())} missing step(s) (gaps, empty cells or NaN; "
                         f"the first at {first}); choose --fill interpolate or --fill ffill")
    out = v.copy()
    steps = np.arange(len(v))
    for d in range(v.shape[1]):
        seen = ~missing[:, d]
        if fill == "interpolate":
            out[:, d] = np.interp(steps, steps[seen], v[seen, d])  # ends: the nearest observed value
        else:
            last = np.maximum.accumulate(np.where(seen, steps, -1))
            first = int(np.argmax(seen))
            out[:, d] = v[np.where(last < 0, first, last), d]
    return out
