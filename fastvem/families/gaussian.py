"""Gaussian observation family: full, tied, diag and spherical covariances.

The family knows how to (docs/architecture.md, axis 1)
- turn parameters into the kernel's *effective* parameters (means, precision
  factors, additive constants) -- point parameters here; the expected-log
  parameters of q(theta) use the same layout;
- run the fused kernel over a block of rows, adding centred sufficient
  statistics (:class:`fastvem.stats.GaussianStats`);
- turn statistics into a point estimate (the M-step, scikit-learn's formulas
  including ``reg_covar`` and the ``10 * eps`` floor on N_k);
- evaluate log p(x, z=k) chunk by chunk for predict / score.
It never looks at the method's name: the engine tells it the assignment mode.
"""
import math
import warnings

import numpy as np
from scipy import linalg

from .._ext import _gaussian as _k
from ..stats import GaussianStats
from .base import Family

COVARIANCE_TYPES = ("full", "tied", "diag", "spherical")
_MODES = {"softmax": 0, "argmax": 1, "sample": 2}
_MODE_NAMES = {v: k for k, v in _MODES.items()}


class KernelParams:
    """Effective parameters in the kernel's layout (see _ext/_gaussian.pyx), in
    the data's dtype.  The pass centres its statistics at ``ref``, the mean of
    the means (a point near the data) unless given; ``shift`` is ref broadcast to
    (K, D).  ``about(point)`` gives the same parameters centred elsewhere."""

    __slots__ = ("covariance_type", "fac", "bvec", "ref", "cst", "shift", "_source")

    def __init__(self, covariance_type, means, prec_chol, const, dtype, ref=None):
        K, D = means.shape
        self.covariance_type = covariance_type
        mu = np.asarray(means, dtype=np.float64)
        pc = np.asarray(prec_chol, dtype=np.float64)
        const = np.asarray(const, dtype=np.float64)
        self._source = (mu, pc, const, np.dtype(dtype))
        ref = mu.mean(axis=0) if ref is None else np.asarray(ref, dtype=np.float64)
        dm = mu - ref
        if covariance_type == "full":
            fac = pc.transpose(1, 2, 0).reshape(D, D * K)         # [i, d*K + k] = U_k[i, d]
            bvec = np.einsum("kd,kde->ek", dm, pc)                # (D, K)
        elif covariance_type == "tied":
            fac = pc
            bvec = (dm @ pc).T                                     # (D, K)
        elif covariance_type == "diag":
            prec = pc ** 2                                         # (K, D)
            fac = np.vstack([(prec * dm).T, -0.5 * prec.T])        # (2D, K)
            const = const - 0.5 * np.einsum("kd,kd->k", prec, dm * dm)
            bvec = np.zeros(1)
        else:
            prec = pc ** 2                                         # (K,)
            fac = np.vstack([(prec[:, None] * dm).T, -0.5 * prec[None, :]])  # (D+1, K)
            const = const - 0.5 * prec * np.einsum("kd,kd->k", dm, dm)
            bvec = np.zeros(1)
        self.fac = np.ascontiguousarray(fac, dtype=dtype).ravel()
        self.bvec = np.ascontiguousarray(bvec, dtype=dtype).ravel()
        self.ref = np.ascontiguousarray(ref, dtype=dtype)
        self.cst = np.ascontiguousarray(const, dtype=dtype)
        # the statistics are centred at the ref the kernel actually used
        self.shift = np.broadcast_to(self.ref.astype(np.float64), (K, D)).copy()

    def about(self, point):
        """The same parameters, with the pass's statistics centred at point (D,)."""
        mu, pc, const, dtype = self._source
        return KernelParams(self.covariance_type, mu, pc, const, dtype, ref=point)


def log_det_cholesky(prec_chol, covariance_type, n_features):
    """sum log diag(U_k): half the log-determinant of each precision."""
    if covariance_type == "full":
        return np.log(np.diagonal(prec_chol, axis1=1, axis2=2)).sum(axis=1)
    if covariance_type == "tied":
        return np.log(np.diag(prec_chol)).sum()
    if covariance_type == "diag":
        return np.log(prec_chol).sum(axis=1)
    return n_features * np.log(prec_chol)


def precision_cholesky(covariances, covariance_type):
    """Upper-triangular U with U U^T = inverse covariance (scikit-learn's convention).

    A covariance that is not positive definite (reg_covar = 0 on collapsed data,
    say) gets a growing diagonal jitter and a warning instead of an error; the
    jitter is added to the given covariances as well (in place), so that they and
    the factors describe the same Gaussian."""
    if covariance_type in ("full", "tied"):
        covs = covariances[None] if covariance_type == "tied" else covariances
        D = covs.shape[-1]
        eye = np.eye(D)
        out = np.empty_like(covs)
        for k, cov in enumerate(covs):
            jitter = 0.0
            while True:
                try:
                    chol = linalg.cholesky(cov + jitter * eye, lower=True)
                    break
                except linalg.LinAlgError:
                    scale = max(float(np.trace(cov)) / D, np.finfo(np.float64).tiny)
                    jitter = max(jitter * 10, 1e-10 * scale)
                    if jitter > 1e6 * scale:
                        raise ValueError(
                            "Fitting the mixture model failed because a component's covariance "
                            "is not positive definite; increase reg_covar or scale the data.")
            if jitter:
                warnings.warn(f"component {k}: covariance not positive definite; "
                              f"added {jitter:.3g} to its diagonal", RuntimeWarning)
                if cov.flags.writeable:
                    cov[np.arange(D), np.arange(D)] += jitter
            out[k] = linalg.solve_triangular(chol, eye, lower=True).T
        return out[0] if covariance_type == "tied" else out
    covs = np.asarray(covariances, dtype=np.float64)
    floor = np.finfo(np.float64).tiny
    if np.any(covs <= floor):
        warnings.warn("a variance is not positive; it was floored", RuntimeWarning)
        covs = np.maximum(covs, floor)
    return 1.0 / np.sqrt(covs)


def precision_cholesky_from_precisions(precisions, covariance_type):
    """U with U U^T = precision, upper triangular, from the precisions themselves."""
    if covariance_type == "full":
        return np.stack([np.flip(linalg.cholesky(np.flip(p), lower=True)) for p in precisions])
    if covariance_type == "tied":
        return np.flip(linalg.cholesky(np.flip(precisions), lower=True))
    return np.sqrt(precisions)


def covariances_from_precision_cholesky(prec_chol, covariance_type):
    if covariance_type == "full":
        return np.stack([linalg.inv(u @ u.T) for u in prec_chol])
    if covariance_type == "tied":
        return linalg.inv(prec_chol @ prec_chol.T)
    return 1.0 / prec_chol ** 2


def precisions_from_cholesky(prec_chol, covariance_type):
    if covariance_type == "full":
        return np.einsum("kij,klj->kil", prec_chol, prec_chol)
    if covariance_type == "tied":
        return prec_chol @ prec_chol.T
    return prec_chol ** 2


class GaussianFamily(Family):
    """One Gaussian observation family with a fixed covariance type, in the
    parameterisation of scikit-learn's GaussianMixture: theta is a dict of 'means',
    'covariances' and 'precisions_cholesky'; q(theta) adds 'mean_precision' and
    'degrees_of_freedom' (scikit-learn's BayesianGaussianMixture).  It runs its own
    pass (run_pass: the Cholesky kernels of _ext/_gaussian.pyx) and its
    statistics are GaussianStats (about a reference point per component); the
    engine reads neither by name."""

    name = "gaussian_cholesky"
    count_floor = 10 * np.finfo(np.float64).eps    # scikit-learn's floor on N_k

    def __init__(self, covariance_type="full", reg_covar=1e-6, n_features=None):
        if covariance_type not in COVARIANCE_TYPES:
            raise ValueError(f"covariance_type must be one of {COVARIANCE_TYPES}, "
                             f"got {covariance_type!r}")
        self.covariance_type = covariance_type
        self.reg_covar = float(reg_covar)
        self.n_features = n_features
        self.scatter = None   # (weight, centre, centred scatter) of the data, set per fit

    # ----- effective parameters -------------------------------------------------
    def log_normaliser(self, prec_chol, n_features):
        """log N(x | mu, P) = log_normaliser - 0.5 (x-mu)^T P (x-mu)."""
        return (log_det_cholesky(prec_chol, self.covariance_type, n_features)
                - 0.5 * n_features * math.log(2 * math.pi))

    def effective(self, theta):
        """(W, c): W the point parameters themselves (the kernel reads the means and
        precision factors), c their log normalisers."""
        return theta, self.log_normaliser(theta["precisions_cholesky"],
                                          theta["means"].shape[1])

    def expected_effective(self, q):
        """(W, c) of E_q log N(x | mean, Lambda): q's means and precision factors,
        the expected-log normalisers (one kernel for every method)."""
        return q, self.expected_log_normaliser(q, q["means"].shape[1])

    def effective_kernel_params(self, W, c, logw, dtype):
        """The kernel's parameters of an E-step: effective (W, c) and log weights."""
        return self.kernel_params(W["means"], W["precisions_cholesky"], c + logw, dtype)

    def kernel_params(self, means, prec_chol, const, dtype):
        return KernelParams(self.covariance_type, means, prec_chol, const, dtype)

    def run_pass(self, data, sample_weight, W, c, logw, mode, seed, n_threads):
        """The engine's pass: GaussianStats of data (an array, or a source of blocks
        with map_sum, each block's statistics summed in order)."""
        kp = self.effective_kernel_params(W, c, logw, data.dtype)
        mode = _MODE_NAMES[mode]
        if hasattr(data, "map_sum"):       # a distributed source: per block, summed in order
            return data.map_sum(_block_statistics, self, kp, mode, seed, n_threads)
        return self.statistics(data, sample_weight, kp, mode, seed, n_threads)

    # ----- statistics -----------------------------------------------------------
    def statistics(self, X, sample_weight, kp, mode, seed, n_threads, exact=True):
        """One fused pass over the rows of X: statistics centred at kp.ref, and
        (exact) those of a component that cancelled about kp.ref about its own
        mean (see _far_components).

        mode: 'softmax' | 'argmax' | 'sample' (how q(z) is formed)."""
        K, D = kp.shift.shape
        flat = np.zeros(_k.stats_size(_k.COVARIANCE_TYPES[self.covariance_type], K, D))
        w = _EMPTY if sample_weight is None else sample_weight
        _k.fit_pass(X, w, kp.fac, kp.bvec, kp.ref, kp.cst, flat,
                    self.covariance_type, _MODES[mode], int(seed) & 0xFFFFFFFFFFFFFFFF,
                    int(n_threads))
        weight = X.shape[0] if sample_weight is None else float(sample_weight.sum())
        stats = GaussianStats.from_flat(self.covariance_type, flat, kp.shift, weight)
        far = self._far_components(stats) if exact else []
        if far and mode == "sample":
            # a draw's labels come from the pass itself (keyed uniforms): the pass again
            # about each such component's mean draws the same labels
            for k, centre in far:
                kk = kp.about(centre)
                again = np.zeros_like(flat)
                _k.fit_pass(X, w, kk.fac, kk.bvec, kk.ref, kk.cst, again,
                            self.covariance_type, _MODES[mode],
                            int(seed) & 0xFFFFFFFFFFFFFFFF, int(n_threads))
                stats.take(k, GaussianStats.from_flat(self.covariance_type, again, kk.shift,
                                                      weight))
        elif far:
            ks = np.array([k for k, _ in far])

            def weights(block, lo):
                # one more E-step, block by block: no N x K array
                if mode == "softmax":
                    r = self.estep(block, kp, "resp", n_threads)[:, ks].astype(np.float64)
                else:
                    r = (self.estep(block, kp, "label", n_threads)[:, None]
                         == ks[None, :]).astype(np.float64)
                if sample_weight is not None:
                    r *= sample_weight[lo:lo + block.shape[0], None]
                return r
            self._resum_about_means(X, stats, far, weights)
        return stats

    @staticmethod
    def _resum_about_means(X, stats, far, weights, rows=1 << 16):
        """The far components' statistics again, each about its own mean, in place:
        weights(block, lo) gives the rows' weights for them (rows x F), block by
        block; the sums taken in float64 with BLAS on one thread, over only the rows
        a component holds any of."""
        from ..engine import blas_single_thread
        ks = [k for k, _ in far]
        centres = np.array([c for _, c in far], dtype=X.dtype).astype(np.float64)
        F, D = centres.shape
        nk, s1, s2 = np.zeros(F), np.zeros((F, D)), np.zeros((F, D, D))
        with blas_single_thread():
            for lo in range(0, X.shape[0], rows):
                block = np.ascontiguousarray(X[lo:lo + rows])
                r = weights(block, lo)
                for j in range(F):
                    on = np.flatnonzero(r[:, j])       # the rows it holds any of
                    rj = r[on, j]
                    diff = block[on].astype(np.float64) - centres[j]
                    nk[j] += rj.sum()
                    s1[j] += rj @ diff
                    s2[j] += (diff * rj[:, None]).T @ diff
        for j, k in enumerate(ks):
            stats.nk[k], stats.s1[k], stats.s2[k], stats.shift[k] = nk[j], s1[j], s2[j], centres[j]

    # The statistics of a pass are sums about one reference point for every
    # component; a full covariance is then S2 / N_k - d d^T (d: the mean less the
    # point), which cancels for a component that is tight and far from the point (one
    # row far out: its covariance is reg_covar I, the two terms ~ |d|^2).  Where the
    # second moments exceed the variance left after centring by this factor (float64:
    # 8 of 16 digits lost; float32 kernels: all 7 and more, so that only a result
    # worse than none is redone -- float32 trades such digits for speed), those
    # components' statistics are taken again, each about its own mean, by one more
    # E-step over the rows whatever their number (gibbs: one more pass each, which
    # draws the same labels).  Full covariances only: the diag and spherical kernels
    # expand the quadratic form about the point for their log-densities, which a
    # tight far component's exact variance would turn into rounding of thousands of
    # nats, so their variances keep the floor at 0 + reg_covar.
    _CANCELLATION = 1e8

    def _far_components(self, stats):
        """[(k, its mean)] of the live components whose full-covariance sums cancelled
        (see above); [] for the other covariance types."""
        if self.covariance_type != "full":
            return []
        limit = self._CANCELLATION
        reg = self.reg_covar
        s2 = np.diagonal(stats.s2, axis1=1, axis2=2)
        nk = stats.nk
        # what is left after centring is at least reg: when no second moment exceeds
        # limit * reg (checked on the sums, two reductions), nothing cancelled
        if s2.max(initial=0.0) <= limit * reg * nk.min(initial=np.inf):
            return []
        live = nk > 1e-10 * stats.weight
        inv = 1.0 / np.where(live, nk, 1.0)
        d = stats.s1 * inv[:, None]
        second = s2 * inv[:, None]
        left = second - d * d
        np.maximum(left, 0.0, out=left)
        left += reg
        # second > limit * left, without a division (no overflow; NaN compares false)
        far = np.flatnonzero((second > limit * left).any(axis=1) & live)
        return [(int(k), stats.shift[k] + d[k]) for k in far]

    def statistics_from_labels(self, X, sample_weight, labels, n_components, ref, n_threads):
        """Statistics of a hard assignment given as labels (initialisation), about
        ref, one block of one-hot responsibilities at a time."""
        stats = None
        K = n_components
        step = init_block_rows(K)
        for start in range(0, X.shape[0], step):
            stop = min(start + step, X.shape[0])
            resp = np.zeros((stop - start, K))
            resp[np.arange(stop - start), labels[start:stop]] = 1.0
            part = self.statistics_from_resp(X[start:stop], None if sample_weight is None
                                             else sample_weight[start:stop], resp, ref,
                                             n_threads)
            stats = part if stats is None else stats + part
        return stats

    def statistics_from_resp(self, X, sample_weight, resp, ref, n_threads):
        """Statistics of given responsibilities for a block of rows, about ref (D,)."""
        K = resp.shape[1]
        D = X.shape[1]
        flat = np.zeros(_k.stats_size(_k.COVARIANCE_TYPES[self.covariance_type], K, D))
        r = resp if sample_weight is None else resp * sample_weight[:, None]
        r = np.ascontiguousarray(r, dtype=X.dtype)
        ref = np.ascontiguousarray(ref, dtype=X.dtype)
        _k.accumulate(X, r, ref, flat, self.covariance_type, int(n_threads))
        weight = X.shape[0] if sample_weight is None else float(sample_weight.sum())
        stats = GaussianStats.from_flat(self.covariance_type, flat,
                                        np.broadcast_to(ref.astype(np.float64), (K, D)), weight)
        far = self._far_components(stats)
        if far:
            ks = [k for k, _ in far]
            self._resum_about_means(X, stats, far,
                                    lambda block, lo: r[lo:lo + block.shape[0], ks].astype(
                                        np.float64))
        return stats

    def estep(self, X, kp, want, n_threads):
        """E-step only, chunked: 'label' (N,), 'norm' log p(x) (N,), 'resp' or
        'logprob' (N, K) -- the last two are the only N x K outputs, by request."""
        N, K = X.shape[0], kp.cst.shape[0]
        out = np.empty((N, K) if want in ("resp", "logprob") else (0, K), dtype=X.dtype)
        norm = np.empty(N if want == "norm" else 0)
        label = np.empty(N if want == "label" else 0, dtype=np.intp)
        _k.estep(X, kp.fac, kp.bvec, kp.ref, kp.cst, out, norm, label,
                 self.covariance_type, want == "resp", int(n_threads))
        return {"label": label, "norm": norm, "resp": out, "logprob": out}[want]

    def prepare(self, X, sample_weight, n_threads, need_scatter=False):
        """Per-fit, parameter-free statistics, computed once: the weighted data
        scatter (tied M-steps need it; priors set from the data read it too)."""
        self.scatter = None
        if self.covariance_type == "tied" or need_scatter:
            self.scatter = data_scatter(X, sample_weight)

    # ----- M-step ----------------------------------------------------------------
    def point_estimate(self, stats, nk, previous=None):
        """ML parameters from centred statistics (nk includes the 10*eps floor):
        a dict with 'means', 'covariances' and 'precisions_cholesky'."""
        means, covs = self._moments(stats, nk)
        return {"means": means, "covariances": covs,
                "precisions_cholesky": precision_cholesky(covs, self.covariance_type)}

    def _moments(self, stats, nk):
        cov_type = self.covariance_type
        d = stats.s1 / nk[:, None]                  # new mean - shift
        means = stats.shift + d
        K, D = means.shape
        reg = self.reg_covar
        # a variance cannot be negative: round-off (float32 sums of a component that
        # holds one point, say) is floored at 0 before reg_covar is added
        if cov_type == "full":
            covs = stats.s2 / nk[:, None, None] - d[:, :, None] * d[:, None, :]
            diag = np.arange(D)
            covs[:, diag, diag] = np.maximum(covs[:, diag, diag], 0.0) + reg
        elif cov_type == "diag":
            covs = np.maximum(stats.s2 / nk[:, None] - d ** 2, 0.0) + reg
        elif cov_type == "spherical":
            covs = np.maximum((stats.s2 / nk - np.einsum("kd,kd->k", d, d)) / D, 0.0) + reg
        else:
            if self.scatter is None:
                raise RuntimeError("tied covariance needs prepare(X) first")
            _, centre, scatter = self.scatter
            dm = means - centre
            covs = (scatter - np.einsum("k,ki,kj->ij", nk, dm, dm)) / nk.sum()
            covs[np.arange(D), np.arange(D)] += reg
        return means, covs

    def reseed(self, weights, theta, empty):
        """Re-seed each empty component by splitting the widest live one along
        its principal axis (weights halved, covariance copied)."""
        ct = self.covariance_type
        weights = weights.copy()
        means = theta["means"].copy()
        covs = np.array(theta["covariances"], copy=True)
        K, D = means.shape
        dead = set(int(k) for k in empty)
        for k in sorted(dead):
            if ct == "full":
                spread = np.trace(covs, axis1=1, axis2=2)
            elif ct == "tied":
                spread = np.full(K, np.trace(covs))
            elif ct == "diag":
                spread = covs.sum(1)
            else:
                spread = covs * D
            score = np.where([j not in dead for j in range(K)], weights * spread, -np.inf)
            j = int(np.argmax(score))
            if ct in ("full", "tied"):
                vals, vecs = np.linalg.eigh(covs[j] if ct == "full" else covs)
                axis = vecs[:, -1] * np.sqrt(max(vals[-1], 0.0))
            else:
                axis = np.zeros(D)
                i = int(np.argmax(covs[j])) if ct == "diag" else 0
                axis[i] = np.sqrt(covs[j, i] if ct == "diag" else covs[j])
            means[k] = means[j] + 0.5 * axis
            means[j] = means[j] - 0.5 * axis
            weights[j] *= 0.5
            weights[k] = weights[j]
            if ct != "tied":
                covs[k] = covs[j]
            dead.discard(k)
        return weights / weights.sum(), {
            "means": means, "covariances": covs,
            "precisions_cholesky": precision_cholesky(covs, ct)}, sorted(int(k) for k in empty)

    # ----- mean field: q(theta) -------------------------------------------------
    def to_unconstrained(self, theta):
        """Point parameters as one unconstrained vector (for extrapolation, e.g.
        SQUAREM; the engine adds the log weights): the means, the precision Cholesky
        factors' upper triangles with the log of their diagonals."""
        u = np.asarray(theta["precisions_cholesky"], dtype=np.float64)
        if self.covariance_type in ("full", "tied"):
            D = u.shape[-1]
            iu = np.triu_indices(D)
            uu = u[..., iu[0], iu[1]].copy()
            diag = iu[0] == iu[1]
            uu[..., diag] = np.log(uu[..., diag])
            chol = uu.ravel()
        else:
            chol = np.log(u).ravel()
        return np.concatenate([theta["means"].ravel(), chol])

    def from_unconstrained(self, vec):
        """The inverse of to_unconstrained (None if not finite); needs n_features."""
        if not np.all(np.isfinite(vec)):
            return None
        ct, D = self.covariance_type, self.n_features
        if D is None:
            raise RuntimeError("from_unconstrained needs n_features: "
                               "GaussianFamily(..., n_features=D)")
        per = {"full": D + D * (D + 1) // 2, "diag": 2 * D, "spherical": D + 1}.get(ct)
        K = (len(vec) - D * (D + 1) // 2) // D if ct == "tied" else len(vec) // per
        means = vec[:K * D].reshape(K, D)
        rest = vec[K * D:]
        if ct in ("full", "tied"):
            iu = np.triu_indices(D)
            diag = iu[0] == iu[1]
            n = 1 if ct == "tied" else K
            uu = rest.reshape(n, -1).copy()
            uu[:, diag] = np.exp(uu[:, diag])
            u = np.zeros((n, D, D))
            u[:, iu[0], iu[1]] = uu
            u = u[0] if ct == "tied" else u
        else:
            u = np.exp(rest).reshape((K, D) if ct == "diag" else (K,))
        if not np.all(np.isfinite(u)):
            return None
        return {"means": means, "covariances": covariances_from_precision_cholesky(u, ct),
                "precisions_cholesky": u}

    def posterior(self, stats, nk, prior):
        """q(mean, Lambda) per component from statistics (nk with its eps floor),
        scikit-learn's update: the normalised covariances (W^-1 / dof) and their
        precision Cholesky factors, the mean precisions and degrees of freedom."""
        ct = self.covariance_type
        xk, sk = self._moments(stats, nk)
        K, D = xk.shape
        b0, m0, v0, c0 = (prior.mean_precision_prior, prior.mean_prior,
                          prior.degrees_of_freedom_prior, prior.covariance_prior)
        beta = b0 + nk
        means = (b0 * m0 + nk[:, None] * xk) / beta[:, None]
        diff = xk - m0
        if ct == "full":
            dof = v0 + nk
            covs = (c0 + nk[:, None, None] * sk
                    + (nk * b0 / beta)[:, None, None] * diff[:, :, None] * diff[:, None, :])
            covs /= dof[:, None, None]
        elif ct == "tied":
            dof = v0 + nk.sum() / K
            covs = c0 + sk * nk.sum() / K + b0 / K * ((nk / beta) * diff.T) @ diff
            covs /= dof
        elif ct == "diag":
            dof = v0 + nk
            covs = c0 + nk[:, None] * (sk + (b0 / beta)[:, None] * diff ** 2)
            covs /= dof[:, None]
        else:
            dof = v0 + nk
            covs = c0 + nk * (sk + b0 / beta * np.mean(diff ** 2, 1))
            covs /= dof
        return {"means": means, "mean_precision": beta, "degrees_of_freedom": dof,
                "covariances": covs, "precisions_cholesky": precision_cholesky(covs, ct)}

    def expected_log_normaliser(self, q, n_features):
        """Per-component constant of E_q[log N(x | mean, Lambda)] when the
        quadratic form uses q's precision factor: the kernel then returns the
        expected log-density (one kernel for every method)."""
        D = n_features
        dof = q["degrees_of_freedom"]
        return (self.log_normaliser(q["precisions_cholesky"], D) - 0.5 * D * np.log(dof)
                + 0.5 * (_log_lambda(dof, D) - D / q["mean_precision"]))

    def posterior_bound_terms(self, q):
        """The q(theta)-dependent part of scikit-learn's variational lower bound
        (evaluated right after the update): -log Wishart norm - D/2 sum log beta."""
        n_components, D = q["means"].shape
        dof = q["degrees_of_freedom"]
        ldc = (log_det_cholesky(q["precisions_cholesky"], self.covariance_type, D)
               - 0.5 * D * np.log(dof))
        lw = _log_wishart_norm(dof, ldc, D)
        log_wishart = float(np.sum(lw)) * (n_components if self.covariance_type == "tied" else 1)
        return -log_wishart - 0.5 * D * float(np.sum(np.log(q["mean_precision"])))

    def bound(self, stats, q, conc, prior, weight_prior):
        """scikit-learn's variational lower bound (total), right after the update:
        H[q(z)] + the q(theta) terms + the weights' (it omits constant terms)."""
        return (stats.entropy + self.posterior_bound_terms(q)
                + weight_prior.bound_term(conc))

    def predictive_student_t(self, q):
        """Posterior predictive of each component under q(mean, Lambda): a
        Student-t with (dof, means, precision Cholesky of the scale).  Full /
        tied: Wishart, dof = nu + 1 - D; diag: per-dimension Normal-Gamma,
        dof = nu; spherical: shared-precision Normal-Gamma, dof = D nu (the same
        models the Gibbs sampler draws from; cov: q's normalised covariance)."""
        ct = self.covariance_type
        D = q["means"].shape[1]
        beta, nu = q["mean_precision"], np.asarray(q["degrees_of_freedom"], dtype=np.float64)
        nu = np.broadcast_to(nu, beta.shape)
        if ct in ("full", "tied"):
            dof = nu + 1.0 - D
        elif ct == "diag":
            dof = nu.copy()
        else:
            dof = D * nu
        # Wishart: scale = W^-1 (1 + beta) / (beta dof) with W^-1 = nu cov; Normal-Gamma:
        # scale^2 = rate (1 + beta) / (shape beta) = cov (1 + beta) / beta
        factor = ((1.0 + beta) * nu / (beta * dof) if ct in ("full", "tied")
                  else (1.0 + beta) / beta)
        # precision Cholesky of the scale: U / sqrt(factor) (tied: per component)
        pc = q["precisions_cholesky"]
        if ct == "full":
            u = pc / np.sqrt(factor)[:, None, None]
        elif ct == "tied":
            u = pc[None] / np.sqrt(factor)[:, None, None]
        elif ct == "diag":
            u = pc / np.sqrt(factor)[:, None]
        else:
            u = pc / np.sqrt(factor)
        return dof, u

    # ----- gibbs: draws of theta | z ---------------------------------------------
    def draw(self, stats, nk, prior, rng):
        """One draw of (means, precisions) from the conjugate posterior given a
        hard assignment's statistics (nk: their exact counts; empty components draw
        from the prior).  Each scatter gets nk * reg_covar on its diagonal, as in
        scikit-learn's (and meanfield's) Wishart posteriors.  Full / tied:
        Normal-Wishart; diag: Normal-Gamma per
        dimension; spherical: Normal-Gamma with one shared precision."""
        ct = self.covariance_type
        nk = stats.nk
        K, D = stats.s1.shape
        reg = self.reg_covar      # as scikit-learn's variational posteriors: + nk * reg_covar
        safe = np.maximum(nk, np.finfo(np.float64).tiny)
        d = stats.s1 / safe[:, None]
        xk = stats.shift + d
        b0, m0, v0, c0 = (prior.mean_precision_prior, prior.mean_prior,
                          prior.degrees_of_freedom_prior, prior.covariance_prior)
        beta = b0 + nk
        m = (b0 * m0 + nk[:, None] * xk) / beta[:, None]
        diff = xk - m0
        shrink = b0 * nk / beta
        if ct in ("full", "tied"):
            if ct == "full":
                scatter = stats.s2 - nk[:, None, None] * d[:, :, None] * d[:, None, :]
                scatter = scatter + (nk * reg)[:, None, None] * np.eye(D)
                winv = (c0 + scatter + shrink[:, None, None] * diff[:, :, None] * diff[:, None, :])
                dof = v0 + nk
                lam = np.stack([_wishart(dof[k], winv[k], rng) for k in range(K)])
            else:
                _, centre, total_scatter = self.scatter
                dm = xk - centre
                within = (total_scatter - np.einsum("k,ki,kj->ij", nk, dm, dm)
                          + nk.sum() * reg * np.eye(D))
                winv = c0 + within + np.einsum("k,ki,kj->ij", shrink, diff, diff)
                lam1 = _wishart(v0 + nk.sum(), winv, rng)
                lam = np.broadcast_to(lam1, (K, D, D))
            # mean | Lambda ~ N(m, (beta Lambda)^-1): m + C^-T z with C C^T = beta Lambda
            means = np.stack([m[k] + linalg.solve_triangular(
                linalg.cholesky(beta[k] * lam[k], lower=True).T, rng.standard_normal(D),
                lower=False) for k in range(K)])
            prec = lam if ct == "full" else lam1
            pc = precision_cholesky_from_precisions(prec, ct)
            covs = covariances_from_precision_cholesky(pc, ct)
        elif ct == "diag":
            s2 = stats.s2 - nk[:, None] * d ** 2 + nk[:, None] * reg
            rate = 0.5 * (c0 + s2 + shrink[:, None] * diff ** 2)
            lam = rng.gamma(0.5 * (v0 + nk)[:, None], 1.0 / rate)
            means = m + rng.standard_normal((K, D)) / np.sqrt(beta[:, None] * lam)
            covs = 1.0 / lam
            pc = np.sqrt(lam)
        else:
            s2 = stats.s2 - nk * np.einsum("kd,kd->k", d, d) + nk * D * reg
            rate = 0.5 * (D * c0 + s2 + shrink * np.einsum("kd,kd->k", diff, diff))
            lam = rng.gamma(0.5 * D * (v0 + nk), 1.0 / rate)
            means = m + rng.standard_normal((K, D)) / np.sqrt(beta * lam)[:, None]
            covs = 1.0 / lam
            pc = np.sqrt(lam)
        return {"means": means, "covariances": covs, "precisions_cholesky": pc}


def _block_statistics(block, family, kp, mode, seed, n_threads):
    """The statistics of one block of rows (runs on a Dask worker)."""
    block = np.ascontiguousarray(block, dtype=kp.fac.dtype)
    return family.statistics(block, None, kp, mode, seed, n_threads)


def _wishart(dof, scale_inv, rng):
    """A Wishart(dof, scale) draw with scale = inv(scale_inv), by Bartlett's
    decomposition (E = dof * scale)."""
    D = scale_inv.shape[0]
    # any L with L L^T = scale will do: with scale_inv = C C^T, L = C^-T (no inverse formed)
    C = linalg.cholesky(scale_inv, lower=True)
    L = linalg.solve_triangular(C, np.eye(D), lower=True).T
    A = np.tril(rng.standard_normal((D, D)), -1)
    A[np.diag_indices(D)] = np.sqrt(rng.chisquare(dof - np.arange(D)))
    LA = L @ A
    return LA @ LA.T


_EMPTY = np.zeros(0)


def data_scatter(X, sample_weight, step=1 << 16):
    """Weighted total and centred scatter of X (two chunked passes, float64)."""
    n, D = X.shape
    w = None if sample_weight is None else sample_weight
    total = float(n if w is None else w.sum())
    acc = np.zeros(D)
    for s in range(0, n, step):
        blk = np.asarray(X[s:s + step], dtype=np.float64)
        acc += blk.sum(0) if w is None else w[s:s + step] @ blk
    centre = acc / total
    scatter = np.zeros((D, D))
    for s in range(0, n, step):
        blk = np.asarray(X[s:s + step], dtype=np.float64) - centre
        scatter += (blk.T @ blk) if w is None else (blk.T * w[s:s + step]) @ blk
    return total, centre, scatter


def pool_scatter(old, new, a, b):
    """(weight, centre, centred scatter) of a * old + b * new, pooled exactly."""
    wn, cn, sn = new
    if old is None or a == 0.0:
        return (b * wn, cn.copy(), b * sn)
    wo, co, so = old
    w = a * wo + b * wn
    c = (a * wo * co + b * wn * cn) / w
    do, dn = co - c, cn - c
    return (w, c, a * so + b * sn + a * wo * np.outer(do, do) + b * wn * np.outer(dn, dn))


def init_block_rows(n_components):
    """Rows per block of an initialisation's responsibilities: at most ~2 MB of
    float64 whatever K, so that no N x K array exists (at least 256 rows)."""
    return max(256, (1 << 18) // max(int(n_components), 1))


class GaussianWishartPrior:
    """Conjugate prior of a Gaussian component (scikit-learn's
    BayesianGaussianMixture parameterisation): mean ~ N(mean_prior,
    (mean_precision_prior * Lambda)^-1), Lambda ~ Wishart(degrees_of_freedom_prior,
    covariance_prior^-1) -- diagonal / spherical variants per covariance type."""

    def __init__(self, mean_prior, mean_precision_prior, degrees_of_freedom_prior,
                 covariance_prior):
        self.mean_prior = np.asarray(mean_prior, dtype=np.float64)
        self.mean_precision_prior = float(mean_precision_prior)
        self.degrees_of_freedom_prior = float(degrees_of_freedom_prior)
        self.covariance_prior = np.asarray(covariance_prior, dtype=np.float64)


def _log_lambda(dof, n_features):
    """E[log |Lambda|] of a Wishart(dof) with a normalised scale, less log |W|."""
    from scipy.special import digamma
    dof = np.asarray(dof, dtype=np.float64)
    return n_features * math.log(2.0) + np.sum(
        digamma(0.5 * (dof - np.arange(n_features)[:, None])), 0)


def _log_wishart_norm(dof, log_det_prec_chol, n_features):
    """log normaliser of the Wishart, without the constant log(pi) term."""
    from scipy.special import gammaln
    dof = np.asarray(dof, dtype=np.float64)
    return -(dof * log_det_prec_chol + dof * n_features * 0.5 * math.log(2.0)
             + np.sum(gammaln(0.5 * (dof - np.arange(n_features)[:, None])), 0))
