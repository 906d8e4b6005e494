"""LDA's word-topic family: the multinomial word family of the mixture of unigrams
(`families.discrete.Multinomial`), read as K topics over V words.

Topics are held as scikit-learn's ``components_``: the Dirichlet concentrations
eta + the (expected) word-topic counts (K x V), i.e. ``Multinomial.posterior(stats,
nk, eta)``.  The same matrix is read by the method's ``update`` law:

- 'posterior' (meanfield): q(beta_k) = Dirichlet(components_[k]); the kernel's
  effective topics are exp(E_q[log beta]) (``expected_effective``);
- 'point' (vem, crisp): beta_k = components_[k] / sum (``posterior_mean``), the MAP
  estimate under a Dirichlet(eta + 1) prior -- Multinomial's point estimate with
  alpha = eta (eta acts as pseudo-counts, as in scikit-learn);
- 'sample' (gibbs): components_ holds eta + the (averaged) sampled counts, and the
  point topics are read as above.

The LDA kernels want the effective topics word-major (V x K): a word's K values
contiguous.
"""
import numpy as np
from scipy.special import gammaln, psi

from .discrete import Multinomial
from .._threads import map_rows

__all__ = ["TopicWords", "dirichlet_newton"]


def dirichlet_newton(ss, n, a0, shift=0.0, symmetric=True, max_iter=100, tol=1e-10,
                     floor=1e-8):
    """Maximise f(a) = n [lgamma(sum(a + s)) - sum lgamma(a_k + s)] + sum (a_k + s - 1) ss_k
    over a > 0 by Newton's method (s = shift; ss = sum over n draws of E log p_k).

    Asymmetric a: the Hessian is diagonal plus rank one and is inverted in O(K)
    (Minka 2000; Blei et al. 2003, appendix A.4.2).  Symmetric a: Newton on log a.
    Each step is halved until f increases, so the result never lowers f; a is kept
    above `floor` (the maximum can lie at a -> 0 when the draws are very sparse)."""
    ss = np.asarray(ss, dtype=np.float64)
    K = ss.shape[0]

    def f(a):
        a = np.broadcast_to(a, (K,))
        return n * (gammaln(np.sum(a + shift)) - np.sum(gammaln(a + shift))) + np.dot(a + shift - 1, ss)

    if n <= 0:
        return a0
    a = np.array(a0, dtype=np.float64, copy=True)
    fa = f(a)
    for _ in range(max_iter):
        if symmetric:
            x = float(np.log(a.flat[0]))
            av = np.exp(x)
            S = K * (av + shift)
            g = n * K * (psi(S) - psi(av + shift)) + ss.sum()          # df/da
            h = n * K * (K * _trigamma(S) - _trigamma(av + shift))     # d2f/da2
            # Newton in x = log a: df/dx = g a, d2f/dx2 = h a^2 + g a
            gx, hx = g * av, h * av * av + g * av
            step = -gx / hx if hx < 0 else np.sign(gx) * 1.0
            new = None
            for _half in range(40):
                cand = np.full_like(a, max(np.exp(x + step), floor))
                fc = f(cand)
                if fc >= fa:
                    new = cand
                    break
                step *= 0.5
        else:
            S = np.sum(a + shift)
            g = n * (psi(S) - psi(a + shift)) + ss
            q = -n * _trigamma(a + shift)
            z = n * _trigamma(S)
            c = np.sum(g / q) / (1.0 / z + np.sum(1.0 / q))
            step = -(g - c) / q            # the Newton step H^{-1} g, negated
            new = None
            for _half in range(40):
                cand = np.maximum(a + step, floor)
                if True:
                    fc = f(cand)
                    if fc >= fa:
                        new = cand
                        break
                step = step * 0.5
        if new is None:
            break
        change = np.max(np.abs(new - a) / a)
        a, fa = new, fc
        if change == 0:
            break
        if change < tol:
            break
    return a


def _trigamma(x):
    from scipy.special import polygamma
    return polygamma(1, x)


class TopicWords(Multinomial):
    """K topics over V words: the ``Multinomial`` family (one probability vector over
    the words per component) with alpha = eta, the topic-word prior.  What LDA needs
    beyond the mixture of unigrams is read through the family's own operations:

    - ``components(stats_t, eta)``: components_ from the word-major statistics,
      ``posterior(stats, nk, eta)`` = eta + stats;
    - ``effective_topics``: exp of ``expected_effective`` (mean field) or the
      ``posterior_mean`` of the components (the point topics), word-major;
    - ``kl(components, eta)``: KL(Dirichlet(components) || Dirichlet(eta)) summed
      over the topics (the topics' part of the ELBO, negated); ``log_prior_point``:
      log Dirichlet(beta | eta + 1) at the point topics;
    - ``update_eta``: the symmetric eta maximising the topics' term (Newton).

    eta is an argument of these, not the family's state, since the fit may learn it."""

    name = "topic_words"

    def __init__(self, n_words, eta):
        super().__init__(n_words, eta)

    def components(self, stats_t, eta):
        """components_ (K x V) = eta + statistics (given word-major, V x K)."""
        return self.posterior(stats_t.T, None, eta)

    # n_threads below: the elementwise digamma, gammaln and exp over the K x V
    # arrays run in that many threads (fastvem._threads.map_rows, bitwise the same)
    def expected_log(self, components, n_threads=1):
        """E_q[log beta] (K x V) under q(beta_k) = Dirichlet(components_[k])."""
        return self.expected_effective(components, n_threads)[0]

    def effective_topics(self, components, posterior, dtype, elog=None, n_threads=1):
        """The kernel's topic matrix, word-major (V x K): exp E log beta under
        q(beta) when posterior, the normalised point topics otherwise.  elog:
        expected_log(components), if already computed."""
        if posterior:
            eb = map_rows(np.exp, self.expected_log(components, n_threads) if elog is None
                          else elog, n_threads)
        else:
            eb = self.posterior_mean(components)
        return np.ascontiguousarray(eb.T, dtype=dtype)

    def kl(self, components, eta, elog=None, n_threads=1):
        """sum_k KL(Dirichlet(components_[k]) || Dirichlet(eta)).  Its terms are
        summed in the order LDA has always summed them (E_q[log p(beta | eta) -
        log q(beta)], negated), which keeps every fit's objective bitwise as it was;
        ``Categorical.kl`` (``base.dirichlet_kl``) is the same quantity."""
        V = components.shape[1]
        if elog is None:
            elog = self.expected_log(components, n_threads)
        return -float(np.sum((eta - components) * elog)
                      + np.sum(map_rows(gammaln, components, n_threads) - gammaln(eta))
                      + np.sum(gammaln(eta * V) - gammaln(components.sum(axis=1))))

    def log_prior_point(self, components, eta):
        """log Dirichlet(beta | eta + 1) at the point topics (the point methods' topic
        term of the objective)."""
        K, V = components.shape
        logb = np.log(self.posterior_mean(components))
        return float(np.sum(eta * logb) + K * (gammaln(V * (eta + 1)) - V * gammaln(eta + 1)))

    def topic_term(self, components, eta, posterior, elog=None, n_threads=1):
        """The topics' part of the objective: -KL (posterior) or the log prior of the
        point topics."""
        if posterior:
            return -self.kl(components, eta, elog, n_threads)
        return self.log_prior_point(components, eta)

    def update_eta(self, components, eta, posterior):
        """eta maximising the topics' term (symmetric Newton)."""
        K, V = components.shape
        if posterior:
            ss = self.expected_log(components).sum(axis=0)
            return float(dirichlet_newton(ss, K, np.full(V, eta), 0.0)[0])
        ss = np.log(self.posterior_mean(components)).sum(axis=0)
        return float(dirichlet_newton(ss, K, np.full(V, eta), 1.0)[0])

