"""Bad input is refused with a ValueError / TypeError that names the problem,
and awkward-but-valid input fits without crashing.

Covers fastvem.GaussianMixture (fit, predict, predict_proba, score_samples,
score) and the public kernel API fastvem.kernels.
"""
import warnings

import numpy as np
import pytest

import fastvem.kernels as fk
from fastvem import GaussianMixture
from fastvem.datasets import load_old_faithful

COV_TYPES = ("full", "tied", "diag", "spherical")
FITTED = ("weights_", "means_", "covariances_", "precisions_", "precisions_cholesky_")


@pytest.fixture(scope="module")
def X():
    X, _ = load_old_faithful()
    assert X.shape == (272, 2)
    return X


@pytest.fixture(scope="module")
def fitted(X):
    return GaussianMixture(2, random_state=0).fit(X)


def _not_fitted(est):
    return not any(hasattr(est, a) for a in FITTED + ("converged_", "n_iter_"))


# --------------------------------------------------------------------------- X at fit
def _with(X, row, col, value):
    X = X.copy()
    X[row, col] = value
    return X


BAD_X = {
    "nan": (lambda X: _with(X, 3, 1, np.nan), ValueError, "NaN"),
    "inf": (lambda X: _with(X, 5, 0, np.inf), ValueError, "infinity"),
    "neg_inf": (lambda X: _with(X, 5, 0, -np.inf), ValueError, "infinity"),
    "1d": (lambda X: X[:, 0].copy(), ValueError, "Expected 2D array"),
    "3d": (lambda X: X[:, :, None].copy(), ValueError, "dim 3"),
    "empty_rows": (lambda X: X[:0], ValueError, "0 sample"),
    "empty_cols": (lambda X: X[:, :0], ValueError, "0 feature"),
    "one_row": (lambda X: X[:1], ValueError, "1 sample"),
    "object_strings": (lambda X: np.array([["a", "b"], ["c", "d"], ["e", "f"]], dtype=object),
                       (ValueError, TypeError), "string|numeric"),
    "str_dtype_letters": (lambda X: np.array([["a", "b"], ["c", "d"], ["e", "f"]]),
                          (ValueError, TypeError), "string|numeric"),
    # an array of dtype <U... must be refused even when its strings look like
    # numbers: silently parsing text is not what a numeric estimator should do.
    "str_dtype_numeric_text": (lambda X: X.astype(str), (ValueError, TypeError),
                               "string|numeric|dtype"),
    "complex": (lambda X: X + 1j, ValueError, "[Cc]omplex"),
}


@pytest.mark.parametrize("case", list(BAD_X))
def test_fit_rejects_bad_X(X, case):
    make, exc, match = BAD_X[case]
    est = GaussianMixture(2, random_state=0)
    with pytest.raises(exc, match=match):
        est.fit(make(X))
    assert _not_fitted(est)


def test_more_components_than_samples(X):
    with pytest.raises(ValueError, match="n_samples >= n_components"):
        GaussianMixture(5).fit(X[:4])
    # the boundary N == K is allowed
    GaussianMixture(4, random_state=0, reg_covar=1e-3).fit(X[:4])


# ---------------------------------------------------------------- sample_weight
def _sw_neg(n):
    w = np.ones(n)
    w[7] = -0.5
    return w


def _sw_nan(n):
    w = np.ones(n)
    w[2] = np.nan
    return w


def _sw_inf(n):
    w = np.ones(n)
    w[2] = np.inf
    return w


BAD_SW = {
    "negative": (_sw_neg, ValueError, "[Nn]egative"),
    "short": (lambda n: np.ones(n - 1), ValueError, "sample_weight"),
    "long": (lambda n: np.ones(n + 1), ValueError, "sample_weight"),
    "2d": (lambda n: np.ones((n, 1)), ValueError, "sample_weight"),
    "nan": (_sw_nan, ValueError, "NaN"),
    "inf": (_sw_inf, ValueError, "infinity"),
    "strings": (lambda n: np.array(["1"] * n), TypeError, "sample_weight"),
    "scalar_zero": (lambda n: 0.0, ValueError, "sample_weight"),
    "scalar_negative": (lambda n: -1.0, ValueError, "sample_weight"),
    # scikit-learn's wording (check_all_zero_sample_weights_error wants "zero" + "weight")
    "all_zero": (lambda n: np.zeros(n), ValueError, "(?i)(weight.*zero)|(zero.*weight)"),
}


@pytest.mark.parametrize("case", list(BAD_SW))
def test_fit_rejects_bad_sample_weight(X, case):
    make, exc, match = BAD_SW[case]
    est = GaussianMixture(2, random_state=0)
    with pytest.raises(exc, match=match):
        est.fit(X, sample_weight=make(X.shape[0]))
    assert _not_fitted(est)


def test_sample_weight_is_used(X):
    """Control for the sample_weight tests: valid weights are accepted and matter."""
    w = np.where(X[:, 0] > 3.0, 5.0, 1.0)
    a = GaussianMixture(2, random_state=0).fit(X)
    b = GaussianMixture(2, random_state=0).fit(X, sample_weight=w)
    assert not np.allclose(a.weights_, b.weights_)
    c = GaussianMixture(2, random_state=0).fit(X, sample_weight=np.ones(X.shape[0]))
    np.testing.assert_allclose(a.means_, c.means_, rtol=1e-10)


# ------------------------------------------------------------ hyper-parameters
BAD_HYPER = [
    (dict(n_components=0), ValueError, "n_components"),
    (dict(n_components=-3), ValueError, "n_components"),
    (dict(n_components=2.0), TypeError, "n_components"),
    (dict(n_components=True), TypeError, "n_components"),
    (dict(max_iter=-1), ValueError, "max_iter"),
    (dict(max_iter=10.5), TypeError, "max_iter"),
    (dict(n_init=0), ValueError, "n_init"),
    (dict(tol=-1e-3), ValueError, "tol"),
    (dict(tol=np.nan), ValueError, "tol"),
    (dict(tol="small"), TypeError, "tol"),
    (dict(reg_covar=-1e-6), ValueError, "reg_covar"),
    (dict(reg_covar=np.inf), ValueError, "reg_covar"),
    (dict(n_threads=0), ValueError, "n_threads"),
    (dict(n_threads=-2), ValueError, "n_threads"),
    (dict(n_threads=1.5), TypeError, "n_threads"),
    (dict(covariance_type="fulll"), ValueError, "covariance_type"),
    (dict(covariance_type=None), ValueError, "covariance_type"),
    (dict(init_params="kmeans+++"), ValueError, "init_params"),
    (dict(method="EM!"), ValueError, "method"),
    (dict(method=None), ValueError, "method"),
    (dict(verbose=-1), ValueError, "verbose"),
    (dict(verbose_interval=0), ValueError, "verbose_interval"),
    (dict(warm_start="yes"), TypeError, "warm_start"),
]


@pytest.mark.parametrize("kwargs,exc,match", BAD_HYPER,
                         ids=[next(iter(k)) + "=" + repr(v)[:12] for k, _, _ in BAD_HYPER
                              for v in k.values()])
def test_fit_rejects_bad_hyperparameters(X, kwargs, exc, match):
    est = GaussianMixture(**{"n_components": 2, **kwargs})
    with pytest.raises(exc, match=match):
        est.fit(X)
    assert _not_fitted(est)


@pytest.mark.parametrize("method", ["em", "vem", "crisp"])
def test_implemented_methods_fit(X, method):
    est = GaussianMixture(2, method=method, random_state=0).fit(X)
    assert np.isfinite(est.lower_bound_)


# ----------------------------------------------------------------- *_init
def _shape(ct, K, D):
    return {"full": (K, D, D), "tied": (D, D), "diag": (K, D), "spherical": (K,)}[ct]


def _good_precisions(ct, K=2, D=2):
    return {"full": np.stack([np.eye(D)] * K), "tied": np.eye(D),
            "diag": np.ones((K, D)), "spherical": np.ones(K)}[ct]


@pytest.mark.parametrize("ct", COV_TYPES)
def test_good_inits_accepted(X, ct):
    """Control for the *_init tests: well-formed inits fit and are used."""
    est = GaussianMixture(2, covariance_type=ct, weights_init=[0.4, 0.6],
                          means_init=[[2.0, 55.0], [4.5, 80.0]],
                          precisions_init=_good_precisions(ct) * 0.05, max_iter=0)
    est.fit(X)
    np.testing.assert_allclose(est.weights_, [0.4, 0.6])
    np.testing.assert_allclose(est.means_, [[2.0, 55.0], [4.5, 80.0]])
    np.testing.assert_allclose(est.precisions_, _good_precisions(ct) * 0.05, rtol=1e-10)


NON_PD = np.array([[1.0, 2.0], [2.0, 1.0]])       # symmetric, eigenvalues 3 and -1


@pytest.mark.parametrize("ct,prec,match", [
    ("full", np.stack([np.eye(2), NON_PD]), r"precisions_init\[1\] is not positive definite"),
    ("full", np.stack([np.eye(2), -np.eye(2)]), r"precisions_init.*positive definite"),
    ("full", np.stack([np.eye(2), np.zeros((2, 2))]), r"precisions_init.*positive definite"),
    ("full", np.stack([np.eye(2), [[1.0, 0.5], [0.0, 1.0]]]), r"precisions_init.*symmetric"),
    ("tied", NON_PD, r"precisions_init.*positive definite"),
    ("tied", -np.eye(2), r"precisions_init.*positive definite"),
    ("tied", [[1.0, 0.5], [0.0, 1.0]], r"precisions_init.*symmetric"),
    ("diag", np.array([[1.0, 1.0], [1.0, -1.0]]), "precisions_init must be positive"),
    ("diag", np.array([[1.0, 0.0], [1.0, 1.0]]), "precisions_init must be positive"),
    ("spherical", np.array([1.0, -2.0]), "precisions_init must be positive"),
    ("spherical", np.array([0.0, 1.0]), "precisions_init must be positive"),
])
def test_bad_precisions_init_values(X, ct, prec, match):
    est = GaussianMixture(2, covariance_type=ct, precisions_init=prec)
    with pytest.raises(ValueError, match=match):
        est.fit(X)


def _wrong_precision_shapes():
    for ct in COV_TYPES:
        shape = _shape(ct, 2, 2)
        if ct != "tied":                                   # one component too many
            yield ct, (shape[0] + 1,) + shape[1:]
        if ct != "spherical":                              # one feature too many
            yield ct, shape[:-1] + (shape[-1] + 1,)
        yield ct, shape + (1,)                             # one axis too many
        yield ct, shape[1:] if ct != "spherical" else ()   # one axis too few


@pytest.mark.parametrize("ct,shape", list(_wrong_precision_shapes()),
                         ids=[f"{c}-{s}" for c, s in _wrong_precision_shapes()])
def test_bad_precisions_init_shape(X, ct, shape):
    with pytest.raises(ValueError, match="precisions_init must have shape"):
        GaussianMixture(2, covariance_type=ct, precisions_init=np.ones(shape)).fit(X)


@pytest.mark.parametrize("ct", COV_TYPES)
def test_precisions_init_nan(X, ct):
    prec = np.array(_good_precisions(ct), dtype=float)
    prec.flat[0] = np.nan
    with pytest.raises(ValueError, match="precisions_init"):
        GaussianMixture(2, covariance_type=ct, precisions_init=prec).fit(X)


@pytest.mark.parametrize("means", [np.zeros((3, 2)), np.zeros((2, 3)), np.zeros(2),
                                   np.zeros((1, 2, 2))])
def test_bad_means_init_shape(X, means):
    with pytest.raises(ValueError, match="means_init must have shape"):
        GaussianMixture(2, means_init=means).fit(X)


@pytest.mark.parametrize("means,exc,match", [
    ([[np.nan, 0.0], [1.0, 1.0]], ValueError, "means_init"),
    ([["a", "b"], ["c", "d"]], TypeError, "means_init"),
    ([[1.0, 2.0], [3.0]], ValueError, "means_init"),
])
def test_bad_means_init_values(X, means, exc, match):
    with pytest.raises(exc, match=match):
        GaussianMixture(2, means_init=means).fit(X)


@pytest.mark.parametrize("weights,match", [
    ([1.0], "weights_init must have shape"),
    ([0.2, 0.3, 0.5], "weights_init must have shape"),
    ([[0.5, 0.5]], "weights_init must have shape"),
    ([0.3, 0.3], "sum to 1"),
    ([0.7, 0.7], "sum to 1"),
    ([1.5, -0.5], "weights_init"),
    ([np.nan, 1.0], "weights_init"),
])
def test_bad_weights_init(X, weights, match):
    with pytest.raises(ValueError, match=match):
        GaussianMixture(2, weights_init=weights).fit(X)


# ------------------------------------------------------------- predict & co
PREDICTORS = ("predict", "predict_proba", "score_samples", "score", "bic", "aic")


@pytest.mark.parametrize("name", PREDICTORS)
@pytest.mark.parametrize("n_features", [1, 3])
def test_wrong_feature_count_after_fit(X, fitted, name, n_features):
    Xw = np.tile(X[:10, :1], (1, n_features))
    with pytest.raises(ValueError, match="features"):
        getattr(fitted, name)(Xw)


@pytest.mark.parametrize("name", PREDICTORS)
@pytest.mark.parametrize("case", ["nan", "1d", "empty"])
def test_bad_X_after_fit(X, fitted, name, case):
    Xb = {"nan": _with(X[:10], 0, 0, np.nan), "1d": X[0], "empty": X[:0]}[case]
    with pytest.raises(ValueError):
        getattr(fitted, name)(Xb)


@pytest.mark.parametrize("name", PREDICTORS)
def test_predictors_work_on_good_X(X, fitted, name):
    """Control for the two tests above."""
    out = np.asarray(getattr(fitted, name)(X[:10]))
    assert np.all(np.isfinite(out))


def test_warm_start_with_other_feature_count(X):
    est = GaussianMixture(2, warm_start=True, random_state=0).fit(X)
    with pytest.raises(ValueError):
        est.fit(np.c_[X, X[:, :1]])


# =================================================================== kernels
KM = np.array([[2.0, 55.0], [4.5, 80.0]])


def _kpc(ct, scale=0.1):
    """Valid precisions_cholesky for the kernels (upper triangular)."""
    return {"full": np.stack([[[1.0, 0.02], [0.0, scale]]] * 2),
            "tied": np.array([[1.0, 0.02], [0.0, scale]]),
            "diag": np.array([[1.0, scale]] * 2), "spherical": np.array([scale, scale])}[ct]


@pytest.mark.parametrize("ct", COV_TYPES)
def test_kernels_accept_valid_input(X, ct):
    """Control: the calls the bad-input kernel tests break do work when valid."""
    lp = fk.gaussian_log_prob(X, KM, _kpc(ct), ct, weights=[0.5, 0.5])
    assert lp.shape == (X.shape[0], 2) and np.all(np.isfinite(lp))
    for assign in ("softmax", "argmax", "sample"):
        st = fk.gaussian_statistics(X, KM, _kpc(ct), ct, sample_weight=np.ones(X.shape[0]),
                                    assign=assign)
        np.testing.assert_allclose(st.nk.sum(), X.shape[0])
    scatter = fk.gaussian_data_scatter(X) if ct == "tied" else None
    w, mu, cov, pc = fk.gaussian_m_step(st, reg_covar=1e-6, scatter=scatter)
    assert np.isclose(w.sum(), 1.0) and np.all(np.isfinite(pc))


KERNEL_FUNCS = (fk.gaussian_log_prob, fk.gaussian_responsibilities,
                fk.gaussian_score_samples, fk.gaussian_predict, fk.gaussian_statistics)


def _kernel_bad_cases(X):
    full = _kpc("full")
    lower = np.transpose(full, (0, 2, 1)).copy()
    return {
        "X_1d": (dict(X=X[:, 0]), "Expected 2D array"),
        "X_3d": (dict(X=X[:, :, None]), "dim 3"),
        "X_nan": (dict(X=_with(X, 0, 0, np.nan)), "NaN"),
        "X_inf": (dict(X=_with(X, 0, 1, np.inf)), "infinity"),
        "X_strings": (dict(X=np.array([["a", "b"]])), "string"),
        "X_wrong_D": (dict(X=np.c_[X, X]), "means must have shape"),
        "means_1d": (dict(means=KM[0]), "means"),
        "means_no_rows": (dict(means=KM[:0], precisions_cholesky=full[:0]), "means"),
        "means_nan": (dict(means=_with(KM, 0, 0, np.nan)), "means contains NaN"),
        "pc_wrong_shape": (dict(precisions_cholesky=full[0]), "precisions_cholesky must have shape"),
        "pc_wrong_K": (dict(precisions_cholesky=np.concatenate([full, full])),
                       "precisions_cholesky must have shape"),
        "pc_nan": (dict(precisions_cholesky=np.where(full == 1.0, np.nan, full)),
                   "precisions_cholesky contains NaN"),
        "pc_lower_triangular": (dict(precisions_cholesky=lower), "upper triangular"),
        "pc_negative_diagonal": (dict(precisions_cholesky=-full), "positive diagonal"),
        "covariance_type": (dict(covariance_type="ful"), "covariance_type"),
        "weights_sum": (dict(weights=[0.2, 0.2]), "sum to 1"),
        "weights_negative": (dict(weights=[1.5, -0.5]), "non-negative"),
        "weights_shape": (dict(weights=[1.0]), "weights must have shape"),
        "n_threads_0": (dict(n_threads=0), "n_threads"),
    }


@pytest.mark.parametrize("func", KERNEL_FUNCS, ids=lambda f: f.__name__)
@pytest.mark.parametrize("case", list(_kernel_bad_cases(np.zeros((3, 2)))))
def test_kernels_reject_bad_input(X, func, case):
    kwargs, match = _kernel_bad_cases(X)[case]
    args = dict(X=X, means=KM, precisions_cholesky=_kpc("full"), covariance_type="full")
    args.update(kwargs)
    with pytest.raises((ValueError, TypeError), match=match):
        func(**args)


@pytest.mark.parametrize("func", [fk.gaussian_log_prob, fk.gaussian_statistics],
                         ids=lambda f: f.__name__)
@pytest.mark.parametrize("ct,pc,match", [
    ("tied", np.array([[1.0, 0.0], [0.3, 0.1]]), "upper triangular"),
    ("tied", np.array([[1.0, 0.0], [0.0, 0.0]]), "positive diagonal"),
    ("tied", np.ones((2, 2, 2)), "precisions_cholesky must have shape"),
    ("diag", np.array([[1.0, 0.1], [1.0, -0.1]]), "positive"),
    ("diag", np.array([[1.0, 0.1], [1.0, 0.0]]), "positive"),
    ("diag", np.ones(2), "precisions_cholesky must have shape"),
    ("spherical", np.array([0.1, -0.1]), "positive"),
    ("spherical", np.array([0.1, np.inf]), "precisions_cholesky contains NaN or infinity"),
    ("spherical", np.ones((2, 2)), "precisions_cholesky must have shape"),
])
def test_kernels_reject_bad_precisions_cholesky(X, func, ct, pc, match):
    with pytest.raises(ValueError, match=match):
        func(X, KM, pc, ct)


@pytest.mark.parametrize("assign", ["hard", "SOFTMAX", None, ["softmax"], 1])
def test_gaussian_statistics_bad_assign(X, assign):
    with pytest.raises(ValueError, match="assign"):
        fk.gaussian_statistics(X, KM, _kpc("diag"), "diag", assign=assign)


@pytest.mark.parametrize("case", ["negative", "short", "nan"])
def test_gaussian_statistics_bad_sample_weight(X, case):
    sw = {"negative": _sw_neg(X.shape[0]), "short": np.ones(X.shape[0] - 1),
          "nan": _sw_nan(X.shape[0])}[case]
    with pytest.raises(ValueError, match="sample_weight|Negative|NaN"):
        fk.gaussian_statistics(X, KM, _kpc("diag"), "diag", sample_weight=sw)


def test_gaussian_m_step_bad_input(X):
    st = fk.gaussian_statistics(X, KM, _kpc("full"), "full")
    with pytest.raises(TypeError, match="GaussianStats"):
        fk.gaussian_m_step({"nk": st.nk, "s1": st.s1})
    with pytest.raises(ValueError, match="reg_covar"):
        fk.gaussian_m_step(st, reg_covar=-1e-6)
    with pytest.raises(ValueError, match="reg_covar"):
        fk.gaussian_m_step(st, reg_covar=np.nan)
    tied = fk.gaussian_statistics(X, KM, _kpc("tied"), "tied")
    with pytest.raises(ValueError, match="scatter"):
        fk.gaussian_m_step(tied)


def test_gaussian_data_scatter_bad_input(X):
    with pytest.raises(ValueError, match="NaN"):
        fk.gaussian_data_scatter(_with(X, 0, 0, np.nan))
    with pytest.raises(ValueError, match="[Nn]egative"):
        fk.gaussian_data_scatter(X, sample_weight=_sw_neg(X.shape[0]))


# ============================================== must fit: nothing crashes
def _check_fit(est, Xfit, dtype=np.float64):
    for name in FITTED:
        value = getattr(est, name)
        assert np.all(np.isfinite(value)), name
        assert value.dtype == dtype, (name, value.dtype)
    assert np.isfinite(est.lower_bound_)
    np.testing.assert_allclose(est.weights_.sum(), 1.0, rtol=1e-5 if dtype == np.float32 else 1e-12)
    labels = est.predict(Xfit)
    assert labels.shape == (Xfit.shape[0],)
    assert labels.min() >= 0 and labels.max() < est.n_components
    proba = est.predict_proba(Xfit)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-4)
    assert np.all(np.isfinite(est.score_samples(Xfit)))
    return labels


def _fit(Xfit, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")     # ConvergenceWarning etc. are fine here
        return GaussianMixture(**{"random_state": 0, **kwargs}).fit(Xfit)


@pytest.mark.parametrize("ct", COV_TYPES)
def test_layouts_and_dtypes_fit_the_same(X, ct):
    """C, Fortran, strided and integer X all give the C-ordered fit."""
    ref = _fit(X, n_components=2, covariance_type=ct)
    _check_fit(ref, X)

    XF = np.asfortranarray(X)
    assert not XF.flags.c_contiguous
    est = _fit(XF, n_components=2, covariance_type=ct)
    _check_fit(est, XF)
    np.testing.assert_allclose(est.means_, ref.means_, rtol=1e-10)
    np.testing.assert_array_equal(est.predict(XF), ref.predict(X))

    big = np.repeat(X, 2, axis=0)
    Xs = big[::2]                         # a non-contiguous view equal to X
    assert not Xs.flags.c_contiguous and np.array_equal(Xs, X)
    est = _fit(Xs, n_components=2, covariance_type=ct)
    _check_fit(est, Xs)
    np.testing.assert_allclose(est.means_, ref.means_, rtol=1e-10)

    Xi = np.round(X * 10).astype(np.int64)
    est = _fit(Xi, n_components=2, covariance_type=ct)
    _check_fit(est, Xi)
    ref_i = _fit(Xi.astype(np.float64), n_components=2, covariance_type=ct)
    np.testing.assert_allclose(est.means_, ref_i.means_, rtol=1e-10)


@pytest.mark.parametrize("ct", COV_TYPES)
def test_float32_fit(X, ct):
    X32 = X.astype(np.float32)
    est = _fit(X32, n_components=2, covariance_type=ct)
    _check_fit(est, X32, dtype=np.float32)
    ref = _fit(X, n_components=2, covariance_type=ct)
    np.testing.assert_allclose(est.means_, ref.means_, rtol=1e-3)
    assert np.mean(est.predict(X32) == ref.predict(X)) > 0.98


@pytest.mark.parametrize("ct", COV_TYPES)
def test_duplicate_points(ct):
    """50 copies of 3 distinct points, 3 components: each point its own component."""
    pts = np.array([[0.0, 0.0], [5.0, 5.0], [0.0, 10.0]])
    Xd = np.repeat(pts, 50, axis=0)
    est = _fit(Xd, n_components=3, covariance_type=ct)
    labels = _check_fit(est, Xd)
    assert len(np.unique(labels)) == 3
    np.testing.assert_allclose(np.sort(est.weights_), [1 / 3] * 3, rtol=1e-6)


@pytest.mark.parametrize("ct", COV_TYPES)
@pytest.mark.parametrize("init_params", ["kmeans", "k-means++", "random", "random_from_data"])
def test_fewer_distinct_points_than_components(ct, init_params):
    """2 distinct points, 3 components: an initial cluster is necessarily empty
    (k-means finds only 2 distinct clusters); the fit must recover, not crash,
    and do at least as well as scikit-learn from the same initialisation."""
    from sklearn.mixture import GaussianMixture as SkGaussianMixture
    Xd = np.repeat(np.array([[0.0, 0.0], [5.0, 5.0]]), 30, axis=0)
    est = _fit(Xd, n_components=3, covariance_type=ct, init_params=init_params)
    _check_fit(est, Xd)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        sk = SkGaussianMixture(3, covariance_type=ct, init_params=init_params,
                               random_state=0).fit(Xd)
    assert est.lower_bound_ >= sk.lower_bound_ - 1e-2, (est.lower_bound_, sk.lower_bound_)


@pytest.mark.parametrize("ct", COV_TYPES)
def test_constant_column(X, ct):
    Xc = np.c_[X, np.full(X.shape[0], 3.0)]
    est = _fit(Xc, n_components=2, covariance_type=ct)
    _check_fit(est, Xc)
    np.testing.assert_allclose(est.means_[:, 2], 3.0, rtol=1e-10)
    ref = _fit(X, n_components=2, covariance_type=ct)
    assert np.mean(est.predict(Xc) == ref.predict(X)) > 0.95


@pytest.fixture(scope="module")
def two_tight_clusters():
    rng = np.random.default_rng(0)
    return np.r_[rng.normal(0.0, 0.01, (100, 2)), rng.normal(10.0, 0.01, (100, 2))]


@pytest.mark.parametrize("ct", COV_TYPES)
@pytest.mark.parametrize("method", ["crisp", "em"])
def test_component_goes_empty(two_tight_clusters, ct, method):
    """5 components on 2 tight clusters, three of them started far from any
    point: they get no rows at the first E-step and must be re-seeded."""
    Xe = two_tight_clusters
    means_init = [[0, 0], [10, 10], [100, 100], [-100, 50], [50, -100]]
    est = _fit(Xe, n_components=5, covariance_type=ct, method=method,
               means_init=means_init)
    _check_fit(est, Xe)
    events = [text for _, text in est.trace_["events"]]
    assert any("re-seeded" in text for text in events), events
    # every final component sits near the data, none left at +-100
    assert np.all(np.abs(est.means_) < 20)


@pytest.mark.parametrize("ct", COV_TYPES)
def test_crisp_more_components_than_clusters(two_tight_clusters, ct):
    Xe = two_tight_clusters
    est = _fit(Xe, n_components=5, covariance_type=ct, method="crisp")
    labels = _check_fit(est, Xe)
    # the two clusters are never merged into one component
    assert not set(labels[:100]) & set(labels[100:])
