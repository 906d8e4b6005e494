"""MultinomialHMM (fastvem/models/hmm.py) against hmmlearn 0.3's: em iterate for
iterate from the same start, score / score_samples / predict_proba / decode with
the multinomial coefficient, the other methods, and bad input."""
import logging
import warnings

import numpy as np
import pytest

import fastvem
from oracle_hmm import close as oracle_close

hmm = pytest.importorskip("hmmlearn.hmm")
logging.getLogger("hmmlearn").setLevel(logging.ERROR)

K = 3
LENGTHS = [100, 1, 60, 39]
N_TRIALS = 10
RTOL = 1e-9


def close(a, b, rtol=RTOL, what=""):
    oracle_close(a, b, rtol, what)


def counts(seed=0, n_trials=N_TRIALS, lengths=LENGTHS, V=5):
    rng = np.random.default_rng(seed)
    P = rng.dirichlet(np.full(V, 0.5), size=K)
    A = np.array([[0.8, 0.1, 0.1], [0.1, 0.8, 0.1], [0.2, 0.2, 0.6]])
    z = [0]
    for _ in range(sum(lengths) - 1):
        z.append(rng.choice(K, p=A[z[-1]]))
    nt = np.broadcast_to(n_trials, (len(z),))
    return np.array([rng.multinomial(n, P[k]) for n, k in zip(nt, z)]), list(lengths)


def _hmmlearn(**kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return hmm.MultinomialHMM(**kw)


@pytest.mark.parametrize("start", ["random", "set"])
@pytest.mark.parametrize("priors", [{}, dict(startprob_prior=2.0, transmat_prior=1.5)])
def test_em_equals_hmmlearn_iterate_for_iterate(start, priors):
    X, lengths = counts(0)
    kw = dict(n_components=K, n_trials=N_TRIALS, n_iter=25, tol=-np.inf, random_state=3,
              **priors)
    if start == "set":
        r = np.random.RandomState(7)
        kw["init_params"] = ""
    a, b = fastvem.MultinomialHMM(**kw), _hmmlearn(**kw)
    if start == "set":
        sp, tm = r.dirichlet(np.ones(K)), r.dirichlet(np.ones(K), size=K)
        ep = r.dirichlet(np.ones(X.shape[1]), size=K)
        for m in (a, b):
            m.startprob_, m.transmat_, m.emissionprob_ = sp.copy(), tm.copy(), ep.copy()
    a.fit(X, lengths)
    b.fit(X, lengths)
    # the log-likelihood (with the multinomial coefficient) of every iteration
    close(list(a.monitor_.history), list(b.monitor_.history), what="monitor_.history")
    assert a.monitor_.iter == b.monitor_.iter == 25
    for name in ("startprob_", "transmat_", "emissionprob_"):
        close(getattr(a, name), getattr(b, name), what=name)
    assert a.n_features == b.n_features == X.shape[1]
    # predictions at the fitted point: the same
    close(a.score(X, lengths), b.score(X, lengths), what="score")
    la, pa = a.score_samples(X, lengths)
    lb, pb = b.score_samples(X, lengths)
    close(la, lb, what="score_samples")
    close(pa, pb, rtol=1e-8, what="posteriors")
    close(a.predict_proba(X, lengths), b.predict_proba(X, lengths), rtol=1e-8)
    for alg in ("viterbi", "map"):
        da, db = a.decode(X, lengths, algorithm=alg), b.decode(X, lengths, algorithm=alg)
        close(da[0], db[0], what=f"decode {alg}")
        assert np.array_equal(da[1], db[1])
    # lower_bound_ is the last history entry per row (fastvem's convention)
    close(a.lower_bound_ * X.shape[0], a.monitor_.history[-1])


def test_stopping_rule_and_unequal_trials_equal_hmmlearn():
    """Rows with different totals (n_trials None: each row its own), hmmlearn's tol."""
    rng = np.random.default_rng(5)
    X, lengths = counts(1, n_trials=rng.integers(3, 20, sum(LENGTHS)))
    a = fastvem.MultinomialHMM(K, n_iter=200, tol=1e-4, random_state=0).fit(X, lengths)
    b = _hmmlearn(n_components=K, n_iter=200, tol=1e-4, random_state=0).fit(X, lengths)
    close(list(a.monitor_.history), list(b.monitor_.history))
    assert a.monitor_.converged and a.n_iter_ == b.monitor_.iter < 200
    close(a.score(X, lengths), b.score(X, lengths))
    # the coefficient log n! - sum log x! is a per-row constant: the states'
    # posteriors do not see it, the score does, and the family holds it per row
    from scipy.special import gammaln
    from fastvem.models.hmm import _MultinomialHMMFamily
    coef = gammaln(X.sum(1) + 1) - gammaln(X + 1).sum(1)
    fam = _MultinomialHMMFamily(X.shape[1], "ste")
    fam.prepare(X)
    close(fam.row_log_h, coef)
    close(a.score_samples(X, lengths)[1], b.predict_proba(X, lengths), rtol=1e-8)


@pytest.mark.parametrize("method", ["vem", "crisp", "meanfield", "gibbs"])
def test_other_methods(method):
    X, lengths = counts(2)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        m = fastvem.MultinomialHMM(K, n_trials=N_TRIALS, method=method, n_iter=40,
                                   random_state=0).fit(X, lengths)
    close(m.emissionprob_.sum(1), np.ones(K))
    h = np.array(m.monitor_.history)
    assert np.all(np.isfinite(h))
    if method in ("vem", "crisp", "meanfield"):
        assert np.all(np.diff(h) >= -1e-9 * np.abs(h[1:])), (method, np.diff(h).min())
    em = fastvem.MultinomialHMM(K, n_trials=N_TRIALS, n_iter=40, random_state=0).fit(X, lengths)
    # every method lands near em's log-likelihood (same coefficient in both scores)
    assert m.score(X, lengths) > em.score(X, lengths) - 0.1 * abs(em.score(X, lengths))
    if method == "vem":
        # vem's ELBO lies below the exact log-likelihood at the same parameters, both
        # with the coefficient
        assert m.lower_bound_ * X.shape[0] <= m.score(X, lengths) + 1e-9
        assert np.all(m._log_evidence(X, lengths, "vem")
                      <= m._log_evidence(X, lengths, "em") + 1e-9)


def test_sample_like_hmmlearn():
    X, lengths = counts(3)
    a = fastvem.MultinomialHMM(K, n_trials=N_TRIALS, n_iter=5, random_state=0).fit(X, lengths)
    b = _hmmlearn(n_components=K, n_trials=N_TRIALS, n_iter=5, random_state=0).fit(X, lengths)
    xa, sa = a.sample(30, random_state=4)
    xb, sb = b.sample(30, random_state=4)
    assert np.array_equal(sa, sb) and np.array_equal(xa, xb)
    assert np.all(xa.sum(1) == N_TRIALS)
    with pytest.raises(ValueError, match="n_trials"):
        fastvem.MultinomialHMM(K, n_iter=2, random_state=0).fit(X, lengths).sample(3)


@pytest.mark.parametrize("change,match", [
    (lambda X: (X.__setitem__((4, 0), X[4, 0] + 1), X)[1], r"sum to n_trials: row 4"),
    (lambda X: (X.__setitem__((7, 1), -1), X)[1], r"X must hold counts.*negative.*X\[7, 1\]"),
    (lambda X: X + 0.5, r"X must hold counts"),
])
def test_bad_counts(change, match):
    X, lengths = counts(4)
    X = change(X.copy())
    with pytest.raises(ValueError, match=match):
        fastvem.MultinomialHMM(K, n_trials=N_TRIALS, n_iter=2).fit(X, lengths)
    good, _ = counts(4)
    m = fastvem.MultinomialHMM(K, n_trials=N_TRIALS, n_iter=2, random_state=0).fit(good, lengths)
    with pytest.raises(ValueError, match=match):
        m.score(X, lengths)
    with pytest.raises(ValueError, match=match):
        m.predict_proba(X, lengths)


@pytest.mark.parametrize("n_trials,match", [
    (-2, "n_trials must be"), (2.5, "n_trials must be"), ("ten", "n_trials must be"),
    (True, "n_trials must be"), ([10, 10], "n_trials has 2 entries")])
def test_bad_n_trials(n_trials, match):
    X, lengths = counts(4)
    with pytest.raises(ValueError, match=match):
        fastvem.MultinomialHMM(K, n_trials=n_trials, n_iter=2).fit(X, lengths)


def test_wrong_number_of_symbols_in_predict():
    X, lengths = counts(4)
    m = fastvem.MultinomialHMM(K, n_trials=N_TRIALS, n_iter=2, random_state=0).fit(X, lengths)
    Y = np.column_stack((X, np.zeros(len(X), dtype=int)))
    with pytest.raises(ValueError, match="symbols"):
        m.score(Y, lengths)
