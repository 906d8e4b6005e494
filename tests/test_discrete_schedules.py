"""The fit schedules GaussianMixture has, on the discrete mixtures through the same
engine code: SQUAREM-accelerated em / vem (engine.squarem, in each family's
unconstrained coordinates) and memoized mean-field passes (n_batches)."""
import warnings

import numpy as np
import pytest
import scipy.sparse as sp

import fastvem
from fastvem.families import Categorical, Product


def _fit(est, X):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return est.fit(X)


def _data(kind, seed=0, N=3000, alpha=0.0):
    """Overlapping components (plain em converges slowly on them); alpha=0: maximum
    likelihood, whose em climbs the log-likelihood that lower_bounds_ records."""
    rng = np.random.RandomState(seed)
    z = rng.randint(3, size=N)
    if kind == "bernoulli":
        p = np.array([[0.3] * 10, [0.5] * 10, [0.3] * 5 + [0.6] * 5])
        return (rng.rand(N, 10) < p[z]).astype(float), \
            (lambda K, **kw: fastvem.BernoulliMixture(K, alpha=alpha, **kw))
    if kind == "categorical":
        X = np.column_stack([(z + (rng.rand(N) < 0.6) * rng.randint(3, size=N)) % 3
                             for _ in range(6)])
        return X, (lambda K, **kw: fastvem.CategoricalMixture(K, alpha=alpha, **kw))
    if kind == "poisson":
        rates = np.array([[2.0] * 4, [3.0] * 4, [2.0, 2.0, 3.5, 3.5]])
        return rng.poisson(rates[z]).astype(float), fastvem.PoissonMixture
    if kind == "multinomial":
        p = rng.dirichlet(np.ones(30), 3) * 0.3 + 0.7 / 30
        return sp.csr_matrix(np.vstack([rng.multinomial(40, p[k]) for k in z]).astype(float)), \
            (lambda K, **kw: fastvem.MultinomialMixture(K, alpha=alpha, **kw))
    X = np.column_stack([rng.normal(1.0 * z, 1.0), rng.normal(0.5 * z, 1.0),
                         (z + (rng.rand(N) < 0.5)) % 3])
    fam = Product([("gaussian_diag", [0, 1]), (Categorical([3], alpha=alpha), [2])])
    return X, (lambda K, **kw: fastvem.Mixture(fam, K, **kw))


KINDS = ["bernoulli", "categorical", "poisson", "multinomial", "product"]


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("method", ["em", "vem"])
def test_squarem_reaches_the_em_fixed_point_monotonically(kind, method):
    X, cls = _data(kind)
    plain = _fit(cls(3, method=method, random_state=0, tol=1e-10, max_iter=3000), X)
    fast = _fit(cls(3, method=method, random_state=0, tol=1e-10, max_iter=3000,
                    accelerate="squarem"), X)
    # the safeguard keeps every accelerated iterate at or above the plain step's
    lb = np.asarray(fast.lower_bounds_)
    assert np.all(np.diff(lb) >= -1e-9 * np.abs(lb[1:]))
    # the same stationary point (the same start, a likelihood that both climb), or a
    # better one; never a worse one
    assert fast.lower_bound_ >= plain.lower_bound_ - 1e-6
    if abs(fast.lower_bound_ - plain.lower_bound_) < 1e-6:
        np.testing.assert_allclose(fast.weights_, plain.weights_, atol=2e-3)
    assert fast.n_e_steps_ <= plain.n_e_steps_
    assert plain.n_e_steps_ == plain.n_iter_


@pytest.mark.parametrize("kind", ["bernoulli", "categorical", "product"])
def test_squarem_with_a_prior_reaches_the_map_fixed_point(kind):
    """alpha > 0: em climbs log-likelihood + log prior; the safeguard compares that,
    and the accelerated fit ends at the plain fit's MAP point."""
    X, cls = _data(kind, alpha=1.0)
    plain = _fit(cls(3, random_state=0, tol=1e-11, max_iter=5000), X)
    fast = _fit(cls(3, random_state=0, tol=1e-11, max_iter=5000, accelerate="squarem"), X)
    def map_objective(est):
        return est.score(X) + est._family_.log_prior(est._theta) / X.shape[0]

    assert map_objective(fast) >= map_objective(plain) - 1e-7
    assert abs(fast.lower_bound_ - plain.lower_bound_) < 1e-5
    assert fast.n_e_steps_ <= plain.n_e_steps_


def test_squarem_saves_e_steps_where_em_crawls():
    X, cls = _data("bernoulli", seed=1, N=5000)
    plain = _fit(cls(3, random_state=0, tol=1e-9, max_iter=5000), X)
    fast = _fit(cls(3, random_state=0, tol=1e-9, max_iter=5000, accelerate="squarem"), X)
    assert plain.n_iter_ > 100                      # em crawls here
    assert fast.n_e_steps_ < 0.6 * plain.n_e_steps_
    assert fast.lower_bound_ >= plain.lower_bound_ - 1e-7


@pytest.mark.parametrize("kind", KINDS)
def test_memoized_meanfield(kind):
    X, cls = _data(kind, seed=2)
    plain = _fit(cls(3, method="meanfield", random_state=0, max_iter=40, tol=0), X)
    one = _fit(cls(3, method="meanfield", random_state=0, max_iter=40, tol=0, n_batches=1), X)
    # one batch is the plain pass, bit for bit
    assert np.array_equal(one.lower_bounds_, plain.lower_bounds_)
    assert np.array_equal(one.weights_, plain.weights_)
    memo = _fit(cls(3, method="meanfield", random_state=0, max_iter=200, tol=1e-10,
                    n_batches=7), X)
    lb = np.asarray(memo.lower_bounds_)
    # every visit is an exact coordinate ascent step once the totals hold every batch
    assert np.all(np.diff(lb[1:]) >= -1e-9 * np.abs(lb[2:]))
    assert memo.lower_bound_ >= plain.lower_bound_ - 1e-3


def test_schedule_refusals():
    X, cls = _data("bernoulli")
    for method in ("crisp", "meanfield", "gibbs"):
        with pytest.raises(ValueError, match="accelerate='squarem' extrapolates em / vem"):
            cls(2, method=method, accelerate="squarem").fit(X)
    with pytest.raises(ValueError, match="accelerate must be None or 'squarem'"):
        cls(2, accelerate="aitken").fit(X)
    with pytest.raises(ValueError, match="n_batches .* is for method='meanfield'"):
        cls(2, n_batches=3).fit(X)
    with pytest.raises(ValueError, match="n_batches must be an integer >= 1"):
        cls(2, method="meanfield", n_batches=0).fit(X)
    with pytest.raises(ValueError, match="not sliced"):
        cls(2, method="meanfield", n_batches=3).fit([X[:1000], X[1000:]])
    numba = pytest.importorskip("numba")
    del numba
    from fastvem.families.numba_family import example_poisson
    Xp, _ = _data("poisson")
    with pytest.raises(ValueError, match="unconstrained coordinates"):
        fastvem.Mixture(example_poisson(), 2, accelerate="squarem", random_state=0).fit(Xp)
