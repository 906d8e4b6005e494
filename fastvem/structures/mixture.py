"""Mixture latent structure: iid z_n ~ Categorical(pi).

Its local step (softmax / argmax / sample of a row of log-evidence) runs inside
the compiled kernels (``_ext/_common.pxd: local_step_row``); here live its
global parameter pi and the empty-component rule.
"""
import numpy as np


class Mixture:
    name = "mixture"

    def __init__(self, n_components):
        self.n_components = int(n_components)

    @staticmethod
    def log_weights(weights):
        with np.errstate(divide="ignore"):
            return np.log(weights)

    @staticmethod
    def point_estimate(nk):
        """Maximum-likelihood weights from the (floored) counts."""
        return nk / nk.sum()

    @staticmethod
    def empty_components(nk, total_weight, rel=1e-10):
        """Components whose weighted count is (numerically) zero."""
        return np.flatnonzero(nk <= rel * total_weight)
