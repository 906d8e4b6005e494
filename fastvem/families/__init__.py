"""Observation families (DESIGN.md axis 1): log-densities, statistics, updates."""
from .gaussian import GaussianFamily, GaussianWishartPrior

__all__ = ["GaussianFamily", "GaussianWishartPrior"]
