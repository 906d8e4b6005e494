"""Latent structures (docs/architecture.md, axis 2): how evidence becomes q(T), and their globals."""
from .base import Structure
from .mixture import DirichletWeights, Mixture
from .hmm import Chain

__all__ = ["Structure", "Mixture", "DirichletWeights", "Chain"]
