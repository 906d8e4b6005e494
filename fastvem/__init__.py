"""fastvem: latent-variable models fitted by gibbs, meanfield, em, vem and crisp
on one engine with compiled kernels.  See docs/architecture.md for the spine.

The estimators are imported on first use (``fastvem.GaussianMixture``), so that
``import fastvem.kernels`` -- the low-level API other libraries build on -- loads
no estimator."""
__version__ = "0.1.0"

import importlib as _importlib

from . import datasets, kernels, methods
from .io import load
from .review import review       # light (no estimator import); a function named as its module

# public name -> the module that defines it, imported on first access
_LAZY = {
    "GaussianMixture": "fastvem.models",
    "BayesianGaussianMixture": "fastvem.models",
    "LatentDirichletAllocation": "fastvem.models",
    "BernoulliMixture": "fastvem.models",
    "CategoricalMixture": "fastvem.models",
    "PoissonMixture": "fastvem.models",
    "MultinomialMixture": "fastvem.models",
    "Mixture": "fastvem.models",
    "GaussianHMM": "fastvem.models",
    "CategoricalHMM": "fastvem.models",
    "MultinomialHMM": "fastvem.models",
    "PoissonHMM": "fastvem.models",
    "HMM": "fastvem.models",
    "VariationalGaussianHMM": "fastvem.models",
    "VariationalCategoricalHMM": "fastvem.models",
    "GMMHMM": "fastvem.models",
}

__all__ = ["GaussianMixture", "Mixture", "BernoulliMixture", "CategoricalMixture",
           "MultinomialMixture",
           "PoissonMixture", "GaussianHMM", "CategoricalHMM", "MultinomialHMM", "PoissonHMM",
           "HMM", "VariationalGaussianHMM", "VariationalCategoricalHMM", "GMMHMM",
           "BayesianGaussianMixture", "LatentDirichletAllocation", "load", "datasets",
           "kernels", "methods", "review", "__version__"]


def __getattr__(name):
    if name in _LAZY:
        value = getattr(_importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'fastvem' has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(__all__))
