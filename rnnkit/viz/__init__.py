"""Seeing inside a model: the static activation page, training-curve plots, and the web app."""
