"""scikit-learn-compatible estimators."""
from .bayesian_mixture import BayesianGaussianMixture
from .gaussian_mixture import GaussianMixture
from .discrete_mixture import (BernoulliMixture, CategoricalMixture, Mixture,
                               MultinomialMixture, PoissonMixture)
from .lda import LatentDirichletAllocation
from .hmm import (HMM, CategoricalHMM, GaussianHMM, MultinomialHMM, PoissonHMM,
                  VariationalCategoricalHMM, VariationalGaussianHMM)
from .gmmhmm import GMMHMM

__all__ = ["GaussianMixture", "BayesianGaussianMixture", "LatentDirichletAllocation",
           "BernoulliMixture", "CategoricalMixture", "Mixture", "MultinomialMixture",
           "PoissonMixture", "GaussianHMM", "CategoricalHMM", "MultinomialHMM", "PoissonHMM",
           "HMM", "VariationalGaussianHMM", "VariationalCategoricalHMM", "GMMHMM"]
