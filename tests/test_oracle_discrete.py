"""Checks of the discrete-mixture oracle (tests/oracle_discrete.py) on its own."""
import numpy as np
import pytest
from scipy import stats
from scipy.special import betaln, gammaln, xlogy

import oracle_discrete as O

FAMILIES = ["bernoulli", "categorical", "poisson"]
L_CAT = [2, 3, 4]          # categories per feature of the categorical family
D = 6                      # features of the Bernoulli and Poisson families
FLOOR = 1e-10              # Poisson rate_floor
GAMMA0 = 0.7


def random_theta(family, K, rng):
    if family == "bernoulli":
        return rng.uniform(0.1, 0.9, (K, D))
    if family == "categorical":
        return [rng.dirichlet(2 * np.ones(L), size=K) for L in L_CAT]
    return rng.uniform(0.5, 8.0, (K, D))


def sample(family, N, weights, theta, rng):
    z = rng.choice(len(weights), size=N, p=weights)
    if family == "bernoulli":
        return (rng.random((N, D)) < theta[z]).astype(float)
    if family == "categorical":  # inverse cdf, one feature at a time
        return np.stack([(rng.random(N)[:, None] > np.cumsum(p[z], axis=1)[:, :-1]).sum(1)
                         for p in theta], axis=1)
    return rng.poisson(theta[z]).astype(float)


def step(family, kind, alpha):
    """(X, sample_weight, weights, theta) -> (weights, theta, objective)."""
    f = getattr(O, f"{family}_{kind}_step")
    extra = {"bernoulli": (alpha,), "categorical": (L_CAT, alpha), "poisson": (FLOOR,)}[family]
    return lambda X, sw, weights, theta: f(X, sw, weights, theta, *extra)


def log_prior(family, theta, alpha):
    """log density (up to a constant) of the symmetric Beta / Dirichlet prior
    whose MAP the em and crisp M-steps compute (none for Poisson)."""
    if family == "bernoulli":
        return np.sum(xlogy(alpha, theta) + xlogy(alpha, 1 - theta))
    if family == "categorical":
        return sum(np.sum(xlogy(alpha, p)) for p in theta)
    return 0.0


def random_q(family, K, rng):
    conc = rng.uniform(0.5, 5, K)
    if family == "categorical":
        return (conc, [rng.uniform(0.5, 5, (K, L)) for L in L_CAT])
    return (conc, rng.uniform(0.5, 5, (K, D)), rng.uniform(0.5, 5, (K, D)))


def mf_step(family, alpha, X, sw, q):
    """One mean-field step; returns (new q tuple, elbo)."""
    if family == "bernoulli":
        out = O.bernoulli_meanfield_step(X, sw, *q, GAMMA0, alpha)
    elif family == "categorical":
        out = O.categorical_meanfield_step(X, sw, *q, L_CAT, GAMMA0, alpha)
    else:
        out = O.poisson_meanfield_step(X, sw, *q, GAMMA0, 0.5 + np.arange(D), 1.5 * np.ones(D))
    return out[:-1], out[-1]


def data(family, seed=0, N=300, K=3):
    rng = np.random.default_rng(seed)
    return rng, sample(family, N, rng.dirichlet(3 * np.ones(K)), random_theta(family, K, rng), rng)


def assert_close(a, b):
    for x, y in zip(a, b):
        if isinstance(x, list):
            assert_close(x, y)
        else:
            np.testing.assert_allclose(x, y, rtol=1e-12, atol=1e-14)


def assert_nondecreasing(values):
    v = np.asarray(values)
    assert np.all(np.diff(v) >= -1e-10 * np.abs(v[1:])), np.diff(v).min()


CASES = [(f, a) for f in FAMILIES for a in ([0.0, 1.0] if f != "poisson" else [0.0])]


# ------------------------------------------------------------- log joints
def test_log_joint_matches_scipy():
    rng = np.random.default_rng(1)
    weights = np.array([0.2, 0.5, 0.3])
    for family in FAMILIES:
        theta = random_theta(family, 3, rng)
        X = sample(family, 40, weights, theta, rng)
        if family == "bernoulli":
            expect = stats.bernoulli.logpmf(X[:, None, :], theta[None]).sum(2)
            got = O.bernoulli_log_joint(X, weights, theta)
        elif family == "poisson":
            expect = stats.poisson.logpmf(X[:, None, :], theta[None]).sum(2)
            got = O.poisson_log_joint(X, weights, theta)
        else:
            expect = np.array([[sum(np.log(theta[j][k, X[n, j]]) for j in range(len(L_CAT)))
                                for k in range(3)] for n in range(len(X))])
            got = O.categorical_log_joint(X, weights, theta)
        np.testing.assert_allclose(got, expect + np.log(weights), rtol=1e-12)


# ---------------------------------------------------------- monotonicity
@pytest.mark.parametrize("kind", ["em", "crisp"])
@pytest.mark.parametrize("family,alpha", CASES)
def test_em_and_crisp_objective_never_decrease(family, alpha, kind):
    # with alpha > 0 the M-step is a MAP step, so what cannot decrease is the
    # objective plus log prior / W (for alpha = 0 that is the objective itself)
    rng, X = data(family)
    f = step(family, kind, alpha)
    weights, theta = rng.dirichlet(np.ones(3)), random_theta(family, 3, rng)
    values = []
    for _ in range(30):
        prior = log_prior(family, theta, alpha) / len(X)
        weights, theta, objective = f(X, None, weights, theta)
        values.append(objective + prior)
    assert np.all(np.isfinite(values))
    assert_nondecreasing(values)


@pytest.mark.parametrize("family,alpha", CASES)
def test_meanfield_elbo_never_decreases(family, alpha):
    rng, X = data(family)
    sw = rng.uniform(0.5, 2.0, len(X))
    q, elbos = random_q(family, 3, rng), []
    for _ in range(30):
        q, elbo = mf_step(family, alpha, X, sw, q)
        elbos.append(elbo)
    assert np.all(np.isfinite(elbos))
    assert_nondecreasing(elbos)


# ----------------------------------------------- integer weights = repeats
@pytest.mark.parametrize("family,alpha", CASES)
def test_integer_sample_weight_equals_repeated_rows(family, alpha):
    rng, X = data(family, N=60)
    sw = rng.integers(0, 4, len(X))
    X_rep = np.repeat(X, sw, axis=0)
    weights, theta = rng.dirichlet(np.ones(3)), random_theta(family, 3, rng)
    for kind in ["em", "crisp"]:
        f = step(family, kind, alpha)
        assert_close(f(X, sw.astype(float), weights, theta), f(X_rep, None, weights, theta))
    q = random_q(family, 3, rng)
    (q1, e1), (q2, e2) = mf_step(family, alpha, X, sw, q), mf_step(family, alpha, X_rep, None, q)
    assert_close(q1 + (e1,), q2 + (e2,))


@pytest.mark.parametrize("family,alpha", CASES)
def test_crisp_step_by_counting(family, alpha):
    rng, X = data(family)
    sw = rng.uniform(0.5, 2.0, len(X))
    weights, theta = rng.dirichlet(np.ones(3)), random_theta(family, 3, rng)
    lj = getattr(O, f"{family}_log_joint")(X, weights, theta)
    z = np.argmax(lj, axis=1)
    new_w, new_theta, objective = step(family, "crisp", alpha)(X, sw, weights, theta)
    np.testing.assert_allclose(objective, np.sum(sw * lj.max(1)) / sw.sum(), rtol=1e-12)
    np.testing.assert_allclose(new_w, np.bincount(z, sw, minlength=3) / sw.sum(), rtol=1e-12)
    for k in np.unique(z):  # component k from the rows labelled k, by counting
        x, w = X[z == k], sw[z == k]
        if family == "bernoulli":
            expect = [(w @ x + alpha) / (w.sum() + 2 * alpha)]
        elif family == "categorical":
            counts = [np.bincount(x[:, j], w, minlength=L) + alpha for j, L in enumerate(L_CAT)]
            expect = [c / c.sum() for c in counts]
        else:
            expect = [np.maximum(w @ x / w.sum(), FLOOR)]
        assert_close([p[k] for p in new_theta] if family == "categorical" else [new_theta[k]], expect)


@pytest.mark.parametrize("family,alpha", CASES)
def test_empty_component_keeps_its_parameters(family, alpha):
    rng, X = data(family)
    theta = random_theta(family, 3, rng)
    theta = [np.stack([p[0], p[0], p[2]]) for p in theta] if family == "categorical" \
        else np.stack([theta[0], theta[0], theta[2]])
    get = (lambda th, k: [p[k] for p in th]) if family == "categorical" else (lambda th, k: [th[k]])
    # em: a component of weight 0 gets no responsibility
    w, new, _ = step(family, "em", alpha)(X, None, np.array([0.5, 0.5, 0.0]), theta)
    assert w[2] == 0 and all(np.array_equal(a, b) for a, b in zip(get(new, 2), get(theta, 2)))
    # crisp: components 0 and 1 tie everywhere and the tie goes to 0, so 1 is empty
    w, new, _ = step(family, "crisp", alpha)(X, None, np.array([0.3, 0.3, 0.4]), theta)
    assert w[1] == 0 and all(np.array_equal(a, b) for a, b in zip(get(new, 1), get(theta, 1)))


def test_poisson_rate_floor():
    X = np.array([[0.0, 2.0], [0.0, 3.0]])
    _, rates, _ = O.poisson_em_step(X, None, np.ones(1), np.ones((1, 2)), 0.25)
    np.testing.assert_allclose(rates, [[0.25, 2.5]])


# ------------------------------------------- exactness of the mean-field elbo
def test_meanfield_elbo_with_one_component_is_the_log_evidence():
    # with K = 1 the mean-field posterior is exact, so elbo * W = log p(X)
    rng = np.random.default_rng(3)
    alpha, W = 0.5, 50
    for family in FAMILIES:
        X = sample(family, W, np.ones(1), random_theta(family, 1, rng), rng)
        q = random_q(family, 1, rng)
        _, elbo = mf_step(family, alpha, X, None, q)
        if family == "bernoulli":
            a0, S = 1 + alpha, X.sum(0)
            log_ev = np.sum(betaln(a0 + S, a0 + W - S) - betaln(a0, a0))
        elif family == "categorical":
            lnB = lambda v: np.sum(gammaln(v)) - gammaln(np.sum(v))
            log_ev = sum(lnB(1 + alpha + np.bincount(X[:, j], minlength=L)) - lnB((1 + alpha) * np.ones(L))
                         for j, L in enumerate(L_CAT))
        else:
            s0, t0, S = 0.5 + np.arange(D), 1.5, X.sum(0)
            log_ev = np.sum(s0 * np.log(t0) - gammaln(s0) + gammaln(s0 + S) - (s0 + S) * np.log(t0 + W)) \
                - np.sum(gammaln(X + 1))
        np.testing.assert_allclose(elbo * W, log_ev, rtol=1e-12)


@pytest.mark.parametrize("family,alpha", CASES)
def test_meanfield_elbo_identity(family, alpha):
    # q' is the exact conjugate update for r, so for ANY (pi, theta) in the support
    #   elbo * W = sum_n w_n sum_k r_nk (log pi_k + log p(x_n|theta_k) - log r_nk)
    #              + log p(pi) + log p(theta) - log q'(pi) - log q'(theta)
    rng, X = data(family, N=40)
    sw = rng.uniform(0.5, 2.0, len(X))
    q = random_q(family, 3, rng)
    (conc, *qt), elbo = mf_step(family, alpha, X, sw, q)
    lr = getattr(O, f"{family}_expected_log_joint")(X, *q)
    r = np.exp(lr - lr.max(1, keepdims=True))
    r /= r.sum(1, keepdims=True)
    for _ in range(2):
        pi = rng.dirichlet(np.ones(3))
        theta = random_theta(family, 3, rng)
        rhs = stats.dirichlet.logpdf(pi, GAMMA0 * np.ones(3)) - stats.dirichlet.logpdf(pi, conc)
        if family == "bernoulli":
            a, b = qt
            lik = stats.bernoulli.logpmf(X[:, None, :], theta[None]).sum(2)
            rhs += np.sum(stats.beta.logpdf(theta, 1 + alpha, 1 + alpha) - stats.beta.logpdf(theta, a, b))
        elif family == "categorical":
            (A,) = qt
            lik = np.array([[sum(np.log(theta[j][k, x[j]]) for j in range(len(L_CAT))) for k in range(3)]
                            for x in X])
            rhs += sum(stats.dirichlet.logpdf(theta[j][k], (1 + alpha) * np.ones(L))
                       - stats.dirichlet.logpdf(theta[j][k], A[j][k])
                       for j, L in enumerate(L_CAT) for k in range(3))
        else:
            s, t = qt
            lik = stats.poisson.logpmf(X[:, None, :], theta[None]).sum(2)
            shape0, rate0 = 0.5 + np.arange(D), 1.5 * np.ones(D)
            rhs += np.sum(stats.gamma.logpdf(theta, shape0, scale=1 / rate0)
                          - stats.gamma.logpdf(theta, s, scale=1 / t))
        rhs += np.sum(sw[:, None] * (r * (np.log(pi) + lik) - xlogy(r, r)))
        np.testing.assert_allclose(elbo * sw.sum(), rhs, rtol=1e-10)


# --------------------------------------------------------------- KL helpers
def test_kl_helpers():
    rng = np.random.default_rng(4)
    p = rng.uniform(0.2, 5, 4)
    assert abs(O.dirichlet_kl(p, p)) < 1e-12
    assert O.dirichlet_kl(rng.uniform(0.2, 5, 4), p) > 0
    a, b, a0, b0 = rng.uniform(0.1, 10, (4, 1000))
    assert np.all(O.beta_kl(a, b, a0, b0) >= 0) and np.all(O.gamma_kl(a, b, a0, b0) >= 0)
    np.testing.assert_allclose(O.beta_kl(a, b, a, b), 0, atol=1e-12)
    np.testing.assert_allclose(O.gamma_kl(a, b, a, b), 0, atol=1e-12)

    def mc(log_q, log_p, draws):  # KL(q || p) = E_q[log q - log p]
        d = log_q(draws) - log_p(draws)
        return d.mean(), d.std() / np.sqrt(len(d))
    n = 200_000
    m, se = mc(stats.beta(2.5, 0.8).logpdf, stats.beta(1.2, 3.0).logpdf, rng.beta(2.5, 0.8, n))
    assert abs(O.beta_kl(2.5, 0.8, 1.2, 3.0) - m) < 3 * se
    q, p = stats.gamma(3.0, scale=1 / 2.0), stats.gamma(1.5, scale=1 / 0.7)
    m, se = mc(q.logpdf, p.logpdf, q.rvs(n, random_state=rng))
    assert abs(O.gamma_kl(3.0, 2.0, 1.5, 0.7) - m) < 3 * se
    qc, pc = np.array([2.0, 0.9, 4.0]), np.array([1.0, 1.5, 0.6])
    m, se = mc(stats.dirichlet(qc).logpdf, stats.dirichlet(pc).logpdf, rng.dirichlet(qc, n).T)
    assert abs(O.dirichlet_kl(qc, pc) - m) < 3 * se


# -------------------------------------------------------------- ground truth
def test_em_recovers_a_well_separated_mixture():
    rng = np.random.default_rng(5)
    weights = np.array([0.35, 0.65])
    truth = {"bernoulli": np.array([[0.85, 0.8, 0.9, 0.15, 0.2, 0.1],
                                    [0.15, 0.2, 0.1, 0.85, 0.8, 0.9]]),
             "categorical": [np.array([[0.9, 0.1], [0.2, 0.8]]),
                             np.array([[0.7, 0.2, 0.1], [0.1, 0.1, 0.8]]),
                             np.array([[0.6, 0.3, 0.05, 0.05], [0.05, 0.05, 0.3, 0.6]])],
             "poisson": np.array([[2.0, 3.0, 10.0, 12.0, 4.0, 2.5],
                                  [10.0, 12.0, 2.0, 3.0, 2.5, 8.0]])}
    for family in FAMILIES:
        X = sample(family, 5000, weights, truth[family], rng)
        f = step(family, "em", 0.0)
        if family == "categorical":  # nearby start: mix each row with the uniform
            theta = [0.8 * p + 0.2 / p.shape[1] for p in truth[family]]
        else:
            theta = truth[family] * rng.uniform(0.85, 1.15, truth[family].shape)
        w = np.array([0.5, 0.5])
        for _ in range(200):
            w, theta, _ = f(X, None, w, theta)
        assert np.max(np.abs(w - weights)) < 0.05
        if family == "categorical":
            assert max(np.max(np.abs(p - t)) for p, t in zip(theta, truth[family])) < 0.05
        elif family == "bernoulli":
            assert np.max(np.abs(theta - truth[family])) < 0.05
        else:  # rates: relative error
            assert np.max(np.abs(theta / truth[family] - 1)) < 0.05
