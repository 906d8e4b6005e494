"""scikit-learn-compatible estimators."""
from .bayesian_mixture import BayesianGaussianMixture
from .gaussian_mixture import GaussianMixture
from .discrete_mixture import BernoulliMixture, CategoricalMixture, PoissonMixture
from .lda import LatentDirichletAllocation

__all__ = ["GaussianMixture", "BayesianGaussianMixture", "LatentDirichletAllocation",
           "BernoulliMixture", "CategoricalMixture", "PoissonMixture"]
