"""fastvem: latent-variable models fitted by gibbs, meanfield, em, vem and crisp
on one engine with compiled kernels.  See docs/architecture.md for the spine."""
__version__ = "0.1.0"

from . import datasets, kernels, methods
from .review import review
from .io import load
from .models import (BayesianGaussianMixture, BernoulliMixture, CategoricalMixture,
                     GaussianMixture, LatentDirichletAllocation, PoissonMixture)

__all__ = ["GaussianMixture", "BernoulliMixture", "CategoricalMixture", "PoissonMixture", "BayesianGaussianMixture", "LatentDirichletAllocation", "load", "datasets", "kernels", "methods", "review", "__version__"]
