"""Discrete mixtures (BernoulliMixture, CategoricalMixture, PoissonMixture) on the
compiled exponential-family row driver: each method against the NumPy oracle in
tests/oracle_discrete.py iterate for iterate, monotone objectives, thread
invariance, ground truth, real data and bad input."""
import numpy as np
import pytest

from fastvem import BernoulliMixture, CategoricalMixture, PoissonMixture

import oracle_discrete as od


# ------------------------------------------------------------------ data
def bernoulli_data(n=3000, d=12, k=3, seed=0):
    rng = np.random.default_rng(seed)
    p = rng.uniform(0.05, 0.95, (k, d))
    w = np.array([0.5, 0.3, 0.2])[:k] / np.array([0.5, 0.3, 0.2])[:k].sum()
    z = rng.choice(k, n, p=w)
    return (rng.random((n, d)) < p[z]).astype(np.uint8), z, w, p


def categorical_data(n=3000, cats=(3, 4, 2, 5, 3), k=3, seed=0):
    rng = np.random.default_rng(seed)
    w = np.array([0.5, 0.3, 0.2])[:k] / np.array([0.5, 0.3, 0.2])[:k].sum()
    z = rng.choice(k, n, p=w)
    probs = [rng.dirichlet(np.full(L, 0.5), size=k) for L in cats]
    X = np.column_stack([[rng.choice(L, p=probs[j][zi]) for zi in z]
                         for j, L in enumerate(cats)])
    return X.astype(np.int64), z, w, probs


def poisson_data(n=3000, d=6, k=3, seed=0):
    rng = np.random.default_rng(seed)
    rates = rng.uniform(0.5, 12.0, (k, d))
    w = np.array([0.5, 0.3, 0.2])[:k] / np.array([0.5, 0.3, 0.2])[:k].sum()
    z = rng.choice(k, n, p=w)
    return rng.poisson(rates[z]).astype(np.float64), z, w, rates


def _start(kind, K, seed=1):
    rng = np.random.default_rng(seed)
    w = rng.dirichlet(np.full(K, 5.0))
    if kind == "bernoulli":
        return w, rng.uniform(0.2, 0.8, (K, 12))
    if kind == "poisson":
        return w, rng.uniform(1.0, 8.0, (K, 6))
    return w, [rng.dirichlet(np.ones(L), size=K) for L in (3, 4, 2, 5, 3)]


def _estimator(kind, K, method, w, theta, **kw):
    if kind == "bernoulli":
        return BernoulliMixture(K, method=method, weights_init=w, probabilities_init=theta, **kw)
    if kind == "poisson":
        return PoissonMixture(K, method=method, weights_init=w, rates_init=theta, **kw)
    return CategoricalMixture(K, method=method, weights_init=w, probabilities_init=theta,
                              n_categories=[3, 4, 2, 5, 3], **kw)


DATA = {"bernoulli": bernoulli_data, "categorical": categorical_data, "poisson": poisson_data}


def _theta(est, kind):
    return est.rates_ if kind == "poisson" else est.probabilities_


# --------------------------------------------------- em / crisp vs oracle
@pytest.mark.parametrize("kind", ["bernoulli", "categorical", "poisson"])
@pytest.mark.parametrize("method", ["em", "vem", "crisp"])
@pytest.mark.parametrize("weighted", [False, True])
def test_point_methods_equal_the_oracle_iterate_for_iterate(kind, method, weighted):
    X, _, _, _ = DATA[kind]()
    sw = np.random.default_rng(3).uniform(0.2, 2.0, X.shape[0]) if weighted else None
    K = 3
    w, theta = _start(kind, K)
    step = {"em": "em", "vem": "em", "crisp": "crisp"}[method]
    ow, ot = w.copy(), [t.copy() for t in theta] if kind == "categorical" else theta.copy()
    objectives = []
    for n_iter in range(1, 6):
        if kind == "bernoulli":
            ow, ot, obj = getattr(od, f"bernoulli_{step}_step")(X, sw, ow, ot, 1.0)
        elif kind == "categorical":
            ow, ot, obj = getattr(od, f"categorical_{step}_step")(X, sw, ow, ot, [3, 4, 2, 5, 3],
                                                                  1.0)
        else:
            ow, ot, obj = getattr(od, f"poisson_{step}_step")(X, sw, ow, ot, 1e-10)
        objectives.append(obj)
        est = _estimator(kind, K, method, w, theta, max_iter=n_iter, tol=0.0)
        with pytest.warns(Warning):
            est.fit(X, sample_weight=sw)
        np.testing.assert_allclose(est.weights_, ow, rtol=1e-10, atol=1e-12)
        got = _theta(est, kind)
        for a, b in zip(got if kind == "categorical" else [got],
                        ot if kind == "categorical" else [ot]):
            np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-12)
        np.testing.assert_allclose(est.lower_bounds_, objectives, rtol=1e-10)


@pytest.mark.parametrize("kind", ["bernoulli", "categorical", "poisson"])
def test_meanfield_equals_the_oracle(kind):
    X, _, _, _ = DATA[kind]()
    K = 3
    w, theta = _start(kind, K)
    est = _estimator(kind, K, "meanfield", w, theta, max_iter=4, tol=0.0)
    with pytest.warns(Warning):
        est.fit(X)
    # the oracle from the same q: the estimator's initial pseudo-counts
    nk0 = w * X.shape[0]
    g0 = 1.0 / K
    conc = g0 + nk0
    if kind == "bernoulli":
        a, b = 2.0 + theta * nk0[:, None], 2.0 + (1 - theta) * nk0[:, None]
        for _ in range(4):
            conc, a, b, elbo = od.bernoulli_meanfield_step(X, None, conc, a, b, g0, 1.0)
        np.testing.assert_allclose(est.probabilities_, a / (a + b), rtol=1e-9)
    elif kind == "categorical":
        A = [2.0 + t * nk0[:, None] for t in theta]
        for _ in range(4):
            conc, A, elbo = od.categorical_meanfield_step(X, None, conc, A, [3, 4, 2, 5, 3], g0,
                                                          1.0)
        for got, Aj in zip(est.probabilities_, A):
            np.testing.assert_allclose(got, Aj / Aj.sum(1, keepdims=True), rtol=1e-9)
    else:
        shape0 = np.ones(6)
        rate0 = 1.0 / X.mean(0)
        s, t = shape0 + theta * nk0[:, None], rate0 + nk0[:, None] + 0 * theta
        for _ in range(4):
            conc, s, t, elbo = od.poisson_meanfield_step(X, None, conc, s, t, g0, shape0, rate0)
        np.testing.assert_allclose(est.rates_, s / t, rtol=1e-9)
    np.testing.assert_allclose(est.weight_concentration_, conc, rtol=1e-10)
    np.testing.assert_allclose(est.lower_bound_, elbo, rtol=1e-9)


# ---------------------------------------------------------- properties
@pytest.mark.parametrize("kind", ["bernoulli", "categorical", "poisson"])
@pytest.mark.parametrize("method", ["em", "meanfield", "crisp"])
def test_objective_never_decreases(kind, method):
    """em / crisp with alpha=0 (maximum likelihood: with alpha > 0 their M-step is a
    MAP step, under which only objective + log prior is monotone); meanfield with
    its prior (the ELBO includes it)."""
    X, _, _, _ = DATA[kind](seed=5)
    kw = {} if kind == "poisson" or method == "meanfield" else {"alpha": 0.0}
    est = DATA_EST[kind](4, method=method, max_iter=40, tol=0.0, random_state=0, **kw)
    with pytest.warns(Warning):
        est.fit(X)
    lb = np.array(est.lower_bounds_)
    assert np.all(np.diff(lb) >= -1e-9 * np.abs(lb[1:])), np.diff(lb).min()


DATA_EST = {"bernoulli": BernoulliMixture, "categorical": CategoricalMixture,
            "poisson": PoissonMixture}


@pytest.mark.parametrize("kind", ["bernoulli", "categorical", "poisson"])
@pytest.mark.parametrize("method", ["em", "meanfield", "crisp", "gibbs"])
def test_thread_invariance_bitwise(kind, method):
    X, _, _, _ = DATA[kind](n=20000)
    fits = [DATA_EST[kind](3, method=method, max_iter=5, tol=0.0, random_state=0, n_threads=t,
                           n_samples=5, burn_in=2).fit(X) for t in (1, 2, 3)]
    for f in fits[1:]:
        assert np.array_equal(f.weights_, fits[0].weights_)
        assert f.lower_bounds_ == fits[0].lower_bounds_


@pytest.mark.parametrize("kind", ["bernoulli", "categorical", "poisson", "multinomial"])
def test_predictions_thread_invariant(kind, tmp_path):
    """predict_proba / score_samples: bitwise the same for 1 and 3 threads, call
    after call.  (A per-row log h once raced between the threads of log_joint_rows:
    Poisson rows read from a memmap showed it in most calls.)"""
    import scipy.sparse as sp
    from fastvem import MultinomialMixture
    if kind == "multinomial":
        X, est = sp.csr_matrix(_corpus(n=3000)[0]), MultinomialMixture(3, random_state=0)
    else:
        X, est = DATA[kind](n=2000)[0], DATA_EST[kind](3, random_state=0)
        X = np.ascontiguousarray(X, dtype=np.float64 if kind == "poisson" else
                                 (np.int32 if kind == "categorical" else np.uint8))
        mm = np.memmap(str(tmp_path / "x.dat"), dtype=X.dtype, mode="w+", shape=X.shape)
        mm[:] = X
        mm.flush()
        X = np.memmap(str(tmp_path / "x.dat"), dtype=X.dtype, mode="r", shape=X.shape)
    est.fit(X)
    ref = [est.set_params(n_threads=1).predict_proba(X), est.score_samples(X)]
    est.set_params(n_threads=3)
    for _ in range(10):
        np.testing.assert_array_equal(est.predict_proba(X), ref[0])
        np.testing.assert_array_equal(est.score_samples(X), ref[1])


@pytest.mark.parametrize("kind", ["bernoulli", "categorical", "poisson"])
@pytest.mark.parametrize("method", ["em", "meanfield", "gibbs"])
def test_ground_truth_recovered(kind, method):
    """The labels are as good as the true parameters' (the Bayes classifier's ARI,
    from the oracle), and the parameters, matched to the truth, are close."""
    from scipy.optimize import linear_sum_assignment
    from sklearn.metrics import adjusted_rand_score
    X, z, w, truth = DATA[kind](n=4000, seed=2)
    bayes = adjusted_rand_score(z, getattr(od, f"{kind}_log_joint")(X, w, truth).argmax(1))
    est = DATA_EST[kind](3, method=method, random_state=0, n_init=3, max_iter=300, tol=1e-8,
                         n_samples=100, burn_in=50).fit(X)
    assert adjusted_rand_score(z, est.predict(X)) > bayes - 0.03
    got = _theta(est, kind)
    if kind == "categorical":
        got, truth = np.hstack(got), np.hstack(truth)
    scale = truth.mean() if kind == "poisson" else 1.0
    cost = np.abs(got[:, None, :] - truth[None, :, :]).mean(-1)
    rows, cols = linear_sum_assignment(cost)
    np.testing.assert_allclose(est.weights_[rows], w[cols], atol=0.04)
    assert np.max(np.abs(got[rows] - truth[cols])) / scale < 0.15
    assert cost[rows, cols].mean() / scale < 0.03


def test_gibbs_keeps_relabelled_draws():
    X, _, _, _ = bernoulli_data(n=2000)
    est = BernoulliMixture(3, method="gibbs", n_samples=50, burn_in=20, n_chains=3,
                           random_state=0).fit(X)
    # the kept draws of every chain, on common labels
    assert est.posterior_samples_["weights"].shape == (150, 3)
    assert est.posterior_samples_["theta"].shape == (150, 3, 12)
    np.testing.assert_allclose(est.weights_, est.posterior_samples_["weights"].mean(0))
    # the chains' diagnostics, as GaussianMixture's: the log joint of every sweep of
    # every chain, and R-hat / ESS of the monitored quantities
    assert est.log_joint_.shape == (3, 70)
    assert est.n_iter_ == 70
    assert {"log_joint", "allocation_entropy", "weight_0", "theta_2_11"} <= set(est.mixing_)
    rhats = [v[0] for v in est.mixing_.values()]
    assert est.rhat_ == max(rhats)
    assert est.converged_ == all(r < 1.01 and v[1] >= 100 * 3
                                 for r, v in zip(rhats, est.mixing_.values()))
    # well-separated data: the chains agree after relabelling
    draws = est.posterior_samples_["theta"].reshape(3, 50, 3, 12).mean(1)
    assert np.max(np.abs(draws - draws.mean(0))) < 0.05


def test_gibbs_callback_stops_the_sampler():
    X, _, _, _ = bernoulli_data(n=500)
    seen = []
    est = BernoulliMixture(2, method="gibbs", n_samples=20, burn_in=5, n_chains=2,
                           random_state=0)
    est.fit(X, callback=lambda it, obj, params: seen.append((it, obj)) or it == 12)
    # the first chain stopped at sweep 12: its draws (7 kept) and no second chain
    assert [it for it, _ in seen] == list(range(1, 13))
    assert est.posterior_samples_["weights"].shape == (7, 2)
    assert est.log_joint_.shape == (1, 12)


def test_sample_weight_equals_repeated_rows():
    X, _, _, _ = bernoulli_data(n=500)
    reps = np.random.default_rng(0).integers(1, 4, X.shape[0])
    w, theta = _start("bernoulli", 3)
    a = BernoulliMixture(3, weights_init=w, probabilities_init=theta, max_iter=5,
                         tol=0).fit(X, sample_weight=reps.astype(float))
    b = BernoulliMixture(3, weights_init=w, probabilities_init=theta, max_iter=5,
                         tol=0).fit(np.repeat(X, reps, axis=0))
    np.testing.assert_allclose(a.probabilities_, b.probabilities_, rtol=1e-10)
    np.testing.assert_allclose(a.weights_, b.weights_, rtol=1e-10)


def test_float32_counts_and_bool_bernoulli():
    X, _, _, _ = poisson_data()
    w, r = _start("poisson", 3)
    a = PoissonMixture(3, weights_init=w, rates_init=r, max_iter=5, tol=0).fit(X)
    b = PoissonMixture(3, weights_init=w, rates_init=r, max_iter=5,
                       tol=0).fit(X.astype(np.float32))
    np.testing.assert_allclose(a.rates_, b.rates_, rtol=1e-6)
    Xb, _, _, _ = bernoulli_data()
    w, p = _start("bernoulli", 3)
    c = BernoulliMixture(3, weights_init=w, probabilities_init=p, max_iter=3, tol=0).fit(Xb)
    d = BernoulliMixture(3, weights_init=w, probabilities_init=p, max_iter=3,
                         tol=0).fit(Xb.astype(bool))
    np.testing.assert_array_equal(c.probabilities_, d.probabilities_)
    f = BernoulliMixture(3, weights_init=w, probabilities_init=p, max_iter=3, tol=0,
                         binarize=2.5).fit(Xb * 5.0)
    np.testing.assert_array_equal(c.probabilities_, f.probabilities_)


def test_score_predict_sample_bic():
    X, _, _, _ = categorical_data()
    est = CategoricalMixture(3, random_state=0).fit(X)
    lj = est.score_samples(X)
    assert lj.shape == (X.shape[0],) and np.all(lj < 0)
    P = est.predict_proba(X)
    np.testing.assert_allclose(P.sum(1), 1.0)
    assert np.array_equal(est.predict(X), P.argmax(1))
    Xs, ys = est.sample(200)
    assert Xs.shape == (200, 5) and np.all(Xs < np.array([3, 4, 2, 5, 3]))
    n_par = 3 * (2 + 3 + 1 + 4 + 2) + 2
    np.testing.assert_allclose(est.bic(X), -2 * est.score(X) * len(X) + n_par * np.log(len(X)))


# ------------------------------------------------------------- real data
def test_bernoulli_on_binarised_digits():
    """Binarised 8x8 digits: 10 components separate the digits far better than
    chance, and more components fit the held-out half better than one."""
    from sklearn.datasets import load_digits
    from sklearn.metrics import adjusted_rand_score
    X, y = load_digits(return_X_y=True)
    Xb = (X > 7).astype(np.uint8)
    tr, te = np.arange(0, len(X), 2), np.arange(1, len(X), 2)
    one = BernoulliMixture(1).fit(Xb[tr])
    ten = BernoulliMixture(10, random_state=0, n_init=2, max_iter=200).fit(Xb[tr])
    assert ten.score(Xb[te]) > one.score(Xb[te]) + 5.0
    assert adjusted_rand_score(y[te], ten.predict(Xb[te])) > 0.4


# ------------------------------------------------------------- bad input
@pytest.mark.parametrize("make, match", [
    (lambda: BernoulliMixture(2).fit(np.array([[0, 2], [1, 0], [1, 1]])), "only 0 and 1"),
    (lambda: PoissonMixture(2).fit(np.array([[0, -1.0], [1, 0], [2, 1]])), "Negative values"),
    (lambda: CategoricalMixture(2).fit(np.array([[0, -1], [1, 0], [1, 1]])), ">= 0"),
    (lambda: CategoricalMixture(2, n_categories=[2, 2]).fit(np.array([[0, 2], [1, 0], [1, 1]])),
     "not a category"),
    (lambda: CategoricalMixture(2).fit(np.array([[0, 0.5], [1, 0], [1, 1]])), "integer"),
    (lambda: PoissonMixture(2).fit(np.array([[0, np.nan], [1, 0], [2, 1]])), "NaN"),
    (lambda: BernoulliMixture(2).fit(np.array([[0, np.inf], [1, 0], [1, 1]])), "infinity"),
    (lambda: BernoulliMixture(5).fit(np.array([[0, 1], [1, 0], [1, 1]])), "n_components"),
    (lambda: BernoulliMixture(2, probabilities_init=np.full((2, 3), 0.5)).fit(
        np.array([[0, 1], [1, 0], [1, 1]])), "probabilities_init"),
    (lambda: BernoulliMixture(2, probabilities_init=np.full((2, 2), 1.5)).fit(
        np.array([[0, 1], [1, 0], [1, 1]])), "probabilities_init"),
    (lambda: PoissonMixture(2, rates_init=-np.ones((2, 2))).fit(
        np.array([[0, 1], [1, 0], [1, 1.0]])), "rates_init"),
    (lambda: BernoulliMixture(2, weights_init=[0.7, 0.7]).fit(
        np.array([[0, 1], [1, 0], [1, 1]])), "weights_init"),
    (lambda: BernoulliMixture(2, alpha=-1).fit(np.array([[0, 1], [1, 0], [1, 1]])), "alpha"),
    (lambda: BernoulliMixture(2).fit(np.zeros((0, 3))), "0 sample"),
    (lambda: BernoulliMixture(2).fit(np.array([0, 1, 1])), "2D array"),
    (lambda: BernoulliMixture(2, method="newton").fit(np.array([[0, 1], [1, 0], [1, 1]])),
     "method"),
])
def test_bad_input_is_a_clear_error(make, match):
    with pytest.raises((ValueError, TypeError), match=match):
        make()


def test_degenerate_data_fits():
    """A constant column, duplicate rows and an all-zero Poisson column fit."""
    Xb = np.tile([[1, 0, 1]], (50, 1)).astype(np.uint8)
    for method in ("em", "meanfield", "crisp", "gibbs"):
        est = BernoulliMixture(2, method=method, random_state=0, n_samples=10,
                               burn_in=5).fit(Xb)
        assert np.all(np.isfinite(est.probabilities_))
    Xp = np.column_stack([np.zeros(60), np.arange(60) % 3]).astype(float)
    for method in ("em", "meanfield", "crisp", "gibbs"):
        est = PoissonMixture(2, method=method, random_state=0, n_samples=10,
                             burn_in=5).fit(Xp)
        assert np.all(np.isfinite(est.rates_)) and np.all(est.rates_ > 0)


# --------------------------------------------------------------- persistence
@pytest.mark.parametrize("kind", ["bernoulli", "categorical", "poisson"])
@pytest.mark.parametrize("method", ["em", "meanfield", "gibbs"])
def test_save_load_round_trip(kind, method, tmp_path):
    import fastvem
    X, _, _, _ = DATA[kind](n=400)
    est = DATA_EST[kind](3, method=method, random_state=0, n_samples=20, burn_in=5).fit(X)
    path = str(tmp_path / "m.npz")
    est.save(path)
    back = fastvem.load(path)
    assert type(back) is type(est) and back.get_params() == est.get_params()
    np.testing.assert_array_equal(back.predict_proba(X), est.predict_proba(X))
    np.testing.assert_array_equal(back.score_samples(X), est.score_samples(X))
    assert back.lower_bounds_ == est.lower_bounds_


@pytest.mark.parametrize("member, value, match", [
    ("attr__weights_", np.array([0.5, 0.6, 0.1]), "weights_"),
    ("list__probabilities_.1", np.full((3, 4), 0.5), r"probabilities_\[1\]"),
    ("attr__posterior_", -np.ones((1, 3, 17)), "posterior_"),
    ("attr__n_categories_", np.array([3, 0, 2, 5, 3]), "n_categories_"),
    ("list__probabilities_.7", np.full((3, 4), 0.25), "probabilities_"),
])
def test_corrupted_categorical_file_is_refused(member, value, match, tmp_path):
    import fastvem
    X, _, _, _ = categorical_data(n=300)
    path = str(tmp_path / "m.npz")
    CategoricalMixture(3, method="meanfield", random_state=0).fit(X).save(path)
    with np.load(path, allow_pickle=False) as f:
        files = {k: f[k] for k in f.files}
    assert member in files or member.endswith(".7")
    files[member] = value
    bad = str(tmp_path / "bad.npz")
    np.savez(bad, **files)
    with pytest.raises(ValueError, match=match):
        fastvem.load(bad)


def test_kernels_import_no_estimator():
    """fastvem.kernels, the backend API, loads without any estimator module."""
    import subprocess
    import sys
    code = ("import sys, fastvem.kernels; "
            "assert not [m for m in sys.modules if m.startswith('fastvem.models')], "
            "sorted(m for m in sys.modules if m.startswith('fastvem'))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr


def test_verbose_prints_scikit_learn_lines(capsys):
    X, _, _, _ = poisson_data(n=300)
    PoissonMixture(2, verbose=2, verbose_interval=2, max_iter=4, tol=0.0, n_init=2,
                   random_state=0).fit(X)
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "Initialization 0" and "Initialization 1" in out
    assert sum(line.startswith("  Iteration 2\t time lapse") for line in out) == 2
    assert out[-1].startswith("Initialization did not converge. time lapse")
    PoissonMixture(2, verbose=1, max_iter=200, tol=1e-3, random_state=0).fit(X)
    assert capsys.readouterr().out.splitlines()[-1] == "Initialization converged."


# ------------------------------------------------------------ multinomial
def _corpus(n=600, V=80, k=3, seed=0):
    rng = np.random.default_rng(seed)
    beta = rng.dirichlet(np.full(V, 0.1), size=k)
    w = np.array([0.5, 0.3, 0.2])[:k]
    z = rng.choice(k, n, p=w / w.sum())
    lengths = rng.integers(20, 60, n)
    X = np.array([rng.multinomial(L, beta[zi]) for L, zi in zip(lengths, z)], dtype=float)
    return X, z, w, beta


@pytest.mark.parametrize("method", ["em", "crisp", "meanfield"])
@pytest.mark.parametrize("sparse", [False, True])
def test_multinomial_equals_the_oracle(method, sparse):
    import scipy.sparse as sp
    from fastvem import MultinomialMixture
    X, _, _, _ = _corpus()
    sw = np.random.default_rng(1).uniform(0.5, 2.0, X.shape[0])
    rng = np.random.default_rng(2)
    w0, p0 = rng.dirichlet(np.full(3, 5.0)), rng.dirichlet(np.ones(X.shape[1]), size=3)
    est = MultinomialMixture(3, method=method, weights_init=w0, probabilities_init=p0,
                             max_iter=4, tol=0.0)
    with pytest.warns(Warning):
        est.fit(sp.csr_matrix(X) if sparse else X, sample_weight=sw)
    if method == "meanfield":
        nk0 = w0 * sw.sum()
        conc, A = 1 / 3 + nk0, 2.0 + p0 * nk0[:, None]
        for _ in range(4):
            conc, A, elbo = od.multinomial_meanfield_step(X, sw, conc, A, 1 / 3, 1.0)
        np.testing.assert_allclose(est.probabilities_, A / A.sum(1, keepdims=True), rtol=1e-9)
        np.testing.assert_allclose(est.lower_bound_, elbo, rtol=1e-9)
        return
    w, p, objs = w0, p0, []
    for _ in range(4):
        w, p, obj = getattr(od, f"multinomial_{method}_step")(X, sw, w, p, 1.0)
        objs.append(obj)
    np.testing.assert_allclose(est.weights_, w, rtol=1e-10)
    np.testing.assert_allclose(est.probabilities_, p, rtol=1e-9)
    np.testing.assert_allclose(est.lower_bounds_, objs, rtol=1e-10)


def test_multinomial_never_densifies_threads_and_truth():
    import scipy.sparse as sp
    from sklearn.metrics import adjusted_rand_score
    from fastvem import MultinomialMixture
    X, z, w, beta = _corpus(n=1500, seed=3)
    Xs = sp.csr_matrix(X)
    fits = [MultinomialMixture(3, method=m, random_state=0, n_threads=t, n_init=2,
                               n_samples=60, burn_in=30).fit(Xs)
            for m in ("em", "gibbs") for t in (1, 2, 3)]
    for a, b in ((fits[0], fits[1]), (fits[0], fits[2]), (fits[3], fits[4]), (fits[3], fits[5])):
        assert np.array_equal(a.weights_, b.weights_) and a.lower_bounds_ == b.lower_bounds_
        assert np.array_equal(a.probabilities_, b.probabilities_)
    bayes = adjusted_rand_score(z, od.multinomial_log_joint(X, w, beta).argmax(1))
    for est in (fits[0], fits[3]):
        assert adjusted_rand_score(z, est.predict(Xs)) > bayes - 0.03
    lb = np.array(MultinomialMixture(3, alpha=0.0, max_iter=30, tol=0.0,
                                     random_state=1).fit(Xs).lower_bounds_)
    assert np.all(np.diff(lb) >= -1e-9 * np.abs(lb[1:]))


def test_multinomial_on_reuters():
    """The lda package's Reuters corpus (395 documents, 4,258 words): more
    components fit the held-out documents better than one, every method runs."""
    lda = pytest.importorskip("lda")
    import scipy.sparse as sp
    from fastvem import MultinomialMixture
    X = sp.csr_matrix(lda.datasets.load_reuters())
    tr, te = np.arange(0, X.shape[0], 2), np.arange(1, X.shape[0], 2)
    one = MultinomialMixture(1).fit(X[tr])
    scores = {}
    for method in ("em", "meanfield", "crisp", "gibbs"):
        est = MultinomialMixture(5, method=method, random_state=0, n_samples=40, burn_in=20,
                                 max_iter=200).fit(X[tr])
        scores[method] = est.score(X[te])
        assert np.all(np.isfinite(est.predict_proba(X[te])))
    assert scores["em"] > one.score(X[te]) + 5.0, scores
    assert scores["meanfield"] > one.score(X[te]) + 5.0, scores


def test_multinomial_bad_input_and_save(tmp_path):
    import scipy.sparse as sp
    import fastvem
    from fastvem import MultinomialMixture
    with pytest.raises(ValueError, match="Negative values"):
        MultinomialMixture(2).fit(sp.csr_matrix(np.array([[1.0, -1.0], [2, 0], [0, 3]])))
    with pytest.raises(ValueError, match="NaN|infinity"):
        MultinomialMixture(2).fit(np.array([[1.0, np.nan], [2, 0], [0, 3]]))
    X, _, _, _ = _corpus(n=200)
    est = MultinomialMixture(3, method="meanfield", random_state=0).fit(sp.csr_matrix(X))
    with pytest.raises(ValueError, match="features"):
        est.predict(X[:, :5])
    path = str(tmp_path / "m.npz")
    est.save(path)
    back = fastvem.load(path)
    np.testing.assert_array_equal(back.predict_proba(X), est.predict_proba(X))
    Xs, y = est.sample(10)
    assert Xs.shape == (10, X.shape[1]) and np.all(Xs >= 0)


# ------------------------------------------------------- gibbs calibration
def _sbc_case(kind, rng):
    """(true theta functional, data, estimator) with parameters drawn from the
    estimator's own prior: pi ~ Dirichlet(1), theta from the family's prior."""
    K, N = 2, 25
    pi = rng.dirichlet(np.ones(K))
    z = rng.choice(K, size=N, p=pi)
    kw = dict(method="gibbs", n_samples=19, burn_in=20, thin=3, n_chains=1, init_params="random",
              weight_concentration_prior=1.0)
    if kind == "bernoulli":
        p = rng.beta(1.0, 1.0, (K, 3))                  # alpha=0: Beta(1, 1)
        X = (rng.random((N, 3)) < p[z]).astype(np.uint8)
        return pi @ p[:, 0], X, BernoulliMixture(K, alpha=0.0, **kw), lambda e, s: s[:, :, 0]
    if kind == "poisson":
        lam = rng.gamma(2.0, 1.0 / 0.5, (K, 2))         # Gamma(shape 2, rate 0.5)
        X = rng.poisson(lam[z]).astype(np.float64)
        return (pi @ lam[:, 0], X, PoissonMixture(K, shape_prior=2.0, rate_prior=0.5, **kw),
                lambda e, s: s[:, :, 0])
    probs = rng.dirichlet(np.ones(3), size=K)           # alpha=0: Dirichlet(1)
    if kind == "multinomial":                           # documents of 6 words over 3
        from fastvem import MultinomialMixture
        X = np.array([rng.multinomial(6, probs[zi]) for zi in z]).astype(np.float64)
        return pi @ probs[:, 0], X, MultinomialMixture(K, alpha=0.0, **kw), \
            lambda e, s: s[:, :, 0]
    X = np.array([[rng.choice(3, p=probs[zi])] for zi in z])
    return (pi @ probs[:, 0], X, CategoricalMixture(K, alpha=0.0, n_categories=[3], **kw),
            lambda e, s: s[:, :, 0])


@pytest.mark.parametrize("kind", ["bernoulli", "poisson", "categorical", "multinomial"])
def test_gibbs_simulation_based_calibration(kind):
    """SBC (Talts et al. 2018): parameters drawn from the prior, data from the model;
    the rank of a label-invariant functional of the truth (sum_k pi_k theta_k0)
    among the kept posterior draws must be uniform."""
    from scipy import stats
    rng = np.random.default_rng(2024)
    ranks = []
    for rep in range(150):
        truth, X, est, pick = _sbc_case(kind, rng)
        est.set_params(random_state=rep).fit(X)
        ps = est.posterior_samples_
        f_draws = (ps["weights"] * pick(est, ps["theta"])).sum(1)
        ranks.append(int((f_draws < truth).sum()))
    counts = np.bincount(ranks, minlength=20).reshape(5, 4).sum(1)     # 5 bins of 4 ranks
    assert stats.chisquare(counts).pvalue > 1e-3, counts


@pytest.mark.parametrize("kind", ["bernoulli", "categorical", "poisson"])
def test_memmap_fits_as_the_array(kind, tmp_path):
    """A np.memmap of the rows fits exactly as the array in memory (the kernels read
    it in place where its dtype is the kernel's; Bernoulli rows are packed 8 a byte)."""
    X, _, _, _ = DATA[kind](n=2000)
    X = np.ascontiguousarray(X, dtype=np.float64 if kind == "poisson" else
                             (np.int32 if kind == "categorical" else np.uint8))
    path = str(tmp_path / "x.dat")
    mm = np.memmap(path, dtype=X.dtype, mode="w+", shape=X.shape)
    mm[:] = X
    mm.flush()
    ro = np.memmap(path, dtype=X.dtype, mode="r", shape=X.shape)
    a = DATA_EST[kind](3, random_state=0, max_iter=20).fit(X)
    b = DATA_EST[kind](3, random_state=0, max_iter=20).fit(ro)
    assert a.lower_bounds_ == b.lower_bounds_
    np.testing.assert_array_equal(a.predict_proba(X), b.predict_proba(ro))


# ------------------------------------------------------------ the contract
CONTRACT = [(kind, m) for kind in ("bernoulli", "categorical", "poisson", "multinomial")
            for m in ("em", "vem", "crisp", "meanfield", "gibbs")]


@pytest.mark.parametrize("kind, method", CONTRACT, ids=[f"{k}-{m}" for k, m in CONTRACT])
def test_discrete_contract(kind, method):
    """Every discrete mixture x method: the input untouched (dense and sparse),
    finite fitted state, well-formed predictions, the same fit twice, a clone
    unfitted."""
    import scipy.sparse as sp
    from sklearn.base import clone
    from sklearn.exceptions import NotFittedError
    from fastvem import MultinomialMixture
    if kind == "multinomial":
        X = sp.csr_matrix(_corpus(n=300)[0])
        cls = MultinomialMixture
    else:
        X = DATA[kind](n=300)[0]
        cls = DATA_EST[kind]
    before = X.copy()
    est = cls(3, method=method, random_state=0, max_iter=15, n_samples=10, burn_in=5).fit(X)
    if sp.issparse(X):
        assert (X != before).nnz == 0 and X.has_sorted_indices == before.has_sorted_indices
    else:
        np.testing.assert_array_equal(X, before)
    theta = _theta(est, kind) if kind != "multinomial" else est.probabilities_
    for a in (theta if isinstance(theta, list) else [theta]) + [est.weights_]:
        assert np.all(np.isfinite(a))
    P = est.predict_proba(X)
    np.testing.assert_allclose(P.sum(1), 1.0, rtol=1e-12)
    assert np.array_equal(est.predict(X), np.argmax(P, 1))
    assert np.all(np.isfinite(est.score_samples(X)))
    again = cls(3, method=method, random_state=0, max_iter=15, n_samples=10, burn_in=5).fit(X)
    assert again.lower_bounds_ == est.lower_bounds_
    np.testing.assert_array_equal(again.predict_proba(X), P)
    with pytest.raises(NotFittedError):
        clone(est).predict(X)


# ------------------------------------------------------------- partial_fit
@pytest.mark.parametrize("kind", ["bernoulli", "categorical", "poisson"])
def test_first_partial_fit_is_one_fit_iteration(kind):
    """From the same initial parameters, one partial_fit on all the rows takes the
    chunk's statistics whole: the same M-step as one iteration of fit."""
    X, _, _, _ = DATA[kind]()
    w, theta = _start(kind, 3)
    a = _estimator(kind, 3, "em", w, theta, max_iter=1, tol=0.0)
    with pytest.warns(Warning):
        a.fit(X)
    b = _estimator(kind, 3, "em", w, theta).partial_fit(X)
    np.testing.assert_allclose(b.weights_, a.weights_, rtol=1e-12)
    for u, v in zip(*(t if kind == "categorical" else [t] for t in (_theta(b, kind),
                                                                     _theta(a, kind)))):
        np.testing.assert_allclose(u, v, rtol=1e-12)
    assert b.lower_bound_ == pytest.approx(a.lower_bounds_[0], rel=1e-12)


@pytest.mark.parametrize("kind", ["bernoulli", "poisson"])
@pytest.mark.parametrize("method", ["em", "meanfield", "crisp"])
def test_partial_fit_over_batches_recovers_the_truth(kind, method):
    from sklearn.metrics import adjusted_rand_score
    X, z, w, truth = DATA[kind](n=6000, seed=4)
    bayes = adjusted_rand_score(z, getattr(od, f"{kind}_log_joint")(X, w, truth).argmax(1))
    est = DATA_EST[kind](3, method=method, random_state=0)
    for epoch in range(3):
        for batch in np.array_split(np.random.default_rng(epoch).permutation(len(X)), 20):
            est.partial_fit(X[batch])
    assert est.n_iter_ == 60 and est.n_rows_seen_ == 3 * len(X)
    assert adjusted_rand_score(z, est.predict(X)) > bayes - 0.05


def test_partial_fit_rules():
    X, _, _, _ = poisson_data(n=400)
    assert not hasattr(PoissonMixture(2, method="gibbs"), "partial_fit")
    for kind in ("bernoulli", "categorical", "poisson"):
        Xk = DATA[kind](n=400)[0]
        mf = DATA_EST[kind](2, method="meanfield", random_state=0).fit(Xk)
        before = mf.predict_proba(Xk)
        mf.partial_fit(Xk)     # from the statistics q implies: a step on the same rows
        assert np.abs(mf.predict_proba(Xk) - before).max() < 0.2
    em = PoissonMixture(2, random_state=0).fit(X)
    before = em.rates_.copy()
    em.partial_fit(X[:100])                       # continues from the fitted parameters
    assert em.rates_.shape == before.shape and np.all(np.isfinite(em.rates_))
    with pytest.raises(ValueError, match="features"):
        em.partial_fit(X[:, :3])
    with pytest.raises(ValueError, match="learning_decay"):
        est = PoissonMixture(2)
        est.learning_decay = 2.0
        est.partial_fit(X)
    refit = PoissonMixture(2, random_state=0).partial_fit(X[:200]).fit(X)
    assert not hasattr(refit, "_stream") and refit.n_iter_ >= 1


def test_review_findings_stay_fixed(tmp_path):
    """Found in review: partial_fit with a new chunk's own sparse data; a categorical
    model with equal category counts and per-feature initial probabilities saves and
    loads; a loaded Poisson meanfield model continues with its own prior; huge counts
    and a numba family writing past its statistics are refused."""
    import scipy.sparse as sp
    import fastvem
    from fastvem import MultinomialMixture
    X, _, _, _ = _corpus(n=400)
    a, b = sp.csr_matrix(X[:200]), sp.csr_matrix(X[200:] * (np.arange(X.shape[1]) % 3 == 0))
    est = MultinomialMixture(2, random_state=0).partial_fit(a).partial_fit(b)
    w = est.weights_
    ref = MultinomialMixture(2, random_state=0).partial_fit(a)
    lj = od.multinomial_log_joint(b.toarray(), ref.weights_, ref.probabilities_)
    from scipy.special import logsumexp
    assert est.lower_bound_ == pytest.approx(logsumexp(lj, axis=1).mean(), rel=1e-10)
    assert np.all(np.isfinite(w))
    codes = np.random.default_rng(0).integers(0, 3, (200, 4))
    init = [np.full((2, 3), 1 / 3)] * 4
    for kw in ({}, {"probabilities_init": init, "weights_init": [0.5, 0.5]}):
        cm = CategoricalMixture(2, random_state=0, **kw).fit(codes)
        cm.save(str(tmp_path / "c.npz"))
        back = fastvem.load(str(tmp_path / "c.npz"))
        np.testing.assert_array_equal(back.predict_proba(codes), cm.predict_proba(codes))
    Xp = np.random.default_rng(1).poisson(4.0, (300, 3)).astype(float)
    mf = PoissonMixture(2, method="meanfield", random_state=0).fit(Xp)
    mf.save(str(tmp_path / "p.npz"))
    back = fastvem.load(str(tmp_path / "p.npz"))
    chunk = Xp[:100].copy()
    chunk[:, 0] = 0
    mf.partial_fit(chunk)
    back.partial_fit(chunk)
    np.testing.assert_allclose(back.rates_, mf.rates_, rtol=1e-12)
    with pytest.raises(ValueError, match="counts up to"):
        PoissonMixture(2).fit(np.array([[1.0, 1e307], [2.0, 3.0], [0.0, 1.0]]))
    pytest.importorskip("numba")
    from fastvem.families import ExponentialFamily
    from fastvem.families.numba_family import example_poisson
    p = example_poisson()
    over = ExponentialFamily(lambda d: d - 1, p.statistics, p.log_base_measure,
                             p.log_partition, p.mean_to_natural)
    with pytest.raises(ValueError, match="past the end"):
        fastvem.Mixture(over, 2).fit(Xp)


def test_set_params_after_fit_asks_for_a_refit():
    """A parameter that fixes the fitted state (n_components, method, binarize),
    changed by set_params, is refused by predict and partial_fit until a refit;
    fit and a harmless change (tol) work."""
    X, _, _, _ = bernoulli_data(n=300)
    est = BernoulliMixture(3, random_state=0).fit(X)
    est.set_params(tol=1e-6)
    est.predict(X)
    for param, value in (("n_components", 4), ("method", "meanfield"), ("binarize", 0.5)):
        est = BernoulliMixture(3, random_state=0).fit(X).set_params(**{param: value})
        with pytest.raises(ValueError, match=f"{param} was .* refit required"):
            est.predict_proba(X)
        with pytest.raises(ValueError, match="refit required"):
            est.partial_fit(X)
        assert est.fit(X).predict(X).shape == (300,)


@pytest.mark.parametrize("dtype", [str, object])
def test_string_categories_are_refused_naming_x(dtype):
    """Labels rather than integer codes (a string array, or strings in an object
    array as a pandas Categorical column gives): a TypeError naming X and the
    encoding it needs, not numpy's conversion message."""
    X = np.array([["a", "b"], ["b", "a"], ["a", "a"], ["b", "b"]] * 5, dtype=dtype)
    with pytest.raises(TypeError, match="X must hold numbers.*OrdinalEncoder"):
        CategoricalMixture(2, random_state=0).fit(X)


def test_meanfield_default_prior_weighs_the_rows_as_frequencies():
    """The data-based default prior (Poisson: one pseudo-row at the feature's mean;
    the Gaussian families' mean and (co)variance) counts a row of weight w as w
    rows, so mean field on integer weights equals mean field on repeated rows."""
    from fastvem.families import GaussianDiag, GaussianFull, GaussianSpherical, Product
    X, _, _, _ = poisson_data()
    reps = np.random.default_rng(1).integers(1, 6, X.shape[0])
    w, r = _start("poisson", 3)
    kw = dict(method="meanfield", weights_init=w, rates_init=r, max_iter=5, tol=0)
    a = PoissonMixture(3, **kw).fit(X, sample_weight=reps.astype(float))
    b = PoissonMixture(3, **kw).fit(np.repeat(X, reps, axis=0))
    np.testing.assert_allclose(a.rate_prior_, b.rate_prior_, rtol=1e-12)
    np.testing.assert_allclose(a.rates_, b.rates_, rtol=1e-9)
    Xg = np.random.default_rng(2).normal(size=(300, 3)) * [1.0, 2.0, 3.0] + [5.0, 0.0, -1.0]
    rep = np.repeat(Xg, reps[:300], axis=0)
    for cls in (GaussianDiag, GaussianFull, GaussianSpherical):
        fam = cls(3, reference=np.zeros(3))
        fam.prepare(Xg, fitting=True)
        got = fam.default_prior(fam.prepare(Xg), reps[:300].astype(float))
        want = fam.default_prior(fam.prepare(rep))
        for g, h in zip(got, want):
            np.testing.assert_allclose(g, h, rtol=1e-10, atol=1e-12)
    prod = Product([("poisson", [0, 1]), ("poisson", list(range(2, X.shape[1])))])
    data = prod.prepare(X, fitting=True)
    got = prod.default_prior(data, reps.astype(float))
    want = prod.default_prior(prod.prepare(np.repeat(X, reps, axis=0)))
    for g, h in zip(got, want):
        np.testing.assert_allclose(g[1], h[1], rtol=1e-12)


@pytest.mark.parametrize("kind", ["multinomial", "bernoulli", "poisson"])
def test_a_saved_stream_continues_partial_fit_as_the_live_one(kind, tmp_path):
    """partial_fit, save, load, partial_fit: the loaded model's running statistics are
    rebuilt from its q (mean field) and continue as the live stream does.  The
    counts come from q(pi): a multinomial's statistics are words, not documents."""
    import fastvem
    from fastvem import MultinomialMixture
    if kind == "multinomial":
        X = _corpus(n=400)[0].astype(np.float64)
        make = lambda: MultinomialMixture(3, method="meanfield", random_state=0)
    else:
        X = DATA[kind](n=400)[0]
        make = lambda: DATA_EST[kind](3, method="meanfield", random_state=0)
    live = make().partial_fit(X[:200])
    live.save(tmp_path / "m.npz")
    back = fastvem.load(tmp_path / "m.npz")
    live.partial_fit(X[200:])
    back.partial_fit(X[200:])
    np.testing.assert_allclose(back.weights_, live.weights_, rtol=1e-9)
    np.testing.assert_allclose(back.posterior_, live.posterior_, rtol=1e-9)
