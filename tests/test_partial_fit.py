"""GaussianMixture.partial_fit: stepwise EM (em, crisp) and stochastic variational
inference (meanfield) over a stream of chunks converge to the batch fit."""
import numpy as np
import pytest

import fastvem
from fastvem.datasets import make_gaussian_mixture


def _inits(truth, ct):
    covs = np.asarray(truth["covariances"])
    prec = {"full": lambda c: np.linalg.inv(c), "tied": lambda c: np.linalg.inv(c),
            "diag": lambda c: 1.0 / c, "spherical": lambda c: 1.0 / c}[ct](covs)
    return dict(weights_init=truth["weights"], means_init=truth["means"], precisions_init=prec)


@pytest.mark.parametrize("covariance_type", ["full", "tied", "diag", "spherical"])
@pytest.mark.parametrize("method", ["em", "crisp", "meanfield"])
def test_stream_of_chunks_converges_to_the_batch_fit(covariance_type, method):
    X, _, truth = make_gaussian_mixture(20000, 3, 4, covariance_type, separation=8.0,
                                        random_state=0)
    kw = dict(n_components=4, covariance_type=covariance_type, method=method, random_state=0)
    if method != "meanfield":          # both from the true parameters: the same optimum
        kw.update(_inits(truth, covariance_type))
    # mean field starts from k-means responsibilities: restarts find the global optimum
    ref = fastvem.GaussianMixture(**kw, n_init=1 if method != "meanfield" else 5).fit(X)
    stream = fastvem.GaussianMixture(**kw)
    rng = np.random.default_rng(0)
    for _ in range(3):
        perm = rng.permutation(X.shape[0])
        for s in range(0, X.shape[0], 1000):
            stream.partial_fit(X[perm[s:s + 1000]])
    assert stream.n_iter_ == 60
    # stated tolerance: means within 0.1, weights within 0.01, covariances within 0.1
    from scipy.optimize import linear_sum_assignment
    cost = ((ref.means_[:, None] - stream.means_[None]) ** 2).sum(-1)
    r, c = linear_sum_assignment(cost)
    np.testing.assert_allclose(stream.means_[c], ref.means_[r], atol=0.1)
    np.testing.assert_allclose(stream.weights_[c], ref.weights_[r], atol=0.01)
    if covariance_type == "tied":
        np.testing.assert_allclose(stream.covariances_, ref.covariances_, atol=0.1)
    else:
        np.testing.assert_allclose(np.asarray(stream.covariances_)[c],
                                   np.asarray(ref.covariances_)[r], atol=0.1)
    assert abs(stream.score(X) - ref.score(X)) < 0.01


def test_partial_fit_bad_input():
    X, _, _ = make_gaussian_mixture(500, 2, 2, random_state=0)
    g = fastvem.GaussianMixture(3)
    with pytest.raises(ValueError, match="at least n_components"):
        g.partial_fit(X[:2])
    g.partial_fit(X[:100])
    with pytest.raises(ValueError, match="features"):
        g.partial_fit(np.ones((10, 3)))
    with pytest.raises(ValueError):
        g.partial_fit(np.zeros((0, 2)))
    assert not hasattr(fastvem.GaussianMixture(2, method="gibbs"), "partial_fit")


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_memmap_fit_equals_in_memory_fit(tmp_path, dtype):
    X, _, _ = make_gaussian_mixture(30000, 4, 3, "diag", random_state=2, dtype=dtype)
    path = tmp_path / "x.npy"
    np.save(path, X)
    Xm = np.load(path, mmap_mode="r")
    assert isinstance(Xm, np.memmap)
    a = fastvem.GaussianMixture(3, covariance_type="diag", random_state=0).fit(X)
    b = fastvem.GaussianMixture(3, covariance_type="diag", random_state=0).fit(Xm)
    np.testing.assert_array_equal(a.means_, b.means_)
    np.testing.assert_array_equal(a.covariances_, b.covariances_)
    assert a.lower_bound_ == b.lower_bound_


@pytest.mark.parametrize("covariance_type", ["full", "tied", "diag", "spherical"])
def test_large_data_initialisation_reads_a_subsample(monkeypatch, covariance_type):
    """Above _KMEANS_MAX_ROWS rows, k-means runs on evenly spaced rows and every row
    goes to its nearest centre in one kernel pass (no N-sized array)."""
    import fastvem.models.gaussian_mixture as gm_mod
    from sklearn.metrics import adjusted_rand_score
    X, y, _ = make_gaussian_mixture(40000, 3, 4, covariance_type, separation=8.0,
                                    random_state=0)
    full = fastvem.GaussianMixture(4, covariance_type=covariance_type, random_state=0).fit(X)
    monkeypatch.setattr(gm_mod, "_KMEANS_MAX_ROWS", 3000)
    gm = fastvem.GaussianMixture(4, covariance_type=covariance_type, random_state=0).fit(X)
    assert gm.converged_
    assert adjusted_rand_score(y, gm.predict(X)) > 0.99
    assert gm.score(X) >= full.score(X) - 1e-3     # as good as k-means on every row


@pytest.mark.parametrize("covariance_type", ["full", "tied", "diag", "spherical"])
def test_memoized_meanfield_elbo_is_monotone_after_the_first_pass(covariance_type):
    X, _, _ = make_gaussian_mixture(6000, 3, 5, covariance_type, separation=2.0,
                                    random_state=1)
    gm = fastvem.GaussianMixture(5, covariance_type=covariance_type, method="meanfield",
                                 n_batches=7, max_iter=40, tol=0, random_state=0)
    with pytest.warns(Warning):           # tol=0: it runs all passes
        gm.fit(X)
    elbo = np.asarray(gm.lower_bounds_)
    assert len(elbo) == 40
    assert np.all(np.diff(elbo[1:]) >= -1e-10 * np.abs(elbo[2:])), np.diff(elbo).min()
    # and it ends where the batch mean-field fit ends
    ref = fastvem.GaussianMixture(5, covariance_type=covariance_type, method="meanfield",
                                  max_iter=500, tol=1e-9, random_state=0).fit(X)
    assert gm.score(X) == pytest.approx(ref.score(X), abs=0.02)


def test_memoized_bayesian_gaussian_mixture():
    X, _, _ = make_gaussian_mixture(4000, 2, 3, "diag", separation=3.0, random_state=0)
    bgm = fastvem.BayesianGaussianMixture(n_components=4, covariance_type="diag", n_batches=5,
                                          max_iter=30, tol=0, random_state=0)
    with pytest.warns(Warning):
        bgm.fit(X)
    lb = np.asarray(bgm.lower_bounds_)
    assert np.all(np.diff(lb[1:]) >= -1e-10 * np.abs(lb[2:]))


def test_memoized_needs_meanfield():
    X, _, _ = make_gaussian_mixture(300, 2, 2, random_state=0)
    with pytest.raises(ValueError, match="meanfield"):
        fastvem.GaussianMixture(2, n_batches=3).fit(X)
    with pytest.raises(ValueError, match="n_batches"):
        fastvem.GaussianMixture(2, method="meanfield", n_batches=0).fit(X)


@pytest.mark.parametrize("covariance_type", ["full", "tied", "diag", "spherical"])
def test_float32_single_point_components_do_not_give_negative_variances(covariance_type):
    """Regression: components started at single data points (random_from_data) have
    a variance of exactly 0; float32 sums about a distant reference used to make it
    negative (NaN precisions).  It is floored at 0 before reg_covar."""
    rng = np.random.default_rng(0)
    X = (rng.normal(size=(200000, 8)) * 3 + 5).astype(np.float32)
    gm = fastvem.GaussianMixture(16, covariance_type=covariance_type, max_iter=2,
                                 init_params="random_from_data", random_state=0)
    with pytest.warns(Warning):
        gm.fit(X)
    assert np.all(np.isfinite(gm.weights_)) and np.all(np.isfinite(gm.covariances_))
    assert np.isfinite(gm.score(X))


@pytest.mark.parametrize("update,per_sample,total", [("point", False, None),
                                                     ("point", True, None),
                                                     ("posterior", False, None),
                                                     ("posterior", False, 1000.0)])
def test_stepwise_schedule_is_the_documented_recursion(update, per_sample, total):
    """engine.Stepwise (every model's partial_fit): S_t = (1 - rho_t) S_{t-1} +
    rho_t * scale_t * stats_t with rho_0 = 1, rho_t = (offset + t)^-decay, and scale_t
    = (total_samples under mean field when given, else the weight seen; 1 per
    sample) / the chunk's weight; the update reads S_t and the E-step the previous
    parameters."""
    from fastvem.engine import RowStats, Stepwise

    class Method:
        pass

    class Toy:                               # statistics: the chunk's rows summed
        method = Method()

        def statistics(self, data, sw, params, t):
            self.seen_params.append(params)
            return RowStats(data.sum(0, keepdims=True), np.array([data.shape[0] * 1.0]),
                            np.zeros(3), data.shape[0])

        def update(self, S, t, params):
            return ("params", t), []

    Toy.method.update = update
    engine = Toy()
    engine.seen_params = []
    stream = Stepwise(engine, ("start", -1), per_sample=per_sample)
    rng = np.random.default_rng(0)
    decay, offset = 0.7, 2.0
    S, seen = None, 0.0
    for t in range(6):
        chunk = rng.normal(size=(int(rng.integers(3, 9)), 2))
        stream.step(chunk, None, float(len(chunk)), (decay, offset, total))
        seen += len(chunk)
        rho = 1.0 if t == 0 else (offset + t) ** -decay
        base = total if (update == "posterior" and total is not None) else (
            1.0 if per_sample and update == "point" else seen)
        new = chunk.sum(0, keepdims=True) * (rho * base / len(chunk))
        S = new if S is None else (1 - rho) * S + new
        np.testing.assert_allclose(stream.stats.stats, S, rtol=1e-13)
        assert engine.seen_params[-1] == (("start", -1) if t == 0 else ("params", t - 1))
    assert stream.t == 6 and stream.seen == seen


@pytest.mark.parametrize("make", [
    lambda: fastvem.BernoulliMixture(2, random_state=0),
    lambda: fastvem.BernoulliMixture(2, method="meanfield", random_state=0),
    lambda: fastvem.GaussianMixture(2, random_state=0),
    lambda: fastvem.GaussianMixture(2, method="meanfield", random_state=0)])
def test_a_pickled_stream_continues_as_the_original(make):
    """A model in the middle of partial_fit pickles with its stream, and the copy's
    next steps equal the original's, bit for bit."""
    import pickle
    rng = np.random.default_rng(3)
    X = (rng.random((600, 5)) < np.repeat(rng.random((2, 5)), 300, 0)).astype(float)
    X = X[rng.permutation(600)]
    est = make()
    for lo in range(0, 300, 100):
        est.partial_fit(X[lo:lo + 100])
    copy = pickle.loads(pickle.dumps(est))
    for lo in range(300, 600, 100):
        est.partial_fit(X[lo:lo + 100])
        copy.partial_fit(X[lo:lo + 100])
    for name in ("weights_", "probabilities_", "means_", "covariances_"):
        if hasattr(est, name):
            np.testing.assert_array_equal(getattr(copy, name), getattr(est, name))
