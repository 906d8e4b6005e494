"""CategoricalMixture and PoissonMixture on real data.

Votes: the 1984 House voting records shipped as fastvem.datasets.load_house_votes
(435 members, 16 votes coded n=0, y=1, ?=2). Counts: scikit-learn's 8x8 digits, whose
64 features are each the number (0-16) of pixels that are on in a 4x4 block.

Thresholds come from measurements of this implementation (ARIs over seeds 0-9 for the
votes and 0-7 for the digits, BIC over seeds 0-2). Each threshold sits below the
worst value measured, with a margin, and well above what a broken fit reaches
(ARI about 0 for a split unrelated to party or digit).
"""
import numpy as np
import pytest
from sklearn.metrics import adjusted_rand_score, confusion_matrix

from fastvem import CategoricalMixture, PoissonMixture
from fastvem.datasets import load_house_votes
from fastvem.families.discrete import RATE_FLOOR

import oracle_discrete as od

THREADS = 2


@pytest.fixture(scope="module")
def votes():
    X, party, names = load_house_votes()
    return X, party


@pytest.fixture(scope="module")
def digits():
    from sklearn.datasets import load_digits
    X, y = load_digits(return_X_y=True)
    return X, y


def _purity(labels, clusters):
    """Fraction of rows that carry their cluster's most common label."""
    return confusion_matrix(labels, clusters).max(axis=0).sum() / len(labels)


def _start(est, X):
    """The estimator's own k-means start: the parameters before any em iteration."""
    est.set_params(max_iter=0).fit(X)
    return est


# ------------------------------------------------------------------- votes
def test_load_house_votes_is_the_uci_file(votes):
    """Shape, coding and the counts that the UCI documentation gives: 267 democrats,
    168 republicans, and the number of '?' votes in each column."""
    X, party = votes
    _, _, names = load_house_votes()
    assert X.shape == (435, 16) and X.dtype == np.int64 and len(names) == 16
    assert set(np.unique(X)) == {0, 1, 2}
    assert dict(zip(*np.unique(party, return_counts=True))) == {"democrat": 267,
                                                                 "republican": 168}
    assert (X == 2).sum(axis=0).tolist() == [12, 48, 11, 11, 15, 11, 14, 15, 22, 7, 21, 31,
                                             25, 17, 28, 104]
    assert names[3] == "physician-fee-freeze"


@pytest.mark.parametrize("method, kw", [
    ("em", {}),
    ("meanfield", {}),
    ("gibbs", {"n_samples": 50, "burn_in": 25}),
])
def test_two_latent_classes_recover_the_party(votes, method, kw):
    """Two latent classes split the House along party lines. Measured ARI with the
    party over random_state 0-9: em 0.557 for every seed (87% of members in their
    party's class), meanfield 0.564, gibbs 0.557-0.571. A random start (em,
    init_params='random') gives 0.557-0.578. The threshold is 0.5."""
    X, party = votes
    est = CategoricalMixture(2, method=method, random_state=0, n_threads=THREADS, **kw).fit(X)
    labels = est.predict(X)
    assert adjusted_rand_score(party, labels) > 0.5
    # each class has a clear majority party, and the two majorities differ
    cm = confusion_matrix(party == "republican", labels)
    assert cm.argmax(axis=0).tolist() in ([0, 1], [1, 0])
    assert np.all(cm.max(axis=0) / cm.sum(axis=0) > 0.75)


def test_em_objective_never_decreases_on_votes(votes):
    """With alpha=0, em is maximum likelihood, so the log-likelihood in
    lower_bounds_ cannot go down."""
    X, _ = votes
    est = CategoricalMixture(3, alpha=0.0, random_state=0, max_iter=60, tol=0.0,
                             n_threads=THREADS)
    with pytest.warns(Warning):          # runs the full 60 iterations on purpose
        est.fit(X)
    lb = np.array(est.lower_bounds_)
    assert len(lb) == 60 and np.all(np.isfinite(lb))
    assert np.all(np.diff(lb) >= -1e-9 * np.abs(lb[1:])), np.diff(lb).min()
    assert lb[-1] > lb[0]


@pytest.mark.parametrize("alpha", [0.0, 1.0])
def test_em_equals_the_oracle_on_votes(votes, alpha):
    """From the estimator's k-means start (K=3), each em iterate's weights,
    probabilities and log-likelihood equal the NumPy reference's to 1e-9. With
    smoothing (alpha=1) em is a MAP step, so the quantity that must not decrease is
    the log-likelihood plus the log Dirichlet(1 + alpha) prior."""
    X, _ = votes
    K, n_iter, cats = 3, 8, [3] * 16
    start = _start(CategoricalMixture(K, alpha=alpha, random_state=0, n_threads=THREADS), X)
    assert start.n_categories_ == cats
    w0, p0 = start.weights_.copy(), [p.copy() for p in start.probabilities_]
    ow, op = w0.copy(), [p.copy() for p in p0]
    objectives, penalised = [], []
    for it in range(1, n_iter + 1):
        log_prior = alpha * sum(np.sum(np.log(p)) for p in op) if alpha else 0.0
        ow, op, obj = od.categorical_em_step(X, None, ow, op, cats, alpha)
        objectives.append(obj)
        penalised.append(obj * len(X) + log_prior)
        est = CategoricalMixture(K, alpha=alpha, weights_init=w0, probabilities_init=p0,
                                 max_iter=it, tol=0.0, n_threads=THREADS)
        with pytest.warns(Warning):      # stopped after `it` iterations on purpose
            est.fit(X)
        np.testing.assert_allclose(est.weights_, ow, rtol=1e-9, atol=1e-12)
        for got, want in zip(est.probabilities_, op):
            np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-12)
        np.testing.assert_allclose(est.lower_bounds_, objectives, rtol=1e-9)
    pen = np.array(penalised)
    assert np.all(np.diff(pen) >= -1e-9 * np.abs(pen[1:])), np.diff(pen).min()


def test_bic_prefers_latent_classes_to_independence(votes):
    """BIC over K = 1..5 (em, random_state=0, n_init=3). Measured over seeds 0-2,
    with n_init 1 and 3: K=1 11774, K=2 9330, K=3 9177 (9178 in one run), K=4
    9178-9243, K=5 9240-9356. K=3 was lowest every time, by 0.4 to 66 over K=4; for
    seed 0 with n_init=3 the margin is 11. So: independent votes (K=1) are far worse
    than two classes, a third class still pays for its parameters, and K=3 is
    chosen. The third class splits the democrats, and the three classes match the
    party better than two do (purity measured 0.90 against 0.874 for K=2)."""
    X, party = votes
    party = (party == "republican").astype(int)
    fits = {K: CategoricalMixture(K, random_state=0, n_init=3, max_iter=300,
                                  n_threads=THREADS).fit(X) for K in range(1, 6)}
    bic = np.array([fits[K].bic(X) for K in range(1, 6)])
    assert bic[0] > bic[1] + 1000.0, bic
    assert bic[1] > bic[2], bic
    assert bic[4] > bic[2], bic
    assert 1 + int(np.argmin(bic)) == 3, bic
    three = fits[3].predict(X)
    assert _purity(party, three) > 0.85
    two = fits[2].predict(X)
    assert _purity(party, three) > _purity(party, two)


# ------------------------------------------------------------------ digits
def test_poisson_mixture_clusters_the_digits(digits):
    """K=10 em on the 1,797 digits (count features 0-16). Measured over
    random_state 0-7: ARI with the digit 0.617-0.678, purity 0.755-0.810
    (random_state=0: 0.624 and 0.755). The thresholds are 0.55 and 0.70."""
    X, y = digits
    assert np.array_equal(X, np.round(X)) and X.min() == 0 and X.max() == 16
    est = PoissonMixture(10, random_state=0, max_iter=300, n_threads=THREADS).fit(X)
    labels = est.predict(X)
    assert est.converged_
    assert adjusted_rand_score(y, labels) > 0.55
    assert _purity(y, labels) > 0.70


def test_poisson_em_objective_never_decreases_on_digits(digits):
    X, _ = digits
    est = PoissonMixture(10, random_state=0, max_iter=40, tol=0.0, n_threads=THREADS)
    with pytest.warns(Warning):
        est.fit(X)
    lb = np.array(est.lower_bounds_)
    assert len(lb) == 40 and np.all(np.isfinite(lb))
    assert np.all(np.diff(lb) >= -1e-9 * np.abs(lb[1:])), np.diff(lb).min()
    assert lb[-1] > lb[0]


def test_poisson_em_equals_the_oracle_on_digits(digits):
    """From the estimator's k-means start (K=10), each em iterate equals the NumPy
    reference to 1e-9. Some (component, pixel) pairs have zero counts, so rates
    reach the floor RATE_FLOOR on this data."""
    X, _ = digits
    K, n_iter = 10, 6
    assert RATE_FLOOR == 1e-10
    start = _start(PoissonMixture(K, random_state=0, n_threads=THREADS), X)
    w0, r0 = start.weights_.copy(), start.rates_.copy()
    ow, orates = w0.copy(), r0.copy()
    objectives = []
    for it in range(1, n_iter + 1):
        ow, orates, obj = od.poisson_em_step(X, None, ow, orates, RATE_FLOOR)
        objectives.append(obj)
        est = PoissonMixture(K, weights_init=w0, rates_init=r0, max_iter=it, tol=0.0,
                             n_threads=THREADS)
        with pytest.warns(Warning):
            est.fit(X)
        np.testing.assert_allclose(est.weights_, ow, rtol=1e-9, atol=1e-12)
        np.testing.assert_allclose(est.rates_, orates, rtol=1e-9, atol=1e-12)
        np.testing.assert_allclose(est.lower_bounds_, objectives, rtol=1e-9)
    assert np.any(orates == RATE_FLOOR)


def test_poisson_mixture_beats_one_poisson_on_held_out_digits(digits):
    """Trained on the even rows and scored on the odd rows: the held-out
    log-likelihood per image is -184.3 for one Poisson and -134.9 to -136.5 for
    K=10 (random_state 0-4), a gain of 47.9-49.4 nats. The threshold is a gain of
    40 nats."""
    X, _ = digits
    tr, te = np.arange(0, len(X), 2), np.arange(1, len(X), 2)
    one = PoissonMixture(1, n_threads=THREADS).fit(X[tr])
    ten = PoissonMixture(10, random_state=0, max_iter=300, n_threads=THREADS).fit(X[tr])
    assert np.isfinite(one.score(X[te])) and np.isfinite(ten.score(X[te]))
    assert ten.score(X[te]) > one.score(X[te]) + 40.0
