"""Observation families (docs/architecture.md, axis 1): log-densities, statistics, updates.

``ExponentialFamily`` (a user's numba row functions) needs the optional extra
``fastvem[numba]``; importing it does not."""
from .base import Family
from .discrete import Bernoulli, Categorical, Multinomial, Poisson
from .gaussian import GaussianFamily, GaussianWishartPrior
from .normal import GaussianDiag, GaussianFull, GaussianSpherical, GaussianTied
from .numba_family import Conjugate, ExponentialFamily
from .product import Product

__all__ = ["Family", "Bernoulli", "Categorical", "Conjugate", "Multinomial", "Poisson",
           "ExponentialFamily",
           "GaussianDiag", "GaussianFamily", "GaussianFull", "GaussianSpherical", "GaussianTied",
           "GaussianWishartPrior", "Product"]
