"""Anomaly detection in numeric series: the detector (detector.py: surprises of a recurrent
one-step forecaster), how errors become scores (scoring.py), classical baselines (baselines.py),
point-wise metrics (metrics.py), the Numenta Anomaly Benchmark's scoring rules (nab.py) and the
figure (figures.py). Reading CSV files needs pandas: `pip install 'rnnkit[anomaly]'`."""

from .configs import AnomalyConfig
from .detector import RNNAnomalyDetector

__all__ = ["AnomalyConfig", "RNNAnomalyDetector"]
