"""scikit-learn-compatible estimators."""
from .bayesian_mixture import BayesianGaussianMixture
from .gaussian_mixture import GaussianMixture
from .lda import LatentDirichletAllocation

__all__ = ["GaussianMixture", "BayesianGaussianMixture", "LatentDirichletAllocation"]
