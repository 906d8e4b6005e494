"""HMMs side by side with hmmlearn, in one process: the same data, the same initial
parameters (set on both, init_params=''), the same number of em iterations (tol
-inf: no early stop on either side).

Data (the HMM issue's workload): 50 sequences x 2,000 steps from a sticky K=8
chain (0.95 on the diagonal); GaussianHMM D=4 (full and diag), CategoricalHMM
with 20 symbols.  Per-iteration cost = (t(n_hi) - t(n_lo)) / (n_hi - n_lo), so
fixed costs cancel; beside it the whole fit of --whole iterations from a fresh
estimator, every cost included.  fastvem and hmmlearn alternate --repeat times
(medians; every run printed).  hmmlearn runs implementation='scaling' (its faster
one) and 'log'.  Threads: fastvem n_threads=2 (the kernels' threads, BLAS at one
thread inside them); hmmlearn single-threaded (its forward-backward is compiled
C++ on one thread).  Run with OPENBLAS_NUM_THREADS=1 so that idle BLAS threads of
either side do not steal the second core.

Also (--only): 'meanfield', fastvem.VariationalGaussianHMM (full) against
hmmlearn's, from the same q and priors (their bounds agree iterate for iterate);
'dynamax', fastvem GaussianHMM em (full) against dynamax's GaussianHMM.fit_em
(JAX on the CPU as it comes -- XLA's own threads --, vmapped over the 50
equal-length sequences; the whole fit includes its jit compile, which each
fit_em call repeats; dynamax's M-step adds its weak default prior, so the
log-likelihoods are close, not equal).

    OPENBLAS_NUM_THREADS=1 PYTHONPATH=. python asv_bench/peer_compare_hmm.py \
        [--repeat 5] [--only gauss-full,gauss-diag,categorical,meanfield,dynamax]
"""
import argparse
import statistics
import time
import warnings

import numpy as np

import fastvem

K, N_SEQ, T, D, SYMBOLS = 8, 50, 2000, 4, 20


def chain(rng):
    A = np.full((K, K), 0.05 / (K - 1))
    np.fill_diagonal(A, 0.95)
    z = np.empty(N_SEQ * T, dtype=np.int64)
    for s in range(N_SEQ):
        z[s * T] = rng.integers(K)
        u = rng.random(T)
        for t in range(1, T):
            prev = z[s * T + t - 1]
            z[s * T + t] = np.searchsorted(np.cumsum(A[prev]), u[t])
    return np.minimum(z, K - 1), [T] * N_SEQ


def gaussian_data(rng):
    z, lengths = chain(rng)
    centres = rng.normal(scale=3.0, size=(K, D))
    return centres[z] + rng.normal(size=(z.size, D)), lengths


def categorical_data(rng):
    z, lengths = chain(rng)
    emit = rng.dirichlet(np.full(SYMBOLS, 0.3), size=K)
    u = rng.random(z.size)
    X = (u[:, None] > emit[z].cumsum(1)).sum(1)
    return np.minimum(X, SYMBOLS - 1)[:, None], lengths


def start(model, X, kind, seed=1):
    """One start for both sides: a random chain and emissions from the data."""
    r = np.random.RandomState(seed)
    model.startprob_ = r.dirichlet(np.ones(K))
    model.transmat_ = r.dirichlet(np.ones(K) * 5, size=K)
    if kind == "categorical":
        model.emissionprob_ = r.dirichlet(np.ones(SYMBOLS), size=K)
        return
    model.means_ = X[r.choice(X.shape[0], K, replace=False)]
    if kind == "full":
        model.covars_ = np.tile(np.cov(X.T), (K, 1, 1))
    else:
        model.covars_ = np.tile(X.var(0), (K, 1))


def make(side, kind, n_iter, X, impl="scaling"):
    from hmmlearn import hmm
    kw = dict(init_params="", n_iter=n_iter, tol=-np.inf)
    if kind == "categorical":
        cls = hmm.CategoricalHMM if side == "hmmlearn" else fastvem.CategoricalHMM
        kw["n_features"] = SYMBOLS
    else:
        cls = hmm.GaussianHMM if side == "hmmlearn" else fastvem.GaussianHMM
        kw["covariance_type"] = kind
    if side == "hmmlearn":
        kw["implementation"] = impl
    else:
        kw["n_threads"] = 2
    m = cls(K, **kw)
    start(m, X, kind)
    return m


def fit_time(side, kind, n_iter, X, lengths, **kw):
    m = make(side, kind, n_iter, X, **kw)
    t = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        m.fit(X, lengths)
    return time.perf_counter() - t, m


def per_iteration(side, kind, X, lengths, lo, hi, **kw):
    t_lo, _ = fit_time(side, kind, lo, X, lengths, **kw)
    t_hi, m = fit_time(side, kind, hi, X, lengths, **kw)
    return (t_hi - t_lo) / (hi - lo), m


def compare(kind, X, lengths, repeat, lo, hi, whole, impls=("scaling", "log")):
    rows = []
    for impl in impls:
        fv, hl, fv_whole, hl_whole = [], [], [], []
        for _ in range(repeat):
            f, mf = per_iteration("fastvem", kind, X, lengths, lo, hi)
            h, mh = per_iteration("hmmlearn", kind, X, lengths, lo, hi, impl=impl)
            fv.append(f)
            hl.append(h)
            fv_whole.append(fit_time("fastvem", kind, whole, X, lengths)[0])
            hl_whole.append(fit_time("hmmlearn", kind, whole, X, lengths, impl=impl)[0])
        gap = abs(mf.monitor_.history[-1] - mh.monitor_.history[-1])
        print(f"  {kind} vs {impl}: s/iteration run by run: fastvem "
              + " ".join(f"{v:.4f}" for v in fv) + " | hmmlearn "
              + " ".join(f"{v:.4f}" for v in hl)
              + f"; |log-likelihood gap| after {hi} iterations {gap:.2e}", flush=True)
        f, h = statistics.median(fv), statistics.median(hl)
        fw, hw = statistics.median(fv_whole), statistics.median(hl_whole)
        rows.append((f"{kind} em vs {impl}", f, h, fw, hw))
    return rows


# ------------------------------------------------------- mean field (vhmm)
def _variational(side, n_iter, X):
    """VariationalGaussianHMM (full) of either side, from one q and hmmlearn's
    default priors (set on hmmlearn's, which reads them only when it initialises)."""
    r = np.random.RandomState(1)
    nu = r.uniform(5, 20, K)
    post = dict(startprob_posterior_=r.dirichlet(np.ones(K)) * 6,
                transmat_posterior_=r.dirichlet(np.ones(K), size=K) * 30,
                means_posterior_=X[r.choice(X.shape[0], K, replace=False)],
                beta_posterior_=r.uniform(5, 20, K), dof_posterior_=nu,
                scale_posterior_=np.cov(X.T)[None] * nu[:, None, None])
    if side == "hmmlearn":
        from hmmlearn import vhmm
        m = vhmm.VariationalGaussianHMM(K, covariance_type="full", init_params="",
                                        n_iter=n_iter, tol=-np.inf)
        post.update(startprob_prior_=np.full(K, 1 / K), transmat_prior_=np.full((K, K), 1 / K),
                    means_prior_=np.tile(X.mean(0), (K, 1)), beta_prior_=np.ones(K),
                    dof_prior_=np.full(K, float(D)), scale_prior_=np.tile(np.eye(D) * 1e-3,
                                                                         (K, 1, 1)))
    else:
        m = fastvem.VariationalGaussianHMM(K, covariance_type="full", init_params="",
                                           n_iter=n_iter, tol=-np.inf, n_threads=2)
    for k, v in post.items():
        setattr(m, k, v)
    return m


def _timed(make_fit):
    t = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        out = make_fit()
    return time.perf_counter() - t, out


def compare_meanfield(X, lengths, repeat, lo, hi, whole):
    fv, hl, fvw, hlw = [], [], [], []
    for _ in range(repeat):
        for side, per, tot in (("fastvem", fv, fvw), ("hmmlearn", hl, hlw)):
            t_lo, _ = _timed(lambda: _variational(side, lo, X).fit(X, lengths))
            t_hi, m = _timed(lambda: _variational(side, hi, X).fit(X, lengths))
            per.append((t_hi - t_lo) / (hi - lo))
            tot.append(_timed(lambda: _variational(side, whole, X).fit(X, lengths))[0])
            if side == "fastvem":
                mf = m
            else:
                mh = m
    gap = abs(mf.monitor_.history[-1] - mh.monitor_.history[-1])
    print("  meanfield (VariationalGaussianHMM full): s/iteration run by run: fastvem "
          + " ".join(f"{v:.4f}" for v in fv) + " | hmmlearn " + " ".join(f"{v:.4f}" for v in hl)
          + f"; |bound gap| after {hi} iterations {gap:.2e}", flush=True)
    return [("full meanfield vs vhmm", statistics.median(fv), statistics.median(hl),
             statistics.median(fvw), statistics.median(hlw))]


# ---------------------------------------------------------------- dynamax
def _dynamax_fit(X, n_iter):
    """dynamax GaussianHMM.fit_em from the same start as the others (full
    covariances), the 50 sequences as one (50, 2000, D) batch; returns the last
    marginal log probability."""
    import jax.numpy as jnp
    import jax.random as jr
    from dynamax.hidden_markov_model import GaussianHMM as DynGaussianHMM
    m = make("fastvem", "full", 1, X)
    hmm = DynGaussianHMM(num_states=K, emission_dim=D)
    params, props = hmm.initialize(jr.PRNGKey(0), method="prior",
                                   initial_probs=jnp.asarray(m.startprob_),
                                   transition_matrix=jnp.asarray(m.transmat_),
                                   emission_means=jnp.asarray(m.means_),
                                   emission_covariances=jnp.asarray(m.covars_))
    batch = jnp.asarray(X.reshape(N_SEQ, T, D))
    params, lps = hmm.fit_em(params, props, batch, num_iters=n_iter, verbose=False)
    lps.block_until_ready()
    return float(lps[-1])


def compare_dynamax(X, lengths, repeat, lo, hi, whole):
    _dynamax_fit(X, 1)                  # JAX's start-up (the first import and trace)
    fv, dy, fvw, dyw = [], [], [], []
    for _ in range(repeat):
        f_lo, _ = fit_time("fastvem", "full", lo, X, lengths)
        f_hi, mf = fit_time("fastvem", "full", hi, X, lengths)
        d_lo, _ = _timed(lambda: _dynamax_fit(X, lo))
        d_hi, lp = _timed(lambda: _dynamax_fit(X, hi))
        fv.append((f_hi - f_lo) / (hi - lo))
        dy.append((d_hi - d_lo) / (hi - lo))
        fvw.append(fit_time("fastvem", "full", whole, X, lengths)[0])
        dyw.append(_timed(lambda: _dynamax_fit(X, whole))[0])
    print("  full em vs dynamax: s/iteration run by run: fastvem "
          + " ".join(f"{v:.4f}" for v in fv) + " | dynamax " + " ".join(f"{v:.4f}" for v in dy)
          + f"; log-likelihood after {hi} iterations: fastvem {mf.monitor_.history[-1]:.2f}, "
          f"dynamax {lp:.2f} (its M-step has a prior)", flush=True)
    return [("full em vs dynamax", statistics.median(fv), statistics.median(dy),
             statistics.median(fvw), statistics.median(dyw))]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--lo", type=int, default=2)
    ap.add_argument("--hi", type=int, default=10)
    ap.add_argument("--whole", type=int, default=10)
    ap.add_argument("--only", default="")
    args = ap.parse_args()
    only = set(filter(None, args.only.split(",")))
    rng = np.random.default_rng(0)
    Xg, lengths = gaussian_data(rng)
    Xc, lengths_c = categorical_data(rng)
    print(f"data: {N_SEQ} sequences x {T} steps, K={K}; Gaussian D={D}; categorical "
          f"{SYMBOLS} symbols; per iteration = (t({args.hi}) - t({args.lo})) / "
          f"{args.hi - args.lo}, whole fit = {args.whole} iterations from a fresh model; "
          f"medians of {args.repeat}")
    rows = []
    for name, kind, X, ln in (("gauss-full", "full", Xg, lengths),
                              ("gauss-diag", "diag", Xg, lengths),
                              ("categorical", "categorical", Xc, lengths_c)):
        if not only or name in only:
            rows += compare(kind, X, ln, args.repeat, args.lo, args.hi, args.whole)
    if not only or "meanfield" in only:
        rows += compare_meanfield(Xg, lengths, args.repeat, args.lo, args.hi, args.whole)
    if "dynamax" in only:           # JAX: asked for by name
        rows += compare_dynamax(Xg, lengths, args.repeat, args.lo, args.hi, args.whole)
    print(f"\n{'workload':28s} {'fastvem s/it':>13s} {'peer s/it':>14s} {'ratio':>7s}"
          f" {'fastvem whole':>14s} {'peer whole':>15s} {'ratio':>7s}")
    for name, f, h, fw, hw in rows:
        print(f"{name:28s} {f:13.4f} {h:14.4f} {h / f:7.1f} {fw:14.3f} {hw:15.3f} {hw / fw:7.1f}")


if __name__ == "__main__":
    main()
