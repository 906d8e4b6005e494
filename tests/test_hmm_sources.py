"""HMMs on large data: sequences from an iterable or a Dask array, memmaps, and
partial_fit (stepwise EM / stochastic variational inference) over batches of
whole sequences."""
import numpy as np
import pytest

import fastvem
from fastvem import CategoricalHMM, GaussianHMM, MultinomialHMM, PoissonHMM
from fastvem.models import hmm_sources

DETERMINISTIC = ("em", "vem", "crisp", "meanfield")


def _gaussian_data(seed=0, lengths=(400, 250, 1, 600, 90, 300)):
    rs = np.random.RandomState(seed)
    means = np.array([[0.0, 0.0], [4.0, 1.0], [-3.0, 3.0]])
    trans = np.array([[0.9, 0.05, 0.05], [0.1, 0.85, 0.05], [0.05, 0.15, 0.8]])
    rows, states = [], []
    for L in lengths:
        z = rs.randint(3)
        for _ in range(L):
            states.append(z)
            rows.append(means[z] + rs.randn(2) * (0.5 + 0.3 * z))
            z = rs.choice(3, p=trans[z])
    return np.array(rows), np.array(lengths), np.array(states), means


def _split(X, lengths):
    return np.split(X, np.cumsum(lengths)[:-1])


def _close(a, b, tol):
    np.testing.assert_allclose(a.startprob_, b.startprob_, rtol=tol, atol=tol)
    np.testing.assert_allclose(a.transmat_, b.transmat_, rtol=tol, atol=tol)
    np.testing.assert_allclose(np.asarray(a.monitor_.history), np.asarray(b.monitor_.history),
                               rtol=tol, atol=tol)


def _fit(cls, X, lengths=None, **kw):
    kw = {"n_components": 3, "random_state": 0, "n_iter": 6, "tol": -np.inf, **kw}
    return cls(**kw).fit(X, lengths)


@pytest.mark.parametrize("method", DETERMINISTIC)
@pytest.mark.parametrize("ct", ["diag", "full", "spherical", "tied"])
def test_iterable_of_sequences_equals_the_array(method, ct):
    X, L, _, _ = _gaussian_data()
    a = _fit(GaussianHMM, X, L, covariance_type=ct, method=method)
    b = _fit(GaussianHMM, _split(X, L), covariance_type=ct, method=method)
    _close(a, b, 1e-12)
    np.testing.assert_allclose(a.means_, b.means_, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(a.covars_, b.covars_, rtol=1e-12, atol=1e-12)
    assert b.n_iter_ == 6 and b.lower_bound_ == pytest.approx(a.lower_bound_, rel=1e-12)


@pytest.mark.parametrize("method", DETERMINISTIC)
def test_many_batches_and_pairs_equal_the_array(method, monkeypatch):
    # batches of ~300 rows: several kernel calls, their statistics tree-summed
    monkeypatch.setattr(hmm_sources, "BATCH_ROWS", 300)
    X, L, _, _ = _gaussian_data(1)
    a = _fit(GaussianHMM, X, L, covariance_type="full", method=method)
    cut = int(L[:3].sum())
    items = [(X[:cut], L[:3])] + _split(X[cut:], L[3:])
    b = _fit(GaussianHMM, items, covariance_type="full", method=method)
    _close(a, b, 1e-9)
    np.testing.assert_allclose(a.means_, b.means_, rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(a.covars_, b.covars_, rtol=1e-9, atol=1e-9)


def test_the_start_reads_the_first_sequences(monkeypatch):
    # more rows than the start reads: k-means and the covariances on the head only;
    # the same start given explicitly gives the array's fit
    monkeypatch.setattr(fastvem.models.hmm, "_SOURCE_INIT_ROWS", 500)
    X, L, _, _ = _gaussian_data(2)
    b = _fit(GaussianHMM, _split(X, L))
    head = X[:650]                                  # whole sequences 400 + 250 >= 500 rows
    ref = GaussianHMM(3, random_state=0, n_iter=0).fit(head)
    c = GaussianHMM(3, random_state=0, n_iter=6, tol=-np.inf, init_params="st")
    c.means_, c.covars_ = ref.means_, ref._covars_
    c.fit(X, L)
    _close(b, c, 1e-12)


@pytest.mark.parametrize("method", ["em", "crisp", "meanfield"])
def test_dask_blocks_of_whole_sequences(method):
    da = pytest.importorskip("dask.array")
    X, L, _, _ = _gaussian_data(3)
    a = _fit(GaussianHMM, X, L, method=method)
    bounds = np.cumsum(L)
    Xd = da.from_array(X, chunks=((int(bounds[1]), int(bounds[4] - bounds[1]),
                                   int(bounds[5] - bounds[4])), 2))
    b = _fit(GaussianHMM, Xd, L, method=method)
    _close(a, b, 1e-10)
    np.testing.assert_allclose(a.means_, b.means_, rtol=1e-10, atol=1e-10)
    with pytest.raises(ValueError, match="cuts a sequence"):
        GaussianHMM(3).fit(da.from_array(X, chunks=(500, 2)), L)
    with pytest.raises(ValueError, match="pass lengths"):
        GaussianHMM(3).fit(da.from_array(X, chunks=(500, 2)))
    with pytest.raises(ValueError, match="lengths must sum"):
        GaussianHMM(3).fit(Xd, L[:-1])


def test_memmap_is_read_in_place(tmp_path):
    X, L, _, _ = _gaussian_data(4)
    mm = np.lib.format.open_memmap(tmp_path / "x.npy", mode="w+", dtype=np.float64,
                                   shape=X.shape)
    mm[:] = X
    mm.flush()
    mm = np.load(tmp_path / "x.npy", mmap_mode="r")
    _, data = GaussianHMM(3)._prepare_fit(mm)
    assert np.shares_memory(data, mm)               # not copied
    a, b = _fit(GaussianHMM, X, L), _fit(GaussianHMM, mm, L)
    _close(a, b, 0)
    # a memmap item of an iterable is a batch of its own, read in place too
    c = _fit(GaussianHMM, [(mm, L)])
    _close(a, c, 0)


@pytest.mark.parametrize("method", ["em", "crisp", "meanfield"])
def test_discrete_families_from_iterables(method, monkeypatch):
    monkeypatch.setattr(hmm_sources, "BATCH_ROWS", 200)
    rs = np.random.RandomState(5)
    L = [300, 120, 250, 330]
    codes = rs.randint(4, size=(sum(L), 1))
    codes[-3:] = 6                  # symbols only the last batch holds: inferred all the same
    a = _fit(CategoricalHMM, codes, L, method=method)
    b = _fit(CategoricalHMM, _split(codes, L), method=method)
    _close(a, b, 1e-10)
    np.testing.assert_allclose(a.emissionprob_, b.emissionprob_, rtol=1e-10, atol=1e-10)
    assert b.emissionprob_.shape == (3, 7)
    counts = rs.poisson(3.0, size=(sum(L), 3))
    a = _fit(PoissonHMM, counts, L, method=method)
    b = _fit(PoissonHMM, _split(counts, L), method=method)
    _close(a, b, 1e-10)
    np.testing.assert_allclose(a.lambdas_, b.lambdas_, rtol=1e-10, atol=1e-10)
    if method != "meanfield":
        mult = rs.multinomial(5, [0.2, 0.3, 0.5], size=sum(L))
        a = _fit(MultinomialHMM, mult, L, method=method, n_trials=5)
        b = _fit(MultinomialHMM, _split(mult, L), method=method, n_trials=5)
        _close(a, b, 1e-10)      # the multinomial coefficient of every batch included
        np.testing.assert_allclose(a.emissionprob_, b.emissionprob_, rtol=1e-10, atol=1e-10)


def test_bad_sources_are_refused(monkeypatch):
    X, L, _, _ = _gaussian_data(6)
    seqs = _split(X, L)
    with pytest.raises(ValueError, match="one-shot iterator"):
        GaussianHMM(3).fit(iter(seqs))
    with pytest.raises(ValueError, match="lengths must be None"):
        GaussianHMM(3).fit(seqs, L)
    with pytest.raises(ValueError, match="item 1 has 3 columns"):
        GaussianHMM(3).fit([X[:10], np.ones((5, 3))])
    with pytest.raises(ValueError, match="item 0: lengths must sum"):
        GaussianHMM(3).fit([(X[:10], [4, 5])])
    with pytest.raises(ValueError, match="item 1 holds no rows"):
        GaussianHMM(3).fit([X[:10], X[:0]])
    bad = [X[:10].copy(), X[10:20].copy()]
    bad[1][3, 1] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        GaussianHMM(3).fit(bad)
    monkeypatch.setattr(hmm_sources, "BATCH_ROWS", 4)    # one batch an item
    with pytest.raises(ValueError, match="from row 5 on .* at row 0, column 0"):
        PoissonHMM(2).fit([(np.ones((5, 2), int), [5]), -np.ones((5, 2), int)])
    with pytest.raises(TypeError, match="in memory only"):
        GaussianHMM(3, method="gibbs").fit(seqs)
    with pytest.raises(TypeError, match="in memory only"):
        fastvem.VariationalGaussianHMM(3).fit(seqs)
    fitted = GaussianHMM(3, random_state=0, n_iter=2).fit(X, L)
    for call in (fitted.score, fitted.predict, fitted.predict_proba, fitted.bic):
        with pytest.raises(TypeError, match="read by fit only"):
            call(seqs)


# ---------------------------------------------------------------- partial_fit
def test_first_partial_fit_is_one_em_iteration():
    # rho = 1 on the first batch: the batch's statistics whole, as fit's first update
    X, L, _, _ = _gaussian_data(7)
    for method in ("em", "vem", "crisp", "meanfield"):
        a = GaussianHMM(3, random_state=0, n_iter=1, method=method).fit(X, L)
        b = GaussianHMM(3, random_state=0, method=method).partial_fit(X, L)
        np.testing.assert_allclose(a.means_, b.means_, rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(a.transmat_, b.transmat_, rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(a.covars_, b.covars_, rtol=1e-12, atol=1e-12)
        assert b.lower_bound_ == pytest.approx(a.lower_bound_, rel=1e-12)
        assert b.n_iter_ == 1


@pytest.mark.parametrize("method", ["em", "meanfield"])
def test_stepwise_recovers_the_truth(method):
    # many batches of a few sequences each: the states' means and the transitions
    X, L, _, means = _gaussian_data(8, lengths=[200] * 60)
    seqs = _split(X, L)
    # the chain starts sticky and uniform (hmmlearn's Dirichlet draw of transmat can
    # start far from any good optimum); means and covariances from the first batch
    est = GaussianHMM(3, random_state=0, method=method, covariance_type="full",
                      init_params="mc")
    est.startprob_ = np.full(3, 1 / 3)
    est.transmat_ = np.full((3, 3), 0.1) + 0.7 * np.eye(3)
    for _ in range(3):
        for i in range(0, 60, 5):
            est.partial_fit(np.concatenate(seqs[i:i + 5]), [200] * 5)
    order = [int(np.argmin(np.linalg.norm(est.means_ - m, axis=1))) for m in means]
    assert sorted(order) == [0, 1, 2]
    np.testing.assert_allclose(est.means_[order], means, atol=0.15)
    np.testing.assert_allclose(np.diag(est.transmat_[np.ix_(order, order)]), [0.9, 0.85, 0.8],
                               atol=0.05)
    assert est.n_iter_ == 36 and np.all(np.isfinite(est.transmat_))


def test_partial_fit_continues_a_fit_and_a_loaded_model(tmp_path):
    X, L, _, _ = _gaussian_data(9)
    est = GaussianHMM(3, random_state=0, n_iter=30).fit(X, L)
    before = est.score(X, L)
    # at the fit's fixed point, another step on the same rows barely moves it
    est.partial_fit(X, L)
    assert est.score(X, L) == pytest.approx(before, abs=1e-3 * abs(before))
    path = tmp_path / "m.npz"
    est.save(path)
    loaded = fastvem.load(path)
    loaded.partial_fit(X[:650], L[:2])
    assert np.all(np.isfinite(loaded.means_)) and loaded.n_iter_ == 1
    assert est.n_rows_seen_ == 2 * X.shape[0] and est.n_sequences_seen_ == 2 * len(L)
    # the stream keeps no rows, and pickles leave it out
    import pickle
    assert est._stream.engine.data is None
    assert "_stream" not in pickle.loads(pickle.dumps(est)).__dict__


def _paths(startprob, transmat, L):
    """Every path of L steps with its probability (brute force)."""
    import itertools
    K = len(startprob)
    for z in itertools.product(range(K), repeat=L):
        p = startprob[z[0]] * np.prod([transmat[a, b] for a, b in zip(z, z[1:])])
        yield z, p


def test_implied_counts_equal_the_enumerated_expectations():
    # the statistics a fitted model's parameters stand for: the expected visits,
    # starts and transitions of n_seq sequences of L steps, by enumeration
    from fastvem.models.hmm import _implied_counts
    rs = np.random.RandomState(3)
    startprob, transmat = rs.dirichlet(np.ones(3)), rs.dirichlet(np.ones(3), size=3)
    for L in (1, 2, 4):
        visits, trans = np.zeros(3), np.zeros((3, 3))
        for z, p in _paths(startprob, transmat, L):
            for a in z:
                visits[a] += p
            for a, b in zip(z, z[1:]):
                trans[a, b] += p
        nk, start, tc = _implied_counts(startprob, transmat, 5.0 * L, 5.0)
        np.testing.assert_allclose(nk, 5 * visits, rtol=1e-12)
        np.testing.assert_allclose(start, 5 * startprob, rtol=1e-12)
        np.testing.assert_allclose(tc, 5 * trans, rtol=1e-12, atol=1e-15)
    # past the steps it follows (4,096): L - 1 transitions a sequence, and the long
    # run of a periodic chain (alternating states) half in each state
    for L in (4096, 4097, 10 ** 6):
        nk, _, tc = _implied_counts(startprob, transmat, 2.0 * L, 2.0)
        assert nk.sum() == pytest.approx(2 * L, rel=1e-12)
        assert tc.sum() == pytest.approx(2 * (L - 1), rel=1e-12)
    nk, _, tc = _implied_counts(np.array([1.0, 0.0]), np.array([[0.0, 1.0], [1.0, 0.0]]),
                                1e6, 1.0)
    np.testing.assert_allclose(nk, [5e5, 5e5], rtol=1e-12)
    np.testing.assert_allclose(tc, [[0, 5e5], [5e5 - 1, 0]], rtol=1e-5)     # within a row


@pytest.mark.parametrize("make", [
    lambda m: GaussianHMM(3, random_state=0, n_iter=8, method=m, covariance_type="full"),
    lambda m: GaussianHMM(3, random_state=0, n_iter=8, method=m, covariance_type="spherical"),
    lambda m: fastvem.HMM(fastvem.families.GaussianDiag(2), 3, random_state=0, n_iter=8,
                          method=m),
], ids=["full", "spherical", "family-object"])
@pytest.mark.parametrize("method", DETERMINISTIC)
def test_a_loaded_model_continues_as_the_fitted_one(make, method, tmp_path):
    # partial_fit after load takes the same steps as partial_fit after fit (the
    # parameters counted as one earlier step over the rows fitted), and the first
    # step blends the batch into the fit instead of replacing it
    X, L, _, _ = _gaussian_data(11)
    est = make(method).set_params(n_iter=200, tol=1e-9).fit(X, L)
    est.save(tmp_path / "m.npz")
    loaded = fastvem.load(tmp_path / "m.npz")
    batch, bl = X[:650], L[:2]
    # what the defect did: one step from the fit on the batch's statistics alone
    replaced = fastvem.load(tmp_path / "m.npz")
    replaced.__dict__["_fit_config"] = None
    replaced.__dict__.pop("n_features_in_")
    replaced.set_params(init_params="").partial_fit(batch, bl)
    fitted = fastvem.load(tmp_path / "m.npz")

    def moved(m):
        e = "means_" if hasattr(m, "means_") else "theta_"
        return np.array([np.abs(m.transmat_ - fitted.transmat_).max(),
                         np.abs(getattr(m, e) - getattr(fitted, e)).max()])
    for step in range(2):
        est.partial_fit(batch, bl)
        loaded.partial_fit(batch, bl)
        if step == 0:
            # the batch blended into the fit moves it less than the batch alone
            d_cont, d_repl = moved(loaded), moved(replaced)
            assert np.all(d_cont <= d_repl) and np.any(d_cont < d_repl), (d_cont, d_repl)
        for name in ("startprob_", "transmat_", "means_", "covars_", "theta_",
                     "transmat_posterior_", "emission_posterior_"):
            if hasattr(est, name):
                np.testing.assert_array_equal(getattr(loaded, name), getattr(est, name))
        assert loaded.n_rows_seen_ == est.n_rows_seen_ == X.shape[0] + (step + 1) * 650


def test_a_loaded_stream_keeps_its_step_and_its_checks(tmp_path):
    # a model saved after k partial_fit steps continues at step k (the same step
    # sizes as in memory); a fit counts as one step; a changed shape-defining
    # parameter is refused after load as in memory; a fit refused for its input
    # leaves the model (and its continuation) as it was
    X, L, _, _ = _gaussian_data(13)
    est = GaussianHMM(3, random_state=0, method="meanfield")
    for _ in range(3):
        est.partial_fit(X[:650], L[:2])
    assert est.n_steps_ == 3 and est._stream.t == 3
    est.save(tmp_path / "m.npz")
    loaded = fastvem.load(tmp_path / "m.npz")
    assert loaded.n_steps_ == 3
    for m in (est, loaded):
        m.partial_fit(X[650:], L[2:])
    assert loaded._stream.t == est._stream.t == 4 == loaded.n_steps_
    fitted = GaussianHMM(3, random_state=0, n_iter=4, method="meanfield").fit(X, L)
    assert fitted.n_steps_ == 0
    fitted.save(tmp_path / "f.npz")
    for m in (fitted, fastvem.load(tmp_path / "f.npz")):
        for change in (dict(method="em"), dict(n_components=2)):
            m.set_params(**change)
            with pytest.raises(ValueError, match="refit required"):
                m.partial_fit(X, L)
            m.set_params(method="meanfield", n_components=3)
        means = m.means_.copy()
        with pytest.raises(ValueError, match="lengths"):
            m.fit(X, L[:-1])
        np.testing.assert_array_equal(m.means_, means)
        m.partial_fit(X[:650], L[:2])
        assert m._stream.t == 2 and np.all(np.isfinite(m.means_))


def test_the_parameters_counted_as_a_step_give_themselves_back():
    # em under flat priors: the update from the statistics the fitted parameters
    # stand for is those parameters (the chain exactly up to rounding, the means too)
    from fastvem.models.gmmhmm import GMMHMM
    X, L, _, _ = _gaussian_data(12)
    # (no covariance prior: the update is then the moments themselves)
    for est in (GaussianHMM(3, random_state=0, n_iter=5, covariance_type="diag",
                            covars_prior=0.0),
                CategoricalHMM(3, random_state=0, n_iter=5),
                GMMHMM(2, n_mix=2, random_state=0, n_iter=5, covariance_type="diag",
                       covars_prior=0.0)):
        Xe = (np.abs(X[:, :1]) * 2).astype(int) if isinstance(est, CategoricalHMM) else X
        est.fit(Xe, L)
        fam, _ = est._prepare_predict(Xe)
        stream = est._stream_from_fit(fam, est._engine(fam, est._chain(est.n_components),
                                                        fastvem.methods.get_method("em"),
                                                        None, None, 1, 0))
        new, _ = stream.engine.update(stream.stats, 0, stream.params)
        for a, b in zip(new[:2], stream.params[:2]):
            np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-13)
        if isinstance(est, GMMHMM):
            np.testing.assert_allclose(new[2], stream.params[2], rtol=1e-10, atol=1e-13)
        else:
            np.testing.assert_allclose(new[2], stream.params[2], rtol=1e-9, atol=1e-12)


def test_partial_fit_refusals_and_fixed_family():
    X, L, _, _ = _gaussian_data(10)
    with pytest.raises(ValueError, match="not available"):
        GaussianHMM(3, method="gibbs").partial_fit(X, L)
    with pytest.raises(ValueError, match="not available"):
        fastvem.VariationalCategoricalHMM(3).partial_fit(np.zeros((5, 1), int))
    with pytest.raises(ValueError, match="learning_decay"):
        GaussianHMM(3, learning_decay=0.3).partial_fit(X, L)
    with pytest.raises(TypeError, match="read by fit only"):
        GaussianHMM(3).partial_fit(_split(X, L))
    est = CategoricalHMM(2, random_state=0).partial_fit(np.array([[0], [1], [2], [1]]))
    with pytest.raises(ValueError, match="not a category"):
        est.partial_fit(np.array([[0], [3]]))       # the alphabet is the first batch's
    ok = CategoricalHMM(2, random_state=0, n_features=4).partial_fit(np.array([[0], [1]]))
    ok.partial_fit(np.array([[0], [3]]))
    assert ok.emissionprob_.shape == (2, 4)
    with pytest.raises(ValueError, match="features"):
        GaussianHMM(3, random_state=0).partial_fit(X, L).partial_fit(np.ones((4, 3)))
    # a parameter that shapes the running statistics changed: refit required, the
    # fitted state left as it was
    for change in (dict(n_components=4), dict(covariance_type="full"), dict(method="vem")):
        est = GaussianHMM(3, random_state=0).partial_fit(X, L)
        means = est.means_.copy()
        est.set_params(**change)
        with pytest.raises(ValueError, match=f"{next(iter(change))} changed.*refit required"):
            est.partial_fit(X, L)
        np.testing.assert_array_equal(est.means_, means)
    fitted = GaussianHMM(3, random_state=0, n_iter=3).fit(X, L).set_params(n_components=2)
    with pytest.raises(ValueError, match="refit required"):
        fitted.partial_fit(X, L)
    fitted.set_params(n_components=3, tol=0.5)      # not shape-defining: continues
    fitted.partial_fit(X, L)
    assert fitted.n_iter_ == 1


@pytest.mark.parametrize("method", ["em", "vem", "crisp"])
def test_gmmhmm_from_sources_and_partial_fit(method, monkeypatch):
    monkeypatch.setattr(hmm_sources, "BATCH_ROWS", 200)
    X, L, _, _ = _gaussian_data(11, lengths=(200, 150, 1, 300))
    kw = {"n_mix": 2, "covariance_type": "full", "method": method}
    a = _fit(fastvem.GMMHMM, X, L, **kw)
    b = _fit(fastvem.GMMHMM, _split(X, L), **kw)
    _close(a, b, 1e-9)
    for name in ("weights_", "means_", "covars_"):
        np.testing.assert_allclose(getattr(a, name), getattr(b, name), rtol=1e-9, atol=1e-9)
    one = fastvem.GMMHMM(3, random_state=0, n_iter=1, **kw).fit(X, L)
    step = fastvem.GMMHMM(3, random_state=0, **kw).partial_fit(X, L)
    for name in ("startprob_", "transmat_", "weights_", "means_", "covars_"):
        np.testing.assert_allclose(getattr(step, name), getattr(one, name), rtol=1e-12,
                                   atol=1e-12)
