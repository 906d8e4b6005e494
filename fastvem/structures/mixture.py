"""Mixture latent structure: iid z_n ~ Categorical(pi).

Its local step (softmax / argmax / sample of a row of log-evidence) runs inside
the compiled kernels (``_ext/_common.pxd: local_step_row``); here live its
global parameter pi and the empty-component rule.
"""
import numpy as np

from .base import Structure


class Mixture(Structure):
    """iid z_n ~ Categorical(pi): the statistics block is the counts nk (K), the
    parameters the weights pi, their law under mean field and gibbs a
    DirichletWeights."""

    name = "mixture"
    local_step_kind = "mixture"

    def statistics_size(self):
        return self.n_components

    @staticmethod
    def prior(prior_type, alpha0):
        """The law of the weights (mean field, gibbs)."""
        return DirichletWeights(prior_type, alpha0)

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


class DirichletWeights:
    """q(pi) for mean field: a Dirichlet ('dirichlet_distribution') or a
    truncated stick-breaking process ('dirichlet_process') with concentration
    prior alpha0, scikit-learn's parameterisation."""

    TYPES = ("dirichlet_process", "dirichlet_distribution")

    def __init__(self, prior_type, alpha0):
        if not isinstance(prior_type, str) or prior_type not in self.TYPES:
            raise ValueError(f"weight_concentration_prior_type must be one of {list(self.TYPES)}, "
                             f"got {prior_type!r}")
        self.prior_type = prior_type
        self.alpha0 = float(alpha0)

    def posterior(self, nk):
        """Concentration of q(pi): an array, or (a, b) of the stick fractions."""
        if self.prior_type == "dirichlet_process":
            return (1.0 + nk, self.alpha0 + np.hstack((np.cumsum(nk[::-1])[-2::-1], 0)))
        return self.alpha0 + nk

    def counts(self, conc):
        """The weighted counts nk whose posterior is conc (posterior's inverse)."""
        if self.prior_type == "dirichlet_process":
            return np.asarray(conc[0], dtype=np.float64) - 1.0
        return np.asarray(conc, dtype=np.float64) - self.alpha0

    def expected_log_weights(self, conc):
        from scipy.special import digamma
        if self.prior_type == "dirichlet_process":
            a, b = conc
            ds = digamma(a + b)
            return digamma(a) - ds + np.hstack((0, np.cumsum(digamma(b) - ds)[:-1]))
        return digamma(conc) - digamma(np.sum(conc))

    def bound_term(self, conc):
        """-log normaliser of q(pi), the weights' part of the variational bound."""
        from scipy.special import betaln, gammaln
        if self.prior_type == "dirichlet_process":
            return float(np.sum(betaln(conc[0], conc[1])))
        return -float(gammaln(np.sum(conc)) - np.sum(gammaln(conc)))

    def sample(self, conc, rng):
        """A draw of pi from q(pi) (the conditional posterior given counts)."""
        if self.prior_type == "dirichlet_process":
            a, b = conc
            v = rng.beta(a, b)
            v[-1] = 1.0                      # truncation: the last stick takes the rest
            return v * np.hstack((1.0, np.cumprod(1.0 - v[:-1])))
        return rng.dirichlet(conc)

    # the protocol's names for the law of a structure's parameters
    def expected_log(self, conc):
        return self.expected_log_weights(conc)

    def kl(self, conc):
        """KL(q(pi) || prior): the weights' part of the ELBO."""
        from ..families.base import beta_kl, dirichlet_kl
        if self.prior_type == "dirichlet_process":
            a, b = conc
            return beta_kl(a, b, 1.0, self.alpha0)
        return dirichlet_kl(conc, self.alpha0)

    def mean(self, conc):
        return self.mean_weights(conc)

    def mean_weights(self, conc):
        """E_q[pi], normalised."""
        if self.prior_type == "dirichlet_process":
            a, b = conc
            w = a / (a + b) * np.hstack((1, np.cumprod(b / (a + b))[:-1]))
            return w / w.sum()
        return conc / np.sum(conc)
