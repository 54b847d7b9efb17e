"""Numeric sequences: reading series from CSV (data.py), windows and scaling (windows.py), the
forecasting network and task (network.py, task.py), the estimator (forecaster.py), metrics and
classical baselines (evaluation.py, baselines.py). pandas is needed to read CSV files, statsmodels
for the ETS and ARIMA baselines: `pip install 'rnnkit[timeseries]'`."""

from .configs import ForecasterConfig
from .data import FILLS, Panel, read_panel
from .forecaster import RNNForecaster

__all__ = ["FILLS", "ForecasterConfig", "Panel", "RNNForecaster", "read_panel"]
