"""Estimators never predict with a configuration they were not fitted with,
partial_fit continues a fitted or loaded model, a failed fit leaves no half model."""
import warnings

import numpy as np
import pytest
import scipy.sparse as sp
from sklearn.exceptions import NotFittedError

import fastvem
from fastvem.datasets import make_gaussian_mixture
from fastvem.engine import default_n_threads
from fastvem.families.gaussian import GaussianFamily

from conftest import COVARIANCE_TYPES

warnings.simplefilter("ignore")


@pytest.fixture(scope="module")
def data():
    X, _, _ = make_gaussian_mixture(600, 3, 3, "full", separation=3.0, random_state=0)
    return X


@pytest.mark.parametrize("old, new", [("spherical", "tied"), ("diag", "tied"), ("tied", "full"),
                                      ("full", "diag")])
def test_changed_covariance_type_is_refused_after_fit(data, old, new):
    g = fastvem.GaussianMixture(3, covariance_type=old, random_state=0).fit(data)
    g.set_params(covariance_type=new)
    for call in (g.predict, g.predict_proba, g.score_samples, g.score, g.bic, g.aic):
        with pytest.raises(ValueError, match="covariance_type .* refit required"):
            call(data)
    with pytest.raises(ValueError, match="refit required"):
        g.sample(3)
    g.set_params(covariance_type=old)          # back as fitted: predicts again
    assert np.all(np.isfinite(g.predict_proba(data)))


@pytest.mark.parametrize("param, value", [("n_components", 5), ("method", "meanfield"),
                                          ("weight_concentration_prior_type",
                                           "dirichlet_distribution")])
def test_changed_shape_parameters_are_refused(data, param, value):
    g = fastvem.GaussianMixture(3, random_state=0).fit(data)
    g.set_params(**{param: value})
    with pytest.raises(ValueError, match=f"{param} .* refit required"):
        g.predict(data)


def test_lda_changed_n_components_is_refused_not_corrupting():
    X = sp.random(60, 40, density=0.2, random_state=0, format="csr")
    X.data = np.ceil(X.data * 4)
    lda = fastvem.LatentDirichletAllocation(3, max_iter=3, random_state=0).fit(X)
    lda.set_params(n_components=60)
    for call in (lda.transform, lda.score, lda.perplexity):
        with pytest.raises(ValueError, match="n_components was 3 .* refit required"):
            call(X)
    with pytest.raises(ValueError, match="refit required before partial_fit"):
        lda.partial_fit(X)
    lda.set_params(n_components=3, method="vem")
    with pytest.raises(ValueError, match="method was 'meanfield'"):
        lda.transform(X)


@pytest.mark.parametrize("method", ["em", "crisp", "meanfield"])
@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_partial_fit_state_of_a_fitted_model_reproduces_it(data, method, covariance_type):
    """The statistics partial_fit starts from after fit are those of the fitted
    parameters: the method's own update maps them back to the fitted model."""
    g = fastvem.GaussianMixture(3, covariance_type=covariance_type, method=method,
                                random_state=0, max_iter=20).fit(data)
    family = GaussianFamily(covariance_type, g.reg_covar)
    state = g._stream_from_fit(family, data)
    if state.extra["scatter"] is not None:
        family.scatter = state.extra["scatter"]
    state.engine.family = family
    back, _ = state.engine.update(state.stats)
    if method != "meanfield":
        weights, back = back
        np.testing.assert_allclose(weights, g.weights_, rtol=1e-9)
    else:
        back = back[0]
    np.testing.assert_allclose(back["means"], g.means_, rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(back["covariances"], g.covariances_, rtol=1e-9, atol=1e-12)
    if method == "meanfield":
        np.testing.assert_allclose(back["mean_precision"], g.mean_precision_, rtol=1e-9)
        np.testing.assert_allclose(back["degrees_of_freedom"], g.degrees_of_freedom_,
                                   rtol=1e-9)


@pytest.mark.parametrize("method", ["em", "meanfield"])
def test_partial_fit_continues_a_fitted_and_a_loaded_model(data, method, tmp_path):
    g = fastvem.GaussianMixture(3, method=method, random_state=0).fit(data)
    fitted, n_iter = g.means_.copy(), g.n_iter_
    g.partial_fit(data[:200])
    assert g.n_iter_ == n_iter + 1
    # one stepwise step from the fitted model on its own data barely moves it; a
    # restart from the chunk would not be near the fitted model in general
    np.testing.assert_allclose(g.means_, fitted, atol=0.3)
    path = str(tmp_path / "g.npz")
    f = fastvem.GaussianMixture(3, method=method, random_state=0).fit(data)
    f.save(path)
    back = fastvem.load(path)
    back.partial_fit(data[:200])
    np.testing.assert_array_equal(back.means_, g.means_)


def test_partial_fit_refuses_a_changed_configuration(data):
    g = fastvem.GaussianMixture(3, random_state=0).partial_fit(data[:300])
    g.set_params(n_components=4)
    with pytest.raises(ValueError, match="n_components was 3 .* refit required before "
                                         "partial_fit"):
        g.partial_fit(data[300:])
    g.set_params(n_components=3, method="meanfield")
    with pytest.raises(ValueError, match="method was 'em'"):
        g.partial_fit(data[300:])


def test_failed_fit_leaves_the_estimator_unfitted(data):
    g = fastvem.GaussianMixture(3, random_state=0).fit(data)
    bad = data.copy()
    bad[0, 0] = np.nan
    with pytest.raises(ValueError):
        g.fit(bad)
    with pytest.raises(NotFittedError):
        g.predict(data)
    g2 = fastvem.GaussianMixture(3, method="gibbs", n_samples=3, burn_in=1)
    with pytest.raises(ValueError):
        g2.fit(data[:2])              # fewer rows than components
    with pytest.raises(NotFittedError):
        g2.predict(data)


def _csr_with_duplicates():
    rng = np.random.default_rng(0)
    rows = np.sort(rng.integers(0, 20, 120))
    cols = rng.integers(0, 15, 120)              # repeated (row, col) pairs, unsorted
    indptr = np.concatenate([[0], np.cumsum(np.bincount(rows, minlength=20))])
    return sp.csr_matrix((rng.integers(1, 4, 120).astype(np.float64), cols, indptr),
                         shape=(20, 15))


@pytest.mark.parametrize("kw", [dict(method="meanfield"), dict(method="vem"),
                                dict(method="gibbs"), dict(method="crisp"),
                                dict(learning_method="online"), dict(learning_method="memoized")])
def test_lda_never_modifies_the_callers_csr(kw):
    X = _csr_with_duplicates()
    assert not X.has_canonical_format
    before = [a.copy() for a in (X.data, X.indices, X.indptr)]
    lda = fastvem.LatentDirichletAllocation(3, max_iter=3, random_state=0, **kw).fit(X)
    lda.transform(X)
    lda.perplexity(X)
    for a, b in zip(before, (X.data, X.indices, X.indptr)):
        np.testing.assert_array_equal(a, b)
    # and the fit is that of the canonical matrix
    Y = X.copy()
    Y.sum_duplicates()
    ref = fastvem.LatentDirichletAllocation(3, max_iter=3, random_state=0, **kw).fit(Y)
    np.testing.assert_allclose(lda.components_, ref.components_, rtol=1e-12)


def test_lda_accepts_read_only_unsorted_csr_and_float16():
    X = _csr_with_duplicates()
    X.sum_duplicates()
    dense = X.toarray()
    for i in range(X.shape[0]):                  # reverse each row: unsorted indices
        a, b = X.indptr[i], X.indptr[i + 1]
        X.indices[a:b] = X.indices[a:b][::-1].copy()
        X.data[a:b] = X.data[a:b][::-1].copy()
    X.has_sorted_indices = False
    for arr in (X.data, X.indices, X.indptr):
        arr.setflags(write=False)
    a = fastvem.LatentDirichletAllocation(3, max_iter=3, random_state=0).fit(X)
    b = fastvem.LatentDirichletAllocation(3, max_iter=3, random_state=0).fit(dense)
    np.testing.assert_allclose(a.components_, b.components_, rtol=1e-12)
    c = fastvem.LatentDirichletAllocation(3, max_iter=3, random_state=0).fit(
        dense.astype(np.float16))
    assert c.components_.dtype == np.float32
    np.testing.assert_allclose(c.components_, b.components_, rtol=1e-3)


@pytest.mark.parametrize("method", ["em", "meanfield", "crisp", "gibbs"])
def test_gaussian_mixture_never_modifies_the_callers_arrays(data, method):
    X = np.asfortranarray(data)                 # validate_data copies to C order
    Xc = np.ascontiguousarray(data)
    Xc.setflags(write=False)
    sw = np.linspace(0.5, 2.0, len(data))
    before = (X.copy(), sw.copy())
    kw = dict(n_samples=5, burn_in=2) if method == "gibbs" else {}
    for Z in (X, Xc):
        fastvem.GaussianMixture(3, method=method, random_state=0, **kw).fit(Z, sample_weight=sw)
    np.testing.assert_array_equal(X, before[0])
    np.testing.assert_array_equal(sw, before[1])


# ---------------------------------------------------------------- scale
@pytest.mark.parametrize("method", ["em", "vem", "crisp"])
@pytest.mark.parametrize("scale", [1e-300, 1e-20, 1e-16, 1e10, 1e300])
def test_point_fits_do_not_depend_on_the_scale_of_sample_weight(data, method, scale):
    rng = np.random.default_rng(0)
    w = rng.uniform(0.5, 2.0, len(data))
    a = fastvem.GaussianMixture(3, method=method, random_state=0).fit(data, sample_weight=w)
    b = fastvem.GaussianMixture(3, method=method, random_state=0).fit(data,
                                                                      sample_weight=w * scale)
    np.testing.assert_allclose(b.means_, a.means_, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(b.covariances_, a.covariances_, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(b.lower_bound_, a.lower_bound_, rtol=1e-9)


@pytest.mark.parametrize("scale", [1e-300, 1e300])
def test_bayesian_fits_stay_finite_at_extreme_weights(data, scale):
    """For meanfield (and gibbs) sample weights are frequencies: scaling them is
    more or less data, which the posterior reflects -- but never NaN."""
    g = fastvem.GaussianMixture(3, method="meanfield", random_state=0).fit(
        data, sample_weight=np.full(len(data), scale))
    for name in ("weights_", "means_", "covariances_", "precisions_cholesky_"):
        assert np.all(np.isfinite(getattr(g, name))), name
    assert np.all(np.isfinite(g.predict_proba(data)))


@pytest.mark.parametrize("dtype, big", [(np.float64, 1e200), (np.float32, 1e17)])
def test_data_too_large_for_its_dtype_is_refused_by_name(data, dtype, big):
    X = (data * big / np.abs(data).max()).astype(dtype)
    for method in ("em", "meanfield", "gibbs"):
        with pytest.raises(ValueError, match="X holds values up to .* overflow.*divide X"):
            fastvem.GaussianMixture(2, method=method).fit(X)
    with pytest.raises(ValueError, match="X holds values up to"):
        fastvem.kernels.gaussian_data_scatter(X)
    # the same data divided by a constant fits, and scale-equivariantly
    c = 2.0 ** 600 if dtype == np.float64 else 2.0 ** 50
    small = fastvem.GaussianMixture(3, random_state=0, reg_covar=0.0).fit(X / c)
    assert np.all(np.isfinite(small.means_))


def test_kernels_refuse_means_and_factors_that_overflow():
    X = np.zeros((4, 2), dtype=np.float32)
    with pytest.raises(ValueError, match="means hold values up to"):
        fastvem.kernels.gaussian_log_prob(X, np.full((1, 2), 1e37), np.ones((1, 2)), "diag")
    with pytest.raises(ValueError, match="precisions_cholesky .* overflows"):
        fastvem.kernels.gaussian_log_prob(X + 1, np.zeros((1, 2)), np.full((1, 2), 1e30),
                                          "diag")


@pytest.mark.parametrize("kw", [dict(), dict(learning_method="online"),
                                dict(learning_method="memoized"), dict(method="crisp")])
def test_lda_counts_too_large_are_refused_by_name(kw):
    X = sp.random(30, 20, density=0.3, random_state=0, format="csr")
    X.data = np.ceil(X.data * 4)
    with pytest.raises(ValueError, match="X holds counts summing to .* divide X"):
        fastvem.LatentDirichletAllocation(3, max_iter=2, **kw).fit(X * 1e300)
    lda = fastvem.LatentDirichletAllocation(3, max_iter=2, random_state=0, **kw).fit(X * 1e30)
    assert np.all(np.isfinite(lda.components_)) and np.all(np.isfinite(lda.transform(X * 1e30)))


# ---------------------------------------------------------------- threads
def test_threads_are_capped_at_the_cpus_and_absurd_counts_refused(data):
    cpus = default_n_threads(None)
    assert default_n_threads(1000) == cpus
    a = fastvem.GaussianMixture(3, random_state=0, n_threads=1).fit(data)
    b = fastvem.GaussianMixture(3, random_state=0, n_threads=1000).fit(data)
    np.testing.assert_array_equal(a.means_, b.means_)
    for bad in (2 ** 31, 10 ** 6):
        with pytest.raises(ValueError, match="n_threads=.* not a sensible thread count"):
            fastvem.GaussianMixture(3, n_threads=bad).fit(data)
        with pytest.raises(ValueError, match="n_threads"):
            fastvem.LatentDirichletAllocation(2, method="gibbs", n_threads=bad).fit(
                np.ones((5, 4)))
    with pytest.raises(ValueError, match="n_threads must be >= 1"):
        fastvem.GaussianMixture(3, n_threads=0).fit(data)


# ---------------------------------------------------------------- helpful errors
def test_fit_predict_on_chunks_gives_the_labels_of_every_row(data):
    chunks = [data[:250], data[250:]]
    g = fastvem.GaussianMixture(3, random_state=0)
    labels = g.fit_predict(chunks)
    np.testing.assert_array_equal(labels, g.predict(data))


def test_fit_predict_on_a_dask_array(data):
    da = pytest.importorskip("dask.array")
    g = fastvem.GaussianMixture(3, random_state=0, n_threads=1)
    labels = g.fit_predict(da.from_array(data, chunks=(200, 3)))
    np.testing.assert_array_equal(labels, g.predict(data))


@pytest.mark.parametrize("seed, err", [(None, TypeError), ("abc", TypeError), (1.7, TypeError),
                                       (-1, ValueError), (2 ** 64, ValueError)])
def test_kernel_seed_is_checked(data, seed, err):
    with pytest.raises(err, match="seed must be"):
        fastvem.kernels.gaussian_statistics(data, data[:2], np.ones((2, 3)), "diag",
                                            assign="sample", seed=seed)


def test_unhelpful_errors_now_name_the_argument(data):
    st = fastvem.kernels.gaussian_statistics(data, data[:2], np.ones((2, 3)), "diag")
    with pytest.raises(TypeError, match="reg_covar must be a real number"):
        fastvem.kernels.gaussian_m_step(st, reg_covar="abc")
    with pytest.raises(TypeError, match="reg_covar must be a real number"):
        fastvem.GaussianMixture(2, reg_covar="abc").fit(data)
    X = sp.random(20, 10, density=0.3, random_state=0, format="csr")
    X.data = np.ceil(X.data * 3)
    with pytest.raises(TypeError, match="doc_topic_prior must be a positive number"):
        fastvem.LatentDirichletAllocation(2, doc_topic_prior="abc").fit(X)
    lda = fastvem.LatentDirichletAllocation(2, max_iter=2, random_state=0).fit(X)
    with pytest.raises(ValueError, match="no words .* perplexity"):
        lda.perplexity(sp.csr_matrix((5, 10)))


def test_memoized_batches_are_capped_at_the_rows(data):
    a = fastvem.GaussianMixture(3, method="meanfield", n_batches=300_000_000, max_iter=3,
                                random_state=0).fit(data)
    b = fastvem.GaussianMixture(3, method="meanfield", n_batches=len(data), max_iter=3,
                                random_state=0).fit(data)
    np.testing.assert_array_equal(a.means_, b.means_)


def test_lda_parameters_changed_after_fit_are_checked_before_transform():
    X = sp.random(30, 20, density=0.3, random_state=0, format="csr")
    X.data = np.ceil(X.data * 4)
    lda = fastvem.LatentDirichletAllocation(2, max_iter=2, random_state=0).fit(X)
    for param, value, match in (("max_doc_update_iter", "abc", "max_doc_update_iter must be"),
                                ("mean_change_tol", None, "mean_change_tol must be"),
                                ("verbose", "abc", "verbose must be"),
                                ("method", ["em"], "refit required")):
        bad = clone_with(lda, **{param: value})
        with pytest.raises((ValueError, TypeError), match=match):
            bad.transform(X)


def clone_with(est, **params):
    import copy
    out = copy.deepcopy(est)
    return out.set_params(**params)


def test_online_step_of_size_one_forgets_the_old_topics():
    """learning_decay so small that rho = 1 exactly: the step replaces lambda whole
    (it divided by zero before)."""
    X = sp.random(30, 20, density=0.3, random_state=0, format="csr")
    X.data = np.ceil(X.data * 4)
    lda = fastvem.LatentDirichletAllocation(2, learning_method="online", learning_decay=1e-300,
                                            max_iter=2, random_state=0).fit(X)
    assert np.all(np.isfinite(lda.components_)) and np.all(lda.components_ > 0)
    lda.partial_fit(X)
    assert np.all(np.isfinite(lda.transform(X)))


@pytest.mark.parametrize("value", ["abc", 0.5, [1.0, 2.0], float("nan")])
def test_random_state_errors_name_it(data, value):
    with pytest.raises(ValueError, match="random_state must be None, an int"):
        fastvem.GaussianMixture(2, random_state=value).fit(data)
    with pytest.raises(ValueError, match="random_state must be None, an int"):
        fastvem.LatentDirichletAllocation(2, random_state=value).fit(np.ones((4, 3)))


@pytest.mark.parametrize("eta", [1e-30, 1e-300])
def test_memoized_lda_with_a_tiny_topic_word_prior_stays_finite(eta):
    """total - old + new can leave -1e-16 where a word's counts cancel: floored at
    0, a tiny eta gives a finite model and perplexity (it gave NaN)."""
    X = sp.random(200, 100, density=0.1, random_state=0, format="csr")
    X.data = np.ceil(X.data * 4)
    lda = fastvem.LatentDirichletAllocation(3, topic_word_prior=eta, learning_method="memoized",
                                            max_iter=3, random_state=0).fit(X)
    assert np.all(np.isfinite(lda.components_)) and np.all(lda.components_ >= eta)
    assert np.isfinite(lda.perplexity(X)) and np.all(np.isfinite(lda.transform(X)))
