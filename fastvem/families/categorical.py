"""The categorical (multinomial) observation family: K distributions over V words.

Topics are held as scikit-learn's ``components_``: pseudo-counts eta + expected
word-topic counts (K x V).  The same matrix is read three ways, by the method's
``update`` law:

- 'posterior' (meanfield): q(beta_k) = Dirichlet(components_[k]); the kernel's
  effective topics are exp(E_q[log beta]);
- 'point' (vem, crisp): beta_k = components_[k] / sum, the MAP estimate under a
  Dirichlet(eta + 1) prior (eta acts as pseudo-counts, as in scikit-learn);
- 'sample' (gibbs): components_ holds eta + the (averaged) sampled counts, and the
  point topics are read as above.

The kernels want the effective topics word-major (V x K): a word's K values
contiguous.
"""
import numpy as np
from scipy.special import gammaln, psi

__all__ = ["CategoricalFamily", "dirichlet_expectation", "dirichlet_newton"]


def dirichlet_expectation(params):
    """E[log p] under Dirichlet(params), row-wise (K x V)."""
    return psi(params) - psi(params.sum(axis=1, keepdims=True))


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


class CategoricalFamily:
    """K categorical distributions over n_words words."""

    def __init__(self, n_words):
        self.n_words = n_words

    @staticmethod
    def effective_topics(components, update, dtype, elog=None):
        """The kernel's topic matrix, word-major (V x K): exp E log beta under
        q(beta) for 'posterior', the normalised point topics otherwise.  elog:
        dirichlet_expectation(components), if already computed."""
        if update == "posterior":
            eb = np.exp(dirichlet_expectation(components) if elog is None else elog)
        else:
            eb = components / components.sum(axis=1, keepdims=True)
        return np.ascontiguousarray(eb.T, dtype=dtype)

    @staticmethod
    def point_topics(components):
        return components / components.sum(axis=1, keepdims=True)

    @staticmethod
    def components_from_stats(stats_t, eta):
        """components_ (K x V) = eta + statistics (given word-major, V x K)."""
        return eta + stats_t.T

    @staticmethod
    def bound_term(components, eta, update, elog=None):
        """The topics' part of the objective: E_q[log p(beta | eta) - log q(beta)] for a
        posterior; log Dirichlet(beta | eta + 1) of the point topics otherwise.  elog:
        dirichlet_expectation(components), if already computed."""
        K, V = components.shape
        if update == "posterior":
            if elog is None:
                elog = dirichlet_expectation(components)
            return float(np.sum((eta - components) * elog)
                         + np.sum(gammaln(components) - gammaln(eta))
                         + np.sum(gammaln(eta * V) - gammaln(components.sum(axis=1))))
        logb = np.log(components / components.sum(axis=1, keepdims=True))
        return float(np.sum(eta * logb) + K * (gammaln(V * (eta + 1)) - V * gammaln(eta + 1)))

    @staticmethod
    def update_eta(components, eta, update):
        """eta maximising the topics' term (symmetric Newton)."""
        K, V = components.shape
        if update == "posterior":
            ss = dirichlet_expectation(components).sum(axis=0)
            return float(dirichlet_newton(ss, K, np.full(V, eta), 0.0)[0])
        ss = np.log(components / components.sum(axis=1, keepdims=True)).sum(axis=0)
        return float(dirichlet_newton(ss, K, np.full(V, eta), 1.0)[0])
