"""scikit-learn-compatible estimators."""
from .gaussian_mixture import GaussianMixture

__all__ = ["GaussianMixture"]
