"""The hidden Markov chain latent structure: z_1 ~ Categorical(startprob),
z_t | z_t-1 = j ~ Categorical(transmat[j]).

Its local step (forward-backward, Viterbi, forward filtering backward sampling,
or the factorised fixed point) runs in the compiled sequence driver
(``_ext/_hmm.pyx``); its statistics block is the expected start counts (K) and
transition counts (K x K) that driver accumulates.  Here live its global
parameters and their laws:

    point        hmmlearn's MAP estimate under Dirichlet priors (startprob_prior,
                 transmat_prior): p = max(prior - 1 + counts, 0), normalised, an
                 entry that is exactly 0 staying 0 (a forbidden start or transition
                 stays forbidden), as hmmlearn's BaseHMM._do_mstep.  A row without
                 any mass (a state never left, or every entry floored at 0) keeps
                 its previous row -- hmmlearn would leave a row of zeros -- and is
                 returned as an event.
    posterior    q(startprob) = Dirichlet(startprob_prior + start counts), each row
                 of q(transmat) = Dirichlet(transmat_prior[j] + trans counts[j]);
                 expected_log gives E_q log p, what the kernel takes as log_start /
                 log_trans under mean field (not normalised); kl their part of the
                 ELBO.
    sample       draws from those Dirichlets (gibbs).
"""
import numbers

import numpy as np
from scipy.special import digamma

from ..families.base import dirichlet_kl
from .base import Structure

__all__ = ["Chain", "LOG_FLOOR"]

# the log of a probability that is 0 where a kernel mode needs finite logs (vem's
# factorised fixed point): as good as forbidden, exp() of it is 0 in double
LOG_FLOOR = np.log(np.finfo(np.float64).tiny)


def _concentration(value, shape, name, positive):
    """A prior parameter broadcast to shape, finite; > 0 where positive (a
    Dirichlet's concentration) and real otherwise (hmmlearn's MAP takes any)."""
    try:
        arr = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a number or an array broadcastable to {shape}, got "
                         f"{value!r}") from None
    try:
        arr = np.array(np.broadcast_to(arr, shape))
    except ValueError:
        raise ValueError(f"{name} must be a number or an array broadcastable to {shape}, got "
                         f"shape {arr.shape}") from None
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} must be finite, got {value!r}")
    if positive and np.any(arr <= 0):
        raise ValueError(f"{name} must be > 0 (a Dirichlet concentration) for this method, "
                         f"got {value!r}")
    return arr


class Chain(Structure):
    """A first-order Markov chain over K states (see the module docstring)."""

    name = "chain"
    local_step_kind = "chain"

    def __init__(self, n_components, startprob_prior=1.0, transmat_prior=1.0):
        super().__init__(n_components)
        if isinstance(n_components, bool) or not isinstance(n_components, numbers.Integral) \
                or n_components < 1:
            raise ValueError(f"n_components must be an integer >= 1, got {n_components!r}")
        K = self.n_components
        self.startprob_prior = _concentration(startprob_prior, (K,), "startprob_prior", False)
        self.transmat_prior = _concentration(transmat_prior, (K, K), "transmat_prior", False)

    def statistics_size(self):
        return self.n_components + self.n_components ** 2

    # ------------------------------------------------------------ point
    @staticmethod
    def log_params(startprob, transmat, floor=False):
        """(log_start, log_trans) for the kernel: -inf where a probability is 0, or
        LOG_FLOOR there when floor (vem needs every entry finite)."""
        with np.errstate(divide="ignore"):
            ls, lt = np.log(startprob), np.log(transmat)
        if floor:
            ls, lt = np.maximum(ls, LOG_FLOOR), np.maximum(lt, LOG_FLOOR)
        return np.ascontiguousarray(ls, dtype=np.float64), np.ascontiguousarray(lt,
                                                                                 dtype=np.float64)

    def point_estimate(self, start_counts, trans_counts, startprob, transmat, update="st"):
        """hmmlearn's MAP update of (startprob, transmat) from the counts, for the
        parameters named in update ('s', 't'); returns (startprob, transmat, events)."""
        events = []
        if "s" in update:
            s = np.maximum(self.startprob_prior - 1.0 + start_counts, 0.0)
            s = np.where(startprob == 0, 0.0, s)
            tot = s.sum()
            if tot > 0 and np.isfinite(tot):
                startprob = s / tot
            else:
                events.append("startprob_ kept: no start mass (every start floored at 0)")
        if "t" in update:
            t = np.maximum(self.transmat_prior - 1.0 + trans_counts, 0.0)
            t = np.where(transmat == 0, 0.0, t)
            tot = t.sum(1)
            dead = ~(tot > 0) | ~np.isfinite(tot)
            new = t / np.where(dead, 1.0, tot)[:, None]
            if np.any(dead):
                new[dead] = transmat[dead]
                events.append(f"transmat_ rows {np.flatnonzero(dead).tolist()} kept: no "
                              "transition left those states")
            transmat = new
        return startprob, transmat, events

    @staticmethod
    def log_prior_point(startprob, transmat, startprob_prior, transmat_prior):
        """The Dirichlet log density (up to a constant) the MAP estimate climbs."""
        with np.errstate(divide="ignore", invalid="ignore"):
            a = (startprob_prior - 1.0) * np.log(startprob)
            b = (transmat_prior - 1.0) * np.log(transmat)
        return float(np.sum(np.where(startprob_prior == 1.0, 0.0, a))
                     + np.sum(np.where(transmat_prior == 1.0, 0.0, b)))

    # ------------------------------------------------- mean field / gibbs
    def check_posterior_prior(self):
        """The Dirichlet concentrations (mean field, gibbs need them > 0)."""
        K = self.n_components
        return (_concentration(self.startprob_prior, (K,), "startprob_prior", True),
                _concentration(self.transmat_prior, (K, K), "transmat_prior", True))

    def posterior(self, start_counts, trans_counts):
        """(a_start (K), a_trans (K x K)): the Dirichlet concentrations of q."""
        a0, A0 = self.check_posterior_prior()
        return a0 + start_counts, A0 + trans_counts

    @staticmethod
    def expected_log(q):
        """(E_q log startprob, E_q log transmat): the kernel's log_start / log_trans
        under mean field (sub-normalised)."""
        a, A = q
        return (np.ascontiguousarray(digamma(a) - digamma(a.sum())),
                np.ascontiguousarray(digamma(A) - digamma(A.sum(1, keepdims=True))))

    @staticmethod
    def mean(q):
        a, A = q
        return a / a.sum(), A / A.sum(1, keepdims=True)

    def kl(self, q):
        """KL(q(startprob) q(transmat) || prior)."""
        a0, A0 = self.check_posterior_prior()
        a, A = q
        return dirichlet_kl(a, a0) + dirichlet_kl(A, A0)

    @staticmethod
    def sample(q, rng):
        """A draw of (startprob, transmat) from q (floored at the smallest normal
        double, renormalised: a draw never forbids a start or a transition)."""
        a, A = q
        tiny = np.finfo(np.float64).tiny
        s = np.maximum(rng.standard_gamma(a), tiny)
        T = np.maximum(rng.standard_gamma(A), tiny)
        return s / s.sum(), T / T.sum(1, keepdims=True)

    def initial_posterior(self, startprob, transmat, n_sequences, n_transitions):
        """q from a point: the prior plus the counts the point would give
        n_sequences starts and n_transitions transitions spread by it."""
        return self.posterior(startprob * n_sequences,
                              transmat * (n_transitions / self.n_components))
