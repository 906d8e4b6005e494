"""The diagonal Gaussian family on the shared row driver and products of families
(mixed data): against scikit-learn, the NumPy oracle and the separate families."""
import warnings

import numpy as np
import pytest
from sklearn.datasets import load_iris
from sklearn.metrics import adjusted_rand_score
from sklearn.mixture import GaussianMixture as SkGaussianMixture

import fastvem
import oracle_discrete as od
from fastvem.families import Bernoulli, Categorical, GaussianDiag, Poisson, Product


def _quiet(est, X):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return est.fit(X)


def mixed_data(N=1500, seed=0):
    """Rows of 2 Gaussian, 2 binary, 2 categorical (3 and 4 codes) and 2 count
    columns from 3 components; the labels."""
    rng = np.random.RandomState(seed)
    z = rng.randint(3, size=N)
    means = np.array([[0.0, 0.0], [4.0, 4.0], [0.0, 7.0]])
    g = means[z] + rng.randn(N, 2) * np.array([1.0, 0.7])
    b = (rng.rand(N, 2) < np.array([0.1, 0.5, 0.9])[z][:, None]).astype(float)
    c = np.column_stack([(z + (rng.rand(N) < 0.2)) % 3, (2 * z + rng.randint(2, size=N)) % 4])
    p = rng.poisson(np.array([1.0, 4.0, 9.0])[z][:, None] * np.ones((1, 2)))
    return np.column_stack([g, b, c, p]).astype(float), z


MEMBERS = [("gaussian_diag", [0, 1], {"reg_covar": 1e-6}), ("bernoulli", [2, 3], {"alpha": 0.5}),
           ("categorical", [4, 5], {"n_categories": [3, 4], "alpha": 1.0}),
           ("poisson", [6, 7], {"rate_floor": 1e-10})]


def product_family():
    return Product([(GaussianDiag(2, reference=np.zeros(2)), [0, 1]),
                    (Bernoulli(2, alpha=0.5), [2, 3]),
                    (Categorical([3, 4], alpha=1.0), [4, 5]), (Poisson(2), [6, 7])])


def start(K=3, seed=1):
    """Initial weights and oracle parameters of every member, and theta (K x S)."""
    rng = np.random.RandomState(seed)
    w = rng.dirichlet(np.ones(K) * 5)
    mu, var = rng.randn(K, 2) * 2 + 2, rng.uniform(0.5, 2.0, (K, 2))
    pb = rng.uniform(0.1, 0.9, (K, 2))
    pc = [rng.dirichlet(np.ones(L), K) for L in (3, 4)]
    rates = rng.uniform(0.5, 8.0, (K, 2))
    params = [(mu, var), pb, pc, rates]
    theta = np.hstack([mu, var + mu * mu, pb, *pc, rates])
    return w, params, theta


def to_theta(params):
    (mu, var), pb, pc, rates = params
    return np.hstack([mu, var + mu * mu, pb, *pc, rates])


@pytest.mark.parametrize("method", ["em", "crisp"])
@pytest.mark.parametrize("weighted", [False, True])
def test_product_equals_the_combined_oracle_iterate_for_iterate(method, weighted):
    X, _ = mixed_data(900, seed=3)
    sw = np.random.RandomState(4).uniform(0.2, 3.0, len(X)) if weighted else None
    w, params, theta = start()
    for n_iter in (1, 2, 6):
        ow, op = w, params
        for _ in range(n_iter):
            ow, op, obj = od.product_em_step(MEMBERS, X, sw, ow, op, hard=method == "crisp")
        est = fastvem.Mixture(product_family(), 3, method=method, max_iter=n_iter, tol=0.0,
                              weights_init=w, params_init=theta, n_threads=2)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            est.fit(X, sample_weight=sw)
        np.testing.assert_allclose(est.weights_, ow, rtol=0, atol=1e-10)
        np.testing.assert_allclose(est.params_, to_theta(op), rtol=1e-9, atol=1e-9)
        assert abs(est.lower_bound_ - obj) < 1e-9
        parts = est.component_params_
        np.testing.assert_allclose(parts[0]["variances"], op[0][1], rtol=1e-9)
        assert [p["family"] for p in parts] == ["gaussian_diag", "bernoulli", "categorical",
                                                "poisson"]
        assert parts[2]["columns"].tolist() == [4, 5]


@pytest.mark.parametrize("member, cols", [("poisson", [0, 1, 2]), ("categorical", [0, 1]),
                                          ("bernoulli", [0, 1, 2, 3])])
@pytest.mark.parametrize("method", ["em", "meanfield"])
def test_product_of_one_family_is_that_family(member, cols, method):
    """The product's plumbing (offsets, priors, packed posteriors) adds nothing: one
    member over every column fits as the family's own estimator."""
    rng = np.random.RandomState(0)
    N = 600
    z = rng.randint(2, size=N)
    if member == "poisson":
        X = rng.poisson(np.array([1.0, 6.0])[z][:, None] * np.ones((1, 3))).astype(float)
        own = fastvem.PoissonMixture(2, method=method, random_state=0, tol=0, max_iter=15)
    elif member == "categorical":
        X = np.column_stack([(z + (rng.rand(N) < 0.2)) % 3, rng.randint(4, size=N)])
        own = fastvem.CategoricalMixture(2, method=method, random_state=0, tol=0, max_iter=15)
    else:
        X = (rng.rand(N, 4) < np.array([0.2, 0.8])[z][:, None]).astype(float)
        own = fastvem.BernoulliMixture(2, method=method, random_state=0, tol=0, max_iter=15)
    prod = fastvem.Mixture(Product([(member, cols)]), 2, method=method, random_state=0,
                           tol=0, max_iter=15)
    _quiet(own, X)
    _quiet(prod, X)
    np.testing.assert_allclose(prod.weights_, own.weights_, rtol=1e-12, atol=1e-13)
    own_theta = np.hstack(own.probabilities_) if member == "categorical" else \
        (own.rates_ if member == "poisson" else own.probabilities_)
    np.testing.assert_allclose(prod.params_, own_theta, rtol=1e-11, atol=1e-13)
    np.testing.assert_allclose(prod.lower_bounds_, own.lower_bounds_, rtol=1e-11)
    if method == "meanfield":
        np.testing.assert_allclose(prod.predict_proba(X), own.predict_proba(X), atol=1e-12)


@pytest.mark.parametrize("reference", [None, "zeros"])
def test_gaussian_diag_equals_scikit_learn_on_iris(reference):
    """em of the diagonal Gaussian family equals scikit-learn's GaussianMixture(diag)
    iterate for iterate from the same start, on iris."""
    X = load_iris().data
    rng = np.random.RandomState(0)
    K = 3
    w0 = np.ones(K) / K
    m0 = X[rng.choice(len(X), K, replace=False)]
    v0 = np.tile(X.var(0), (K, 1))
    for n_iter in (1, 4, 30):
        sk = _quiet(SkGaussianMixture(K, covariance_type="diag", weights_init=w0, means_init=m0,
                                      precisions_init=1 / v0, max_iter=n_iter, tol=0), X)
        fam = GaussianDiag(4, reference=None if reference is None else np.zeros(4))
        fam.prepare(X, fitting=True)
        est = _quiet(fastvem.Mixture(fam, K, max_iter=n_iter, tol=0, weights_init=w0,
                                     params_init=fam.theta_from(m0, v0)), X)
        d = est.component_params_
        np.testing.assert_allclose(d["means"], sk.means_, rtol=1e-9, atol=1e-10)
        np.testing.assert_allclose(d["variances"], sk.covariances_, rtol=1e-9, atol=1e-10)
        np.testing.assert_allclose(est.weights_, sk.weights_, atol=1e-10)
        assert abs(est.lower_bound_ - sk.lower_bound_) < 1e-9
        np.testing.assert_allclose(est.score_samples(X), sk.score_samples(X), atol=1e-9)


def test_gaussian_diag_meanfield_equals_the_normal_gamma_oracle():
    """One mean-field step (from a given start) equals the textbook Normal-Gamma
    update with the oracle's expected log-likelihoods; the ELBO never decreases."""
    X, z = mixed_data(800, seed=5)
    X = X[:, :2] + 100.0                     # an offset the reference point absorbs
    K = 3
    w0 = np.array([0.3, 0.3, 0.4])
    mu0 = np.array([[100.0, 100.0], [104.0, 104.0], [100.0, 107.0]])
    v0 = np.ones((K, 2))
    fam = GaussianDiag(2, mean_precision_prior=2.0, degrees_of_freedom_prior=3.0)
    fam.prepare(X, fitting=True)
    est = fastvem.Mixture(fam, K, method="meanfield", max_iter=1, tol=0, weights_init=w0,
                          params_init=fam.theta_from(mu0, v0), weight_concentration_prior=0.5)
    _quiet(est, X)
    # the oracle: q0 from the start's pseudo-statistics, then one E-step and update
    N = len(X)
    m0, beta0, a0, b0 = fam.default_prior(fam.prepare(X))
    m0, b0 = m0 + fam.ref, b0 + 0.0
    nk0 = (w0 * N)[:, None]
    beta = beta0 + nk0 + 0 * mu0
    m = (beta0 * m0 + nk0 * mu0) / beta
    a = a0 + nk0 / 2 + 0 * mu0
    b = b0 + 0.5 * (nk0 * v0 + beta0 * nk0 * (mu0 - m0) ** 2 / beta)
    conc = 0.5 + w0 * N
    lj = od.normal_gamma_expected_log_lik(X, m, beta, a, b) + od._expected_log_pi(conc)
    r, _ = od._soft(lj, np.ones(N))
    m1, beta1, a1, b1 = od.normal_gamma_posterior(X, np.ones(N), r, m0, beta0, a0, b0)
    mq, bq, aq, bbq = fam.unpack_posterior(est.posterior_)
    np.testing.assert_allclose(mq + fam.ref, m1, rtol=1e-10)
    np.testing.assert_allclose(bq, beta1, rtol=1e-10)
    np.testing.assert_allclose(aq, a1, rtol=1e-10)
    np.testing.assert_allclose(bbq, b1, rtol=1e-8)
    long = _quiet(fastvem.Mixture(GaussianDiag(2), K, method="meanfield", max_iter=60, tol=0,
                                  random_state=0), X)
    assert np.all(np.diff(long.lower_bounds_) >= -1e-9 * np.abs(long.lower_bounds_[1:]))


@pytest.mark.parametrize("method", ["em", "vem", "crisp", "meanfield", "gibbs"])
def test_mixed_data_ground_truth_every_method(method):
    X, z = mixed_data(2000, seed=7)
    fam = Product([("gaussian_diag", [0, 1]), ("bernoulli", [2, 3]), ("categorical", [4, 5]),
                   ("poisson", [6, 7])])
    est = _quiet(fastvem.Mixture(fam, 3, method=method, random_state=0, n_samples=40,
                                 burn_in=40), X)
    assert adjusted_rand_score(z, est.predict(X)) > 0.95
    assert np.all(np.isfinite(est.params_)) and np.isfinite(est.lower_bound_)
    if method in ("em", "vem", "meanfield"):
        assert np.all(np.diff(est.lower_bounds_) >= -1e-9 * np.abs(est.lower_bounds_[1:]))
    Xs, ys = est.sample(300)
    assert Xs.shape == (300, 8) and np.all(np.isin(Xs[:, 2:4], [0, 1]))
    assert np.all(Xs[:, 4] < 3) and np.all(Xs[:, 6:] >= 0)


@pytest.mark.parametrize("method", ["em", "meanfield", "gibbs"])
def test_product_thread_invariance_bitwise(method):
    X, _ = mixed_data(9000, seed=2)         # three partitions of the driver
    fits = [_quiet(fastvem.Mixture(product_family(), 3, method=method, random_state=0,
                                   max_iter=8, tol=0, n_threads=t, n_samples=5, burn_in=5), X)
            for t in (1, 2, 3)]
    for f in fits[1:]:
        assert np.array_equal(f.params_, fits[0].params_)
        assert np.array_equal(f.weights_, fits[0].weights_)
        assert np.array_equal(f.predict_proba(X), fits[0].predict_proba(X))


def test_float32_gaussian_and_partial_fit():
    X, z = mixed_data(3000, seed=8)
    g = X[:, :2]
    a = _quiet(fastvem.Mixture("gaussian_diag", 3, random_state=0), g)
    b = _quiet(fastvem.Mixture("gaussian_diag", 3, random_state=0), g.astype(np.float32))
    assert b.family_.features == "gaussian_float32"
    np.testing.assert_allclose(b.component_params_["means"], a.component_params_["means"],
                               atol=1e-4)
    est = fastvem.Mixture(Product([("gaussian_diag", [0, 1]), ("categorical", [2, 3])]), 3,
                          random_state=0)
    Xg = np.column_stack([X[:, :2], X[:, 4:6]])
    for s in range(0, 3000, 500):
        est.partial_fit(Xg[s:s + 500])
    assert adjusted_rand_score(z, est.predict(Xg)) > 0.9


@pytest.mark.parametrize("members, match", [
    ([("poisson", [0, 1]), ("bernoulli", [1, 2])], "overlap: column 1 is in members 0 and 1"),
    ([("poisson", [0, 1])], "column 2 of X is in no member"),
    ([("poisson", [0, 1, 2, 3])], r"not all in \[0, 3\)"),
    ([("normal", [0, 1, 2])], "must be one of 'gaussian', 'gaussian_diag'"),
    ([("poisson", [0, 0, 1, 2])], "repeat a column"),
    ([("poisson", [])], "non-empty list of integer column indices"),
    ([("poisson", [0.5, 1])], "non-empty list of integer column indices"),
    ([(Poisson(2), [0, 1, 2])], "has 2 features but is given 3 columns"),
    ([], "non-empty list"),
    ([("poisson",)], r"must be a \(family, columns\) pair"),
])
def test_bad_products_are_clear_errors(members, match):
    X = np.abs(np.random.RandomState(0).randn(20, 3)).round()
    with pytest.raises(ValueError, match=match):
        fastvem.Mixture(Product(members), 2).fit(X)


def test_bad_input_to_a_product_names_the_member_problem():
    X, _ = mixed_data(50)
    fam = Product([("gaussian_diag", [0, 1]), ("bernoulli", [2, 3]), ("categorical", [4, 5]),
                   ("poisson", [6, 7])])
    bad = X.copy()
    bad[3, 2] = 0.5
    with pytest.raises(ValueError, match="only 0 and 1"):
        fastvem.Mixture(fam, 2).fit(bad)
    bad = X.copy()
    bad[3, 7] = -1
    with pytest.raises(ValueError, match="Negative values"):
        fastvem.Mixture(fam, 2).fit(bad)
    bad = X.copy()
    bad[3, 0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        fastvem.Mixture(fam, 2).fit(bad)
    est = fastvem.Mixture(fam, 2, random_state=0).fit(X)
    with pytest.raises(ValueError, match="expecting 8 features"):
        est.predict(X[:, :7])
    bad = X.copy()
    bad[0, 4] = 7
    with pytest.raises(ValueError, match=r"X\[0, 4\] = 7 is not a category of feature 4 "
                                         r"\(n_categories of column 4 = 3\)"):
        est.predict(bad)
    with pytest.raises(ValueError, match="params_init must be a finite"):
        fastvem.Mixture(fam, 2, params_init=np.zeros((2, 3))).fit(X)
    with pytest.raises(ValueError, match="reg_covar must be a finite number > 0"):
        GaussianDiag(2, reg_covar=0.0)
    from fastvem.families import numba_family
    pytest.importorskip("numba")
    with pytest.raises(ValueError, match="cannot be a member"):
        Product([(numba_family.example_poisson(), [0])])


def test_degenerate_columns_fit():
    """A constant Gaussian column and duplicated rows fit (reg_covar keeps the
    variance positive)."""
    X, _ = mixed_data(300)
    X[:, 1] = 3.0
    X[100:200] = X[0]
    for method in ("em", "meanfield", "gibbs"):
        est = _quiet(fastvem.Mixture(Product([("gaussian_diag", [0, 1]), ("bernoulli", [2, 3]),
                                              ("categorical", [4, 5]), ("poisson", [6, 7])]),
                                     3, method=method, random_state=0, n_samples=10,
                                     burn_in=10), X)
        assert np.all(np.isfinite(est.params_)) and np.all(np.isfinite(est.score_samples(X)))


def test_the_row_driver_refuses_codes_out_of_range():
    """The low-level entries check every category code as they read it (a code
    outside its feature's categories would index another feature's statistics, or
    none): a ValueError, alone and inside a product."""
    from fastvem._ext import _expfam as k
    aux = np.array([0, 2, 4], dtype=np.int64)
    empty = np.empty(0, dtype=np.int64)
    for codes in ([[1, 1], [0, 2]], [[1, -1], [0, 0]]):
        data = np.array(codes, dtype=np.int32)
        for product in (False, True):
            if product:
                g = np.zeros((2, 1))
                args = ([(k.FEATURES["categorical_int32"], data, aux, 4),
                         (k.FEATURES["gaussian_float64"], g, np.zeros(1), 2)], None,
                        k.FEATURES["product"], 6)
            else:
                args = (data, aux, k.FEATURES["categorical_int32"], 4)
            S = args[3]
            with pytest.raises(ValueError, match="a category code outside its feature's"):
                k.row_pass(*args[:3], 0, S, np.zeros((2, S)), np.zeros(2), np.zeros(2), None,
                           empty, empty, np.zeros((2, S)), np.zeros(2), np.zeros(3), 0, 0, 1)
            with pytest.raises(ValueError, match="a category code outside its feature's"):
                k.log_joint_rows(*args[:3], 0, S, np.zeros((2, S)), np.zeros(2), np.zeros(2),
                                 np.empty((2, 2)), 1)
    for bad in (-1.0, np.nan, np.inf):
        counts = np.array([[1.0, 2.0], [0.0, bad]])
        with pytest.raises(ValueError, match="a negative or non-finite count"):
            k.row_pass(counts, None, k.FEATURES["counts_float64"], 0, 2, np.zeros((2, 2)),
                       np.zeros(2), np.zeros(2), None, empty, empty, np.zeros((2, 2)),
                       np.zeros(2), np.zeros(3), 0, 0, 1)


def test_a_members_bad_value_is_named_by_its_column_of_x():
    """A bad value inside a product's member is reported at X's column (the
    members validate their own column slices)."""
    rng = np.random.default_rng(0)
    X = np.column_stack([rng.normal(size=200), rng.integers(0, 2, 200),
                         rng.integers(0, 3, 200), rng.poisson(2.0, 200)]).astype(float)
    fam = Product([("gaussian_diag", [0]), ("bernoulli", [1]), ("categorical", [2]),
                   ("poisson", [3])])
    m = fastvem.Mixture(fam, n_components=2, random_state=0).fit(X)
    for row, where in (([0.0, 1.0, 5.0, 2.0], r"X\[0, 2\]"), ([0.0, 3.0, 1.0, 2.0], "column 1"),
                       ([0.0, 1.0, 1.0, -2.0], "column 3")):
        with pytest.raises(ValueError, match=where):
            m.predict(np.array([row]))
    bad = X.copy()
    bad[7, 3] = -1
    with pytest.raises(ValueError, match=r"row 7, column 3 \(X columns \[3\]"):
        fastvem.Mixture(fam, n_components=2).fit(bad)
