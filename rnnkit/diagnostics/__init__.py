"""Looking inside a model: gradient flow, recurrent spectra, saturation (and their figures)."""

from .gradient_flow import activity, decay_per_step, diagnose, gradient_by_distance, recurrent_spectra

__all__ = ["diagnose", "gradient_by_distance", "decay_per_step", "recurrent_spectra", "activity"]
