"""The observation-family protocol (docs/architecture.md: the first axis).

A family knows the law p(x | theta) of one row and nothing about the structure
(mixture, HMM, topic model) or the method.  The engine calls, by the method's
fields and never by its name:

    kernel side   features (a name the compiled row driver knows, or the address of
                  a nogil C function), aux (its extra array), n_statistics S,
                  prepare(X) -> the kernel's array of the data
    effective     effective(theta) -> (W, c): the (K x S, K) arrays with
                  log p(x | theta_k) = T(x) . W[k] + c[k] + log h(x)   (point methods)
                  expected_effective(q) -> (W, c): the same for E_q log p(x | theta_k)
                  (mean field)
    updates       point_estimate(stats, nk, previous) -> theta (MAP / ML)
                  posterior(stats, nk, prior) -> q (conjugate)
                  sample_posterior(q, rng) -> theta (gibbs; rng a numpy Generator,
                  seeded by the engine with (seed, sweep)); draw(stats, nk,
                  prior, rng) -> theta, by default the two in turn
                  count_floor: added to nk before point / posterior updates
                  posterior_mean(q) -> theta, kl(q, prior) -> KL(q || prior),
                  bound(stats, q, conc, prior, weight_prior) -> the ELBO
                  default_prior(X, sample_weight) -> prior (from the data's own
                  statistics, the rows weighted as frequencies)
    model         n_parameters(K), sample_rows(theta_k, n, rng),
                  dense_features(data) -> T(x) of the rows (the k-means start),
                  describe(theta) -> the parameters by name (means, rates, ...)
    storage       pack_posterior(q) -> one (P, K, width) array, unpack_posterior
                  its inverse; kernel_data(data) and take_rows(data, rows): what
                  the driver reads and a subset of the prepared rows

theta is one (K x S) array of mean parameters, E[T(x)] under each component:
the probabilities (Bernoulli, categorical: every feature's probability vector,
side by side) or the rates (Poisson).  stats are the weighted sums of T(x) per
component (K x S) and nk the weighted counts (K): additive, so chunks, threads,
mini-batches, memoized passes and Dask blocks all combine them with `+`.
"""
import numpy as np
from scipy.special import digamma, gammaln

__all__ = ["Family", "check_row_family", "dirichlet_kl", "beta_kl", "gamma_kl"]


class Family:
    """Base class of the observation families; see the module docstring."""

    def _lacks(self, method):
        return (f"the family {type(self).__name__} does not implement {method}, which this "
                "use of it needs")

    name = "family"
    count_floor = 0.0          # added to the counts before a point or posterior update
    features = None            # the row driver's built-in features, or "address"
    address = 0                # the features function's address when features == "address"

    def aux(self):
        return None

    def n_statistics(self):
        raise NotImplementedError(self._lacks("n_statistics"))

    def posterior_width(self):
        """The width of each of q's arrays (K x width)."""
        return self.n_statistics()

    def pack_posterior(self, q):
        """q as one (n_posterior_arrays, K, width) array (posterior_, save)."""
        return np.stack(q) if isinstance(q, tuple) else np.asarray(q)[None]

    def unpack_posterior(self, post):
        return post[0] if post.shape[0] == 1 else tuple(post)

    def kernel_data(self, data):
        """What the row driver reads for the prepared data."""
        return data

    def take_rows(self, data, rows):
        """The prepared data of a subset of its rows."""
        return np.ascontiguousarray(data[rows])

    def describe(self, theta):
        """The fitted parameters by name."""
        return {"params": theta}

    def check_theta(self, theta, name, structure=True):
        """ValueError naming name where theta (K x S, finite) is outside the
        family's parameter space (a loaded file's parameters); structure=False
        leaves out constraints an average over draws need not keep (a tied
        covariance)."""

    def check_posterior(self, post, name):
        """The same for a packed q (pack_posterior's form, finite): here every
        conjugate parameter is positive (Beta, Gamma, Dirichlet)."""
        if not np.all(post > 0):
            raise ValueError(f"{name} must hold positive conjugate parameters")

    def split(self, theta_k):
        """Two parameter rows (mean parameters) either side of theta_k, half a
        standard deviation apart along the family's widest statistic: where an
        empty component is re-seeded (None: the family does not split)."""
        return None

    def reseed(self, weights, theta, empty):
        """Re-seed each empty component by splitting the heaviest live one (its
        weight halved between the two): returns (weights, theta, the components
        re-seeded), or the input unchanged where the family does not split."""
        weights, theta = weights.copy(), theta.copy()
        dead = set(int(k) for k in empty)
        done = []
        for k in sorted(dead):
            live = [j for j in range(len(weights)) if j not in dead]
            if not live:
                break
            j = max(live, key=lambda i: (weights[i], -i))
            pair = self.split(theta[j])
            if pair is None:
                break
            theta[j], theta[k] = pair
            weights[j] *= 0.5
            weights[k] = weights[j]
            dead.discard(k)
            done.append(k)
        return weights / weights.sum(), theta, done

    def log_prior(self, theta):
        """The log density (up to a constant) of the prior whose MAP point_estimate
        takes: with the log-likelihood, the objective em then never decreases (0 for
        a maximum-likelihood estimate)."""
        return 0.0

    def to_unconstrained(self, theta):
        """theta (K x S) in unconstrained coordinates (K x U) for extrapolation
        (SQUAREM); None: the family has none."""
        return None

    def from_unconstrained(self, u):
        """The inverse of to_unconstrained (None where it gives no valid theta)."""
        return None

    def rows(self, data, lo, hi):
        """The prepared rows lo..hi-1 (a view where the layout allows it)."""
        return data[lo:hi]

    def initial_statistics(self, theta, nk):
        """The statistics (K x S) of nk rows at the point theta: where mean field and
        stepwise EM start from a point.  theta holds mean parameters here."""
        return theta * nk[:, None]

    def dense_features(self, data):
        """T(x) of the prepared rows as a (sparse or dense) float matrix: what the
        k-means start clusters."""
        return np.asarray(data, dtype=np.float64)

    def prepare(self, X, fitting=False):
        raise NotImplementedError(self._lacks("prepare"))

    def effective(self, theta):
        raise NotImplementedError(self._lacks("effective"))

    def expected_effective(self, q):
        raise NotImplementedError(self._lacks("expected_effective"))

    def point_estimate(self, stats, nk, previous):
        raise NotImplementedError(self._lacks("point_estimate"))

    def posterior(self, stats, nk, prior):
        raise NotImplementedError(self._lacks("posterior"))

    def sample_posterior(self, q, rng):
        raise NotImplementedError(self._lacks("sample_posterior"))

    def draw(self, stats, nk, prior, rng):
        """theta | z for gibbs: a draw from the conjugate posterior of a sweep's
        statistics (nk: their exact counts)."""
        return self.sample_posterior(self.posterior(stats, nk, prior), rng)

    def bound(self, stats, q, conc, prior, weight_prior):
        """The evidence lower bound (total, every normalising constant) of a mixture:
        E_q log p(x, z) through the E-step's statistics, + H[q(z)], - KL(q(pi)) -
        KL(q(theta)), with q updated from those statistics (stats: a RowStats)."""
        W, c = self.expected_effective(q)
        elogw = weight_prior.expected_log_weights(conc)
        return (np.sum(W * stats.stats) + np.sum((c + elogw) * stats.nk) + stats.totals[2]
                + stats.totals[1] - weight_prior.kl(conc) - self.kl(q, prior))

    def posterior_mean(self, q):
        raise NotImplementedError(self._lacks("posterior_mean"))

    def kl(self, q, prior):
        raise NotImplementedError(self._lacks("kl"))

    def default_prior(self, X, sample_weight=None):
        raise NotImplementedError(self._lacks("default_prior"))

    def n_parameters(self, n_components):
        raise NotImplementedError(self._lacks("n_parameters"))

    def sample_rows(self, theta_k, n, rng):
        raise NotImplementedError(self._lacks("sample_rows"))


def check_row_family(fam, what="family"):
    """A family object an estimator runs on the row or sequence driver: refused
    (ValueError) when it has no driver form -- GaussianFamily, GaussianMixture's
    own family, which runs its own kernels."""
    if fam.features is None:
        raise ValueError(f"{what}: a {type(fam).__name__} is not a family of the row driver "
                         "(GaussianFamily is GaussianMixture's own); use 'gaussian', "
                         "'gaussian_diag', 'gaussian_tied', 'gaussian_spherical' or "
                         "fastvem.families.GaussianFull / GaussianDiag / GaussianTied / "
                         "GaussianSpherical")
    return fam


def dirichlet_kl(q, p):
    """KL(Dirichlet(q) || Dirichlet(p)) over the last axis (summed over the rest)."""
    q = np.asarray(q, dtype=np.float64)
    p = np.broadcast_to(np.asarray(p, dtype=np.float64), q.shape)
    sq = q.sum(-1)
    return float(np.sum(gammaln(sq) - gammaln(p.sum(-1)))
                 - np.sum(gammaln(q) - gammaln(p))
                 + np.sum((q - p) * (digamma(q) - digamma(sq)[..., None])))


def beta_kl(a, b, a0, b0):
    """sum of KL(Beta(a, b) || Beta(a0, b0)), elementwise."""
    from scipy.special import betaln
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    return float(np.sum(betaln(a0, b0) - betaln(a, b) + (a - a0) * digamma(a)
                        + (b - b0) * digamma(b) + (a0 - a + b0 - b) * digamma(a + b)))


def gamma_kl(shape, rate, shape0, rate0):
    """sum of KL(Gamma(shape, rate) || Gamma(shape0, rate0)), elementwise."""
    s, t = np.asarray(shape, dtype=np.float64), np.asarray(rate, dtype=np.float64)
    return float(np.sum((s - shape0) * digamma(s) - gammaln(s) + gammaln(shape0)
                        + shape0 * (np.log(t) - np.log(rate0)) + s * (rate0 - t) / t))
