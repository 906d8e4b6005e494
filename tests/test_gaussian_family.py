"""The full-covariance Gaussian family on the shared row driver (GaussianFull,
``fastvem.Mixture('gaussian')``): em equals scikit-learn's GaussianMixture(full) and
mean field equals scikit-learn's BayesianGaussianMixture(full) iterate for iterate
from the same start, on iris; gibbs recovers the truth; products and threads."""
import warnings

import numpy as np
import pytest
from sklearn.datasets import load_iris
from sklearn.metrics import adjusted_rand_score
from sklearn.mixture import BayesianGaussianMixture as SkBGMM
from sklearn.mixture import GaussianMixture as SkGMM

import fastvem
from fastvem.families import GaussianFull, Product


def _quiet(est, X):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return est.fit(X)


def _iris_start(K=3, seed=0):
    X = load_iris().data
    rng = np.random.RandomState(seed)
    resp = rng.dirichlet(np.ones(K), len(X))
    return X, resp


@pytest.mark.parametrize("reference", [None, "zeros"])
def test_em_equals_scikit_learn_full_on_iris(reference):
    X, _ = _iris_start()
    K = 3
    rng = np.random.RandomState(1)
    w0 = np.full(K, 1.0 / K)
    m0 = X[rng.choice(len(X), K, replace=False)]
    c0 = np.tile(np.cov(X.T), (K, 1, 1))
    for n_iter in (1, 4, 25):
        sk = _quiet(SkGMM(K, covariance_type="full", weights_init=w0, means_init=m0,
                          precisions_init=np.linalg.inv(c0), max_iter=n_iter, tol=0), X)
        fam = GaussianFull(4, reference=None if reference is None else np.zeros(4))
        fam.prepare(X, fitting=True)
        est = _quiet(fastvem.Mixture(fam, K, max_iter=n_iter, tol=0, weights_init=w0,
                                     params_init=fam.theta_from(m0, c0)), X)
        d = est.component_params_
        np.testing.assert_allclose(d["means"], sk.means_, rtol=1e-8, atol=1e-9)
        np.testing.assert_allclose(d["covariances"], sk.covariances_, rtol=1e-7, atol=1e-9)
        np.testing.assert_allclose(est.weights_, sk.weights_, atol=1e-9)
        assert abs(est.lower_bound_ - sk.lower_bound_) < 1e-8
        np.testing.assert_allclose(est.score_samples(X), sk.score_samples(X), atol=1e-8)


class _FromResp(SkBGMM):
    """scikit-learn's BayesianGaussianMixture started from given responsibilities."""

    def __init__(self, resp=None, **kw):
        super().__init__(**kw)
        self.resp = resp

    def _initialize_parameters(self, X, random_state, **kwargs):
        self._initialize(X, self.resp)          # (newer versions pass xp, unused here)


@pytest.mark.parametrize("prior_type", ["dirichlet_distribution", "dirichlet_process"])
def test_meanfield_equals_scikit_learn_bayesian_full_on_iris(prior_type):
    """From the same responsibilities (sklearn's first M-step = our q from the
    start's statistics), every iterate of q equals BayesianGaussianMixture's."""
    X, resp = _iris_start(K=4)
    K = 4
    nk = resp.sum(0)
    fam = GaussianFull(4)
    fam.prepare(X, fitting=True)
    xc = X - fam.ref
    mu = resp.T @ xc / nk[:, None]
    second = np.einsum("nk,ni,nj->kij", resp, xc, xc) / nk[:, None, None]
    theta0 = np.hstack((mu, second[:, np.triu_indices(4)[0], np.triu_indices(4)[1]]))
    for n_iter in (1, 5, 30):
        sk = _quiet(_FromResp(resp=resp, n_components=K, covariance_type="full",
                              weight_concentration_prior_type=prior_type,
                              weight_concentration_prior=0.3, reg_covar=0.0,
                              max_iter=n_iter, tol=0, init_params="random"), X)
        est = _quiet(fastvem.Mixture(fam, K, method="meanfield", max_iter=n_iter, tol=0,
                                     weights_init=nk / nk.sum(), params_init=theta0,
                                     weight_concentration_prior_type=prior_type,
                                     weight_concentration_prior=0.3), X)
        m, beta, nu, Winv = fam.unpack_posterior(est.posterior_)
        np.testing.assert_allclose(m + fam.ref, sk.means_, rtol=1e-8, atol=1e-9)
        np.testing.assert_allclose(beta, sk.mean_precision_, rtol=1e-10)
        np.testing.assert_allclose(nu, sk.degrees_of_freedom_, rtol=1e-10)
        np.testing.assert_allclose(Winv / nu[:, None, None], sk.covariances_, rtol=1e-7,
                                   atol=1e-10)
        np.testing.assert_allclose(est.weights_, sk.weights_, atol=1e-9)
        np.testing.assert_allclose(est.predict_proba(X), sk.predict_proba(X), atol=1e-7)
        lb = np.asarray(est.lower_bounds_)
        assert np.all(np.diff(lb) >= -1e-9 * np.abs(lb[1:]))


def _blobs(N=3000, seed=0):
    rng = np.random.RandomState(seed)
    z = rng.randint(3, size=N)
    means = np.array([[0.0, 0.0, 0.0], [5.0, 0.0, 2.0], [0.0, 6.0, -2.0]])
    A = np.array([[1.0, 0.8, 0.0], [0.0, 0.6, 0.3], [0.0, 0.0, 0.5]])
    return means[z] + rng.randn(N, 3) @ A, z


@pytest.mark.parametrize("method", ["em", "vem", "crisp", "meanfield", "gibbs"])
def test_every_method_recovers_correlated_blobs(method):
    X, z = _blobs()
    est = _quiet(fastvem.Mixture("gaussian", 3, method=method, random_state=0, n_samples=30,
                                 burn_in=30), X)
    assert adjusted_rand_score(z, est.predict(X)) > 0.97
    cov = est.component_params_["covariances"]
    assert np.all(np.linalg.eigvalsh(cov) > 0)
    if method in ("em", "vem", "meanfield"):
        lb = np.asarray(est.lower_bounds_)
        assert np.all(np.diff(lb) >= -1e-9 * np.abs(lb[1:]))
    Xs, _ = est.sample(500)
    assert Xs.shape == (500, 3) and np.all(np.isfinite(Xs))


def test_threads_float32_squarem_and_a_product():
    X, z = _blobs(N=9000, seed=1)
    fits = [_quiet(fastvem.Mixture("gaussian", 3, random_state=0, max_iter=10, tol=0,
                                   n_threads=t), X) for t in (1, 2, 3)]
    for f in fits[1:]:
        assert np.array_equal(f.params_, fits[0].params_)
    f32 = _quiet(fastvem.Mixture("gaussian", 3, random_state=0, max_iter=10, tol=0),
                 X.astype(np.float32))
    assert f32.family_.features == "gaussian_full_float32"
    np.testing.assert_allclose(f32.component_params_["means"],
                               fits[0].component_params_["means"], atol=1e-3)
    fast = _quiet(fastvem.Mixture("gaussian", 3, random_state=0, tol=1e-8, max_iter=500,
                                  accelerate="squarem"), X)
    assert adjusted_rand_score(z, fast.predict(X)) > 0.97
    # a product of one full Gaussian over every column is that family
    one = _quiet(fastvem.Mixture(Product([("gaussian", [0, 1, 2])]), 3, random_state=0,
                                 max_iter=10, tol=0), X)
    np.testing.assert_allclose(one.params_, fits[0].params_, rtol=1e-12, atol=1e-12)
    # mixed: a full Gaussian on two correlated columns, a category on a third
    rng = np.random.RandomState(2)
    codes = (z + (rng.rand(len(z)) < 0.2)) % 3
    mixed = np.column_stack([X[:, :2], codes])
    est = _quiet(fastvem.Mixture(Product([("gaussian", [0, 1]), ("categorical", [2])]), 3,
                                 method="meanfield", random_state=0), mixed)
    assert adjusted_rand_score(z, est.predict(mixed)) > 0.95


def test_gaussian_family_refusals():
    X, _ = _blobs(N=200)
    with pytest.raises(ValueError, match="degrees_of_freedom_prior must be > n_features - 1"):
        fastvem.Mixture(GaussianFull(3, degrees_of_freedom_prior=1.0), 2,
                        method="meanfield").fit(X)
    with pytest.raises(ValueError, match="reg_covar must be a finite number > 0"):
        GaussianFull(3, reg_covar=-1.0)
    bad = X.copy()
    bad[5, 1] = np.inf
    with pytest.raises(ValueError, match="infinity"):
        fastvem.Mixture("gaussian", 2).fit(bad)
    bad[5, 1] = 1e300                   # found by the fuzz case mixed_inputs
    for family in ("gaussian", "gaussian_diag"):
        with pytest.raises(ValueError, match="their squares overflow"):
            fastvem.Mixture(family, 2).fit(bad)
    # a constant column: reg_covar keeps every covariance positive definite
    X[:, 2] = 1.0
    est = _quiet(fastvem.Mixture("gaussian", 3, random_state=0), X)
    assert np.all(np.isfinite(est.params_))
    import scipy.sparse as sp
    with pytest.raises(TypeError, match="chunk 0: X is a scipy.sparse matrix; this family"):
        fastvem.Mixture("gaussian", 2).fit([sp.csr_matrix(X[:100]), sp.csr_matrix(X[100:])])


@pytest.mark.parametrize("method", ["em", "meanfield"])
def test_chunked_sources_fit_as_in_memory(method):
    """A list of chunks and a Dask array fit as the array does: the first pass pools
    the data's covariance exactly (the Normal-Wishart default prior reads it)."""
    da = pytest.importorskip("dask.array")
    X, z = _blobs(N=2400, seed=4)
    kw = dict(method=method, random_state=0, max_iter=15, tol=0, init_params="random")
    ref = _quiet(fastvem.Mixture("gaussian", 3, **kw), X)
    chunks = _quiet(fastvem.Mixture("gaussian", 3, **kw), [X[:700], X[700:1500], X[1500:]])
    dask = _quiet(fastvem.Mixture("gaussian", 3, **kw), da.from_array(X, chunks=(800, -1)))
    for est in (chunks, dask):
        np.testing.assert_allclose(est.params_, ref.params_, rtol=1e-9, atol=1e-10)
        np.testing.assert_allclose(est.lower_bounds_, ref.lower_bounds_, rtol=1e-10)
    mixed = np.column_stack([X[:, :2], z % 2])
    fam = lambda: Product([("gaussian", [0, 1]), ("categorical", [2])])  # noqa: E731
    ref = _quiet(fastvem.Mixture(fam(), 3, **kw), mixed)
    est = _quiet(fastvem.Mixture(fam(), 3, **kw), [mixed[:1000], mixed[1000:]])
    np.testing.assert_allclose(est.params_, ref.params_, rtol=1e-9, atol=1e-10)


@pytest.mark.parametrize("name", ["gaussian", "gaussian_diag"])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_cholesky_pass_equals_the_sparse_form(name, dtype):
    """A Gaussian family's row pass runs on GaussianMixture's Cholesky-factor kernel
    (fast_pass); it equals the sparse form's pass of the same (W, c) -- the point
    parameters and the expected ones under q -- in every statistic, count and
    total, weighted, for the soft and the argmax passes (a sampled pass draws from
    each kernel's own stream)."""
    from fastvem.families import GaussianDiag
    from fastvem.models import discrete_mixture as dm
    X = load_iris().data.astype(dtype)
    K = 3
    fam = (GaussianFull if name == "gaussian" else GaussianDiag)(X.shape[1])
    data = fam.prepare(X, fitting=True)
    rng = np.random.RandomState(0)
    labels = rng.randint(K, size=len(X))
    S = fam.n_statistics()
    stats, nk, _ = dm._row_pass(fam, data, None, np.zeros((K, S)), np.zeros(K), np.zeros(K),
                                3, 0, labels.astype(np.int64), None, 1)
    theta = fam.point_estimate(stats, nk, np.tile(stats.sum(0) / nk.sum(), (K, 1)))
    q = fam.posterior(stats, nk, fam.default_prior(data))
    sw = rng.uniform(0.5, 2.0, len(X))
    logw = np.log(np.array([0.2, 0.3, 0.5]))
    tol = 1e-9 if dtype == np.float64 else 2e-4
    for W, c in (fam.effective(theta), fam.expected_effective(q)):
        for mode in (0, 1):
            fast = fam.fast_pass(data, sw, W, c, logw, mode, 0, 2)
            assert fast is not None
            slow = dm._row_pass(_SparseOnly(fam), data, sw, W, c, logw, mode, 0, None, None, 2)
            for a, b in zip(fast, slow):
                scale = max(np.max(np.abs(b)), 1.0)
                assert np.max(np.abs(a - b)) <= tol * scale, (mode, a, b)
    # a quadratic part that is not negative definite: no fast pass (the sparse form runs)
    W, c = fam.effective(theta)
    assert fam.fast_pass(data, sw, -W, c, logw, 0, 0, 1) is None


class _SparseOnly:
    """A family seen without its fast_pass: the sparse form's row pass."""

    def __init__(self, fam):
        self._fam = fam

    def __getattr__(self, name):
        if name == "fast_pass":
            raise AttributeError(name)
        return getattr(self._fam, name)
