"""The methods review: every method on one model and data set, speed against
accuracy, measured.

For each seed the data are split into train and test rows; each method is fitted
on the train rows and scored on the test rows with the held-out log predictive
density per sample (plug-in for em / vem / crisp, the Student-t posterior
predictive for meanfield, the log mean density over draws for gibbs).  Output: a
table on the terminal, ``review.csv`` and ``review.json`` (one row per seed and
method), and ``review.png`` (held-out accuracy against wall time, log scale).
"""
import csv
import json
import os
import time
import warnings

import numpy as np

from .methods import METHOD_NAMES

__all__ = ["review"]

# components of the review when none are given (see `review`)
DEFAULT_COMPONENTS = {"gmm": 8, "lda": 10, "bernoulli": 10, "categorical": 3, "poisson": 3,
                      "multinomial": 5, "hmm": 3, "mixture": 3}
# the generic Mixture's families (model='mixture', family=...)
FAMILIES = ("gaussian", "gaussian_diag", "gaussian_tied", "gaussian_spherical", "bernoulli",
            "categorical", "poisson", "multinomial")
MODELS = tuple(DEFAULT_COMPONENTS)
# the mixture estimators by model name (the review fits each the same way)
_MIXTURES = {"gmm": "GaussianMixture", "bernoulli": "BernoulliMixture",
             "categorical": "CategoricalMixture", "poisson": "PoissonMixture",
             "multinomial": "MultinomialMixture", "mixture": "Mixture"}

_COLUMNS = ("method", "seed", "seconds", "iterations", "train_objective",
            "heldout_log_predictive", "ari")


def _read_table(path, name="data"):
    """A numeric array from a .npy or .csv file (a header row, as pandas' to_csv
    writes it, is detected and skipped); ValueError naming `name` otherwise."""
    if not path.endswith((".npy", ".csv")):
        raise ValueError(f"{name} must be a .npy or .csv file, got {path!r}")
    if not os.path.exists(path):
        raise ValueError(f"{name}: no such file: {path}")
    if path.endswith(".npy"):
        try:
            X = np.load(path, allow_pickle=False)
        except ValueError as exc:
            raise ValueError(f"{name}: {path} is not a numeric .npy file ({exc})") from None
    elif path.endswith(".csv"):
        try:
            X = np.loadtxt(path, delimiter=",", skiprows=_has_header(path), ndmin=1)
        except ValueError as exc:
            raise ValueError(f"{name}: {path} is not a numeric CSV ({exc})") from None
    if X.dtype.kind not in "biuf":
        raise ValueError(f"{name}: {path} holds {X.dtype} values, expected numbers")
    return X


def _load_data(data):
    if data is None:
        from .datasets import load_old_faithful
        return load_old_faithful()[0], None, "Old Faithful"
    if isinstance(data, str):
        X = np.asarray(_read_table(data), dtype=np.float64)
        if X.ndim == 1:                      # one feature per row
            X = X[:, None]
        return X, None, os.path.basename(data)
    return np.asarray(data, dtype=np.float64), None, "array"


def _has_header(path):
    with open(path) as fh:
        first = fh.readline().split(",")
    try:
        [float(v) for v in first]
        return 0
    except ValueError:
        return 1


def _estimator(model, method, n_components, covariance_type, seed, max_iter, tol, extra):
    from . import models
    cls = getattr(models, _MIXTURES[model])
    kw = dict(extra)
    if model == "mixture":                 # Mixture(family, n_components, ...)
        family = kw.pop("family")
        cls = (lambda k, _cls=cls, **a: _cls(family, k, **a))
    if method == "gibbs":
        kw.update(n_samples=100, burn_in=50)
        if model == "gmm":
            kw.update(n_chains=2)
    if model == "gmm":
        kw.update(covariance_type=covariance_type)
    return cls(n_components, method=method, random_state=seed, max_iter=max_iter, tol=tol,
               **kw)


def _load_model_data(model, data, labels, family=None):
    """(X, labels or None, name, constructor extras) for a mixture model's review;
    model='mixture' reads the data of its family's named model (Old Faithful for a
    Gaussian)."""
    if model == "mixture":
        kind = "gmm" if family.startswith("gaussian") else family
        X, labels, name, extra = _load_model_data(kind, data, labels)
        if "n_categories" in extra:            # every category of the data, as a family
            from .families import Categorical
            return X, labels, name, {"family": Categorical(extra["n_categories"])}
        return X, labels, name, {**extra, "family": family}
    if model == "multinomial":
        X, name = _load_corpus(data)
        return X, labels, name, {}
    if data is None and model == "bernoulli":
        from sklearn.datasets import load_digits
        d = load_digits()
        X = (d.data > 7).astype(np.float64)
        return X, (d.target if labels is None else labels), \
            "binarised 8x8 digits (scikit-learn)", {}
    if data is None and model != "gmm":
        raise ValueError(f"model={model!r} has no shipped data set: pass data (--data)")
    X, _, name = _load_data(data)
    extra = {}
    if model == "categorical" and X.ndim == 2 and X.size and np.all(np.isfinite(X)):
        # every category of the data, so a held-out row never meets an unseen code
        extra["n_categories"] = [int(v) + 1 for v in np.max(X, axis=0)]
    return X, labels, name, extra


def review(data=None, labels=None, *, model="gmm", methods=METHOD_NAMES, n_components=None,
           covariance_type="full", seeds=(0, 1, 2, 3, 4), test_size=0.5, out="fastvem_review",
           max_iter=300, tol=1e-6, progress=True, plot=True, family="gaussian_diag"):
    """Fit every method in `methods` to one data set over `seeds`; write the
    table, CSV, JSON and PNG into `out`; return the list of result rows.

    data: None (the shipped Old Faithful data; for model='lda' the Reuters corpus),
    an array, or a .npy / .csv path.
    model: 'gmm', 'lda', a discrete mixture, 'mixture' (the generic fastvem.Mixture
    over `family`, one of FAMILIES), or 'hmm' (GaussianHMM on one series -- the rows
    in recorded order -- cut into sequences; see `_review_hmm`).
    labels: optional true labels (for the adjusted Rand index on the test rows).
    n_components: None gives 8 components for 'gmm' (on Old Faithful, more than its
    two clusters support: mean field and gibbs leave the extra ones empty, em and
    crisp fit them to a few training rows and lose on the held-out half) and 10
    topics for 'lda'."""
    from sklearn.metrics import adjusted_rand_score
    if not isinstance(model, str) or model not in MODELS:
        raise ValueError(f"model must be one of {list(MODELS)}, got {model!r}")
    if model == "mixture" and (not isinstance(family, str) or family not in FAMILIES):
        raise ValueError(f"family must be one of {list(FAMILIES)}, got {family!r}")
    if n_components is None:
        n_components = DEFAULT_COMPONENTS[model]
    if model == "lda":
        return _review_lda(data, methods, n_components, seeds, test_size, out, progress, plot)
    if model == "hmm":
        return _review_hmm(data, labels, methods, n_components, covariance_type, seeds,
                           test_size, out, max_iter, tol, progress, plot)
    methods = [methods] if isinstance(methods, str) else list(methods)
    bad = [m for m in methods if m not in METHOD_NAMES]
    if bad or not methods:
        raise ValueError(f"methods must be a non-empty subset of {list(METHOD_NAMES)}, got {bad}")
    seeds = _check_seeds(seeds, test_size)
    X, labels, name, extra = _load_model_data(model, data, labels, family)
    if len(X.shape) != 2:
        raise ValueError(f"data must be a table (rows x features), got {len(X.shape)} "
                         "dimensions")
    if X.shape[0] < 4:
        raise ValueError(f"data must have at least 4 rows, got {X.shape[0]}")
    values = X.data if hasattr(X, "tocsr") else X
    if not np.all(np.isfinite(values)):
        raise ValueError(f"data contains {int(np.sum(~np.isfinite(values)))} NaN or infinite "
                         "values; remove or impute them first")
    y = None if labels is None else np.asarray(labels)
    if y is not None and y.shape[0] != X.shape[0]:
        raise ValueError(f"labels has {y.shape[0]} entries, data has {X.shape[0]} rows")
    os.makedirs(out, exist_ok=True)

    rows = []
    bar = _bar(progress, len(seeds) * len(methods), "review")
    for seed in seeds:
        test, train = _split(seed, X.shape[0], test_size)
        for method in methods:
            est = _estimator(model, method, n_components, covariance_type, seed, max_iter,
                             tol, extra)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                t0 = time.perf_counter()
                est.fit(X[train])
                seconds = time.perf_counter() - t0
            ari = (float(adjusted_rand_score(y[test], est.predict(X[test])))
                   if y is not None else None)
            rows.append({"method": method, "seed": seed, "seconds": seconds,
                         "iterations": int(est.n_iter_),
                         "train_objective": float(est.lower_bound_),
                         "heldout_log_predictive": float(est.score(X[test])), "ari": ari})
            _tick(bar, method, seed)
    if bar is not None:
        bar.close()

    summary = _summary(rows, methods)
    label = f"Mixture({family!r})" if model == "mixture" else _MIXTURES[model]
    table = _table(summary, name, X.shape, label, n_components,
                   covariance_type if model == "gmm" else None, len(seeds))
    table += "\n" + reading(summary, "held-out lpd")
    meta = {"data": name, "shape": list(X.shape), "model": model,
            "family": family if model == "mixture" else None,
            "n_components": n_components, "covariance_type": covariance_type,
            "seeds": seeds, "test_size": test_size}
    _write(out, rows, _COLUMNS, meta, summary, table,
           f"{name}, {label} K={n_components}" if plot else None,
           "held-out log predictive density per sample")
    return rows


def _seconds(t):
    return f"{t * 1e3:.1f} ms" if t < 1 else f"{t:.2f} s"


def reading(summary, score_name, perplexity=False):
    """One plain sentence (two, really) that reads a review's summary: which method
    was most accurate on held-out data and by how much, which ties with it within
    the seed-to-seed standard errors, and which was fastest and at what accuracy."""
    def value(s):
        return f"perplexity {s['perplexity']:.1f}" if perplexity else \
            f"{score_name} {s['heldout_log_predictive']:.3f}"

    def gap(a, b):      # how much worse b is than a, in the review's own unit
        if perplexity:
            return f"{100 * (b['perplexity'] / a['perplexity'] - 1):.1f}% higher in perplexity"
        return f"{a['heldout_log_predictive'] - b['heldout_log_predictive']:.3f} nats per " \
               "sample lower"

    if len(summary) == 1:
        s = summary[0]
        return f"Reading: {s['method']} alone, {value(s)} in {_seconds(s['seconds'])}."
    best = max(summary, key=lambda s: s["heldout_log_predictive"])
    worst = min(summary, key=lambda s: s["heldout_log_predictive"])
    fast = min(summary, key=lambda s: s["seconds"])
    slow = max(summary, key=lambda s: s["seconds"])
    ties = [s["method"] for s in summary if s is not best and
            best["heldout_log_predictive"] - s["heldout_log_predictive"]
            <= best["heldout_se"] + s["heldout_se"]]
    text = f"Reading: most accurate on held-out data was {best['method']} ({value(best)})"
    if ties:
        text += f", tied within the standard errors with {', '.join(ties)}"
    behind = [s for s in summary if s is not best and s["method"] not in ties]
    if behind:
        near = max(behind, key=lambda s: s["heldout_log_predictive"])
        text += f"; {near['method']} was {gap(best, near)}"
        if worst is not near:
            text += f" and {worst['method']}, the least accurate, {gap(best, worst)}"
    text += f". Fastest was {fast['method']} ({_seconds(fast['seconds'])}"
    if slow is not fast:
        text += f", {slow['seconds'] / max(fast['seconds'], 1e-12):.0f}x faster than " \
                f"{slow['method']}"
    if fast is best or fast["method"] in ties:
        text += "), as accurate as the best."
    else:
        text += f"), at {value(fast)}."
    return text


def _write(out, rows, columns, meta, summary, table, plot_title, ylabel):
    """review.csv, .json, .txt (and .png unless plot_title is None); print the table."""
    with open(os.path.join(out, "review.csv"), "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=columns)
        w.writeheader()
        w.writerows(rows)
    with open(os.path.join(out, "review.json"), "w") as fh:
        json.dump({**meta, "rows": rows, "summary": summary}, fh, indent=1)
    with open(os.path.join(out, "review.txt"), "w") as fh:
        fh.write(table + "\n")
    if plot_title is not None:
        _plot(summary, rows, os.path.join(out, "review.png"), plot_title, ylabel)
    print(table)


def _check_seeds(seeds, test_size):
    seeds = [int(s) for s in seeds]
    if not seeds:
        raise ValueError("seeds must not be empty")
    if not 0.0 < float(test_size) < 1.0:
        raise ValueError(f"test_size must be in (0, 1), got {test_size}")
    return seeds


def _split(seed, n, test_size):
    """(test rows, train rows) of a seeded random split."""
    perm = np.random.default_rng(seed).permutation(n)
    n_test = max(1, int(round(test_size * n)))
    return perm[:n_test], perm[n_test:]


def _tick(bar, method, seed):
    if bar is not None:
        bar.update(1)
        bar.set_postfix(method=method, seed=seed)


def _bar(progress, total, desc):
    if not progress:
        return None
    from tqdm.auto import tqdm
    return tqdm(total=total, desc=desc, leave=False)


def _summary(rows, methods):
    out = []
    for m in methods:
        r = [x for x in rows if x["method"] == m]
        med = {k: float(np.median([x[k] for x in r]))
               for k in ("seconds", "iterations", "train_objective", "heldout_log_predictive")}
        aris = [x["ari"] for x in r if x["ari"] is not None]
        med["ari"] = float(np.median(aris)) if aris else None
        held = [x["heldout_log_predictive"] for x in r]
        med["heldout_se"] = float(np.std(held) / np.sqrt(len(held)))
        out.append({"method": m, **med})
    return out


def _table(summary, name, shape, label, K, cov, n_seeds):
    head = (f"fastvem review: {name} ({shape[0]} x {shape[1]}), {label} K={K}"
            f"{'' if cov is None else f' covariance_type={cov}'}, median of {n_seeds} seeds")
    cols = f"{'method':10s} {'seconds':>9s} {'iters':>6s} {'train objective':>16s} " \
           f"{'held-out lpd':>13s} {'ARI':>6s}"
    lines = [head, cols, "-" * len(cols)]
    for s in summary:
        ari = "-" if s["ari"] is None else f"{s['ari']:.3f}"
        lines.append(f"{s['method']:10s} {s['seconds']:9.4f} {s['iterations']:6.0f} "
                     f"{s['train_objective']:16.5f} {s['heldout_log_predictive']:13.5f} {ari:>6s}")
    return "\n".join(lines)


_STYLE = {"gibbs": ("o", "C0"), "meanfield": ("s", "C1"), "em": ("D", "C2"),
          "vem": ("^", "C3"), "crisp": ("v", "C4")}


def _plot(summary, rows, path, title, ylabel):
    import matplotlib.pyplot as plt
    fig = _figure(summary, rows, title, ylabel)
    fig.savefig(path)
    plt.close(fig)


def _figure(summary, rows, title, ylabel):
    """Held-out accuracy against wall time: each seed faint, the median with its
    standard error bold; methods told apart by marker and colour in a legend
    beside the axes (no labels on the points, so none overlap); time ticks at 1, 2
    and 5 of each decade (1 and 3, or 1 alone, over wider ranges, so that the
    labels never collide), written in seconds."""
    import matplotlib
    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter
    fig, ax = plt.subplots(figsize=(7.6, 4.4), dpi=100)
    for i, s in enumerate(summary):
        marker, colour = _STYLE.get(s["method"], ("o", f"C{i % 10}"))
        r = [x for x in rows if x["method"] == s["method"]]
        ax.scatter([x["seconds"] for x in r], [x["heldout_log_predictive"] for x in r],
                   s=14, alpha=0.3, marker=marker, color=colour, linewidths=0)
        ax.errorbar(s["seconds"], s["heldout_log_predictive"], yerr=s["heldout_se"],
                    fmt=marker, color=colour, capsize=3, markersize=7, label=s["method"])
    ax.set_xscale("log")
    xs = [x["seconds"] for x in rows] + [s["seconds"] for s in summary]
    decades = np.log10(max(xs) / max(min(xs), 1e-12)) if xs else 0.0
    subs = (1.0, 2.0, 5.0) if decades <= 1.3 else (1.0, 3.0) if decades <= 2.5 else (1.0,)
    ax.xaxis.set_major_locator(LogLocator(base=10, subs=subs))
    ax.xaxis.set_minor_formatter(NullFormatter())
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    ax.set_xlabel("wall time of the fit (s, log scale)")
    ax.set_ylabel(f"{ylabel}\n(higher is better; median of seeds, bar: s.e.)", fontsize=9)
    ax.set_title(title, fontsize=10, wrap=True)
    ax.grid(alpha=0.3)
    ax.legend(loc="upper left", bbox_to_anchor=(1.02, 1.0), borderaxespad=0.0,
              title="method", frameon=False)
    fig.text(0.99, 0.01, "accurate and slow <-> inaccurate and fast", ha="right",
             va="bottom", fontsize=8, color="0.4")
    fig.tight_layout()
    return fig


LDA_METHODS = ("gibbs", "meanfield", "vem", "crisp")


def _load_corpus(data):
    """(X, name): the `lda` package's Reuters corpus when installed, else a seeded
    synthetic LDA corpus; or a scipy.sparse .npz file, or a dense .npy / .csv table
    of counts (documents x words)."""
    import scipy.sparse as sp
    if data is None:
        try:
            import lda.datasets
            return sp.csr_matrix(lda.datasets.load_reuters()), "Reuters (lda package)"
        except ImportError:
            from .datasets import make_lda_corpus
            X, _ = make_lda_corpus(1500, 1000, 10, random_state=0)
            return X, "synthetic LDA corpus (pip install lda for Reuters)"
    if isinstance(data, str):
        if data.endswith(".npz"):
            if not os.path.exists(data):
                raise ValueError(f"data: no such file: {data}")
            try:
                return sp.load_npz(data).tocsr(), os.path.basename(data)
            except (ValueError, OSError) as exc:
                raise ValueError(f"data: {data} is not a scipy.sparse .npz file of counts "
                                 f"({exc})") from None
        if not data.endswith((".npy", ".csv")):
            raise ValueError(f"data for lda must be a scipy.sparse .npz, or a .npy or .csv "
                             f"table of counts, got {data!r}")
        return sp.csr_matrix(_read_table(data)), os.path.basename(data)
    return sp.csr_matrix(data), "corpus"


def _review_lda(data, methods, n_components, seeds, test_size, out, progress, plot):
    """The review for LDA: document-completion perplexity of held-out documents
    against wall time.  'em' is not in the spectrum for LDA (intractable E-step)."""
    from .models import LatentDirichletAllocation
    from .topics import document_completion_perplexity
    methods = [methods] if isinstance(methods, str) else list(methods)
    if tuple(methods) == METHOD_NAMES:
        methods = list(LDA_METHODS)
    bad = [m for m in methods if m not in LDA_METHODS]
    if bad or not methods:
        raise ValueError(f"methods for model='lda' must be a non-empty subset of "
                         f"{list(LDA_METHODS)} (em is intractable for LDA), got {bad}")
    seeds = _check_seeds(seeds, test_size)
    X, name = _load_corpus(data)
    os.makedirs(out, exist_ok=True)
    rows = []
    bar = _bar(progress, len(seeds) * len(methods), "review lda")
    for seed in seeds:
        test, train = (np.sort(i) for i in _split(seed, X.shape[0], test_size))
        for method in methods:
            est = LatentDirichletAllocation(n_components, method=method, random_state=seed,
                                            max_iter=200 if method == "gibbs" else 50)
            t0 = time.perf_counter()
            est.fit(X[train])
            seconds = time.perf_counter() - t0
            perp = document_completion_perplexity(est, X[test], random_state=seed)
            rows.append({"method": method, "seed": seed, "seconds": seconds,
                         "iterations": int(est.n_iter_),
                         "train_objective": float(est.trace_["objective"][-1]),
                         "heldout_log_predictive": float(-np.log(perp)), "ari": None,
                         "perplexity": float(perp)})
            _tick(bar, method, seed)
    if bar is not None:
        bar.close()
    summary = _summary(rows, methods)
    for srow in summary:
        srow["perplexity"] = float(np.median([r["perplexity"] for r in rows
                                              if r["method"] == srow["method"]]))
    head = (f"fastvem review: {name} ({X.shape[0]} docs x {X.shape[1]} words), "
            f"LatentDirichletAllocation K={n_components}, median of {len(seeds)} seeds")
    cols = (f"{'method':10s} {'seconds':>9s} {'iters':>6s} {'train objective':>16s} "
            f"{'held-out perplexity':>20s}")
    lines = [head, cols, "-" * len(cols)]
    for srow in summary:
        lines.append(f"{srow['method']:10s} {srow['seconds']:9.4f} {srow['iterations']:6.0f} "
                     f"{srow['train_objective']:16.5f} {srow['perplexity']:20.2f}")
    lines.append("held-out perplexity: document completion (theta from half of each test "
                 "document, the other half scored); lower is better.  train objective: each "
                 "method's own per token (ELBO; vem and crisp include log p(beta), gibbs the "
                 "collapsed log joint), not comparable across methods")
    lines.append(reading(summary, "perplexity", perplexity=True))
    meta = {"data": name, "shape": list(X.shape), "n_components": n_components,
            "model": "lda", "seeds": seeds, "test_size": test_size}
    _write(out, rows, list(rows[0]), meta, summary, "\n".join(lines),
           f"{name}, LDA K={n_components}" if plot else None,
           "-log perplexity per held-out token\n(document completion)")
    return rows


# the HMM review: the series is cut into this many consecutive sequences, and each
# seed holds out test_size of the sequences (whole sequences, not rows)
HMM_SEQUENCES = 8
HMM_GIBBS = dict(n_iter=200, burn_in=100, n_chains=2)
_HMM_COLUMNS = ("method", "seed", "seconds", "iterations", "train_objective",
                "heldout_log_predictive", "elbo_gap", "ari")


def _hmm_estimator(method, n_components, covariance_type, seed, max_iter, tol):
    from .models import GaussianHMM
    kw = dict(HMM_GIBBS) if method == "gibbs" else dict(n_iter=max_iter, tol=tol)
    return GaussianHMM(n_components, covariance_type=covariance_type, method=method,
                       random_state=seed, **kw)


def _hmm_heldout(est, method, X, lengths):
    """The held-out log predictive density of whole sequences, summed: plug-in
    log p(x | theta-hat) for em / vem / crisp and for meanfield (at q's means: the
    predictive under q of a whole sequence has no closed form); for gibbs each
    sequence's log mean density over the kept draws."""
    if method != "gibbs":
        return float(est.score(X, lengths))
    from scipy.special import logsumexp
    ll = est._draws_log_evidence(X, lengths)            # (draws, sequences)
    return float(np.sum(logsumexp(ll, axis=0) - np.log(ll.shape[0])))


def _review_hmm(data, labels, methods, n_components, covariance_type, seeds, test_size, out,
                max_iter, tol, progress, plot):
    """The review for hidden Markov models: GaussianHMM by every method on one
    series (default: Old Faithful's 272 eruptions in their recorded order), cut
    into HMM_SEQUENCES consecutive sequences; each seed trains on a random part of
    the sequences and scores the others, whole, by the held-out log predictive
    density per row (`_hmm_heldout`).  For vem also the gap, per training row,
    between the exact log-likelihood and vem's ELBO (the factorised q(z) at its
    fixed point) at vem's fitted parameters: what the factorisation costs."""
    from sklearn.metrics import adjusted_rand_score
    methods = [methods] if isinstance(methods, str) else list(methods)
    bad = [m for m in methods if m not in METHOD_NAMES]
    if bad or not methods:
        raise ValueError(f"methods must be a non-empty subset of {list(METHOD_NAMES)}, got {bad}")
    if covariance_type not in ("full", "diag", "spherical", "tied"):
        raise ValueError(f"covariance_type must be 'full', 'diag', 'spherical' or 'tied', got "
                         f"{covariance_type!r}")
    refused = [m for m in methods if m in ("meanfield", "gibbs")]
    if covariance_type in ("spherical", "tied") and refused:
        raise ValueError(f"methods {refused} are built for covariance_type 'diag' and 'full' "
                         f"of GaussianHMM, not {covariance_type!r}: pass methods em, vem, crisp")
    seeds = _check_seeds(seeds, test_size)
    X, _, name = _load_data(data)
    if X.ndim != 2:
        raise ValueError(f"data must be a table (rows x features), got {X.ndim} dimensions")
    if X.shape[0] < 2 * HMM_SEQUENCES:
        raise ValueError(f"data must have at least {2 * HMM_SEQUENCES} rows (one series cut "
                         f"into {HMM_SEQUENCES} sequences), got {X.shape[0]}")
    if not np.all(np.isfinite(X)):
        raise ValueError(f"data contains {int(np.sum(~np.isfinite(X)))} NaN or infinite "
                         "values; remove or impute them first")
    y = None if labels is None else np.asarray(labels)
    if y is not None and y.shape[0] != X.shape[0]:
        raise ValueError(f"labels has {y.shape[0]} entries, data has {X.shape[0]} rows")
    pieces = np.array_split(np.arange(X.shape[0]), HMM_SEQUENCES)
    os.makedirs(out, exist_ok=True)

    def rows_of(which):
        idx = np.concatenate([pieces[i] for i in which])
        return idx, [len(pieces[i]) for i in which]

    rows = []
    bar = _bar(progress, len(seeds) * len(methods), "review hmm")
    for seed in seeds:
        test, train = (np.sort(i) for i in _split(seed, HMM_SEQUENCES, test_size))
        if len(train) == 0:
            raise ValueError(f"test_size={test_size} leaves no training sequence of "
                             f"{HMM_SEQUENCES}")
        tr, tr_len = rows_of(train)
        te, te_len = rows_of(test)
        for method in methods:
            est = _hmm_estimator(method, n_components, covariance_type, seed, max_iter, tol)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                t0 = time.perf_counter()
                est.fit(X[tr], tr_len)
                seconds = time.perf_counter() - t0
                heldout = _hmm_heldout(est, method, X[te], te_len) / len(te)
                gap = None
                if method == "vem":
                    ll = est._log_evidence(X[tr], tr_len, "em")
                    elbo = est._log_evidence(X[tr], tr_len, "vem")
                    gap = float(np.sum(ll - elbo) / len(tr))
                ari = (float(adjusted_rand_score(y[te], est.predict(X[te], te_len)))
                       if y is not None else None)
            rows.append({"method": method, "seed": seed, "seconds": seconds,
                         "iterations": int(est.n_iter_),
                         "train_objective": float(est.lower_bound_),
                         "heldout_log_predictive": heldout, "elbo_gap": gap, "ari": ari})
            _tick(bar, method, seed)
    if bar is not None:
        bar.close()

    summary = _summary(rows, methods)
    for srow in summary:
        gaps = [r["elbo_gap"] for r in rows if r["method"] == srow["method"]
                and r["elbo_gap"] is not None]
        srow["elbo_gap"] = float(np.median(gaps)) if gaps else None
    label = "GaussianHMM"
    head = (f"fastvem review: {name} ({X.shape[0]} x {X.shape[1]}, one series cut into "
            f"{HMM_SEQUENCES} sequences, {test_size:g} of them held out), {label} "
            f"K={n_components} covariance_type={covariance_type}, median of {len(seeds)} seeds")
    cols = (f"{'method':10s} {'seconds':>9s} {'iters':>6s} {'train objective':>16s} "
            f"{'held-out lpd':>13s} {'ELBO gap':>9s} {'ARI':>6s}")
    lines = [head, cols, "-" * len(cols)]
    for srow in summary:
        ari = "-" if srow["ari"] is None else f"{srow['ari']:.3f}"
        gap = "-" if srow["elbo_gap"] is None else f"{srow['elbo_gap']:.5f}"
        lines.append(f"{srow['method']:10s} {srow['seconds']:9.4f} {srow['iterations']:6.0f} "
                     f"{srow['train_objective']:16.5f} {srow['heldout_log_predictive']:13.5f} "
                     f"{gap:>9s} {ari:>6s}")
    lines.append("held-out lpd: log predictive density of the held-out sequences, whole, per "
                 "row (plug-in for em, vem, crisp and meanfield at q's means; gibbs: each "
                 "sequence's mean density over the draws).  ELBO gap: log p(X) - vem's ELBO "
                 "per training row at vem's parameters.  train objective: each method's own "
                 "per row (em: log p(X); vem, meanfield: ELBO; crisp: the Viterbi path's log "
                 "joint; gibbs: the drawn paths' mean log joint)")
    lines.append(reading(summary, "held-out lpd"))
    table = "\n".join(lines)
    meta = {"data": name, "shape": list(X.shape), "model": "hmm",
            "n_components": n_components, "covariance_type": covariance_type,
            "n_sequences": HMM_SEQUENCES, "seeds": seeds, "test_size": test_size}
    _write(out, rows, _HMM_COLUMNS, meta, summary, table,
           f"{name}, {label} K={n_components}" if plot else None,
           "held-out log predictive density per row\n(whole held-out sequences)")
    return rows
