"""scikit-learn-compatible estimators."""
from .bayesian_mixture import BayesianGaussianMixture
from .gaussian_mixture import GaussianMixture

__all__ = ["GaussianMixture", "BayesianGaussianMixture"]
