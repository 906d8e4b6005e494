"""fastvem.LatentDirichletAllocation: scikit-learn's LDA API on fastvem's engine.

Model: topic-model structure (theta_d ~ Dirichlet(alpha), a topic per token) x
word-topic family (K topics over V words: ``families.categorical.TopicWords``, the
mixture of unigrams' Multinomial), fitted by any method of the spectrum but 'em'
(the exact E-step over (theta_d, z_d) is intractable).  Batch fits, their n_init
restarts and memoized passes run ``TopicEngine`` through the engine's schedules;
online steps use the shared step size (``_validation.stepwise_rho``); the collapsed
gibbs chain runs on the engine's chain runner (``engine.run_chain``) with LDA's
sweeps and draws (``_ext/_lda.pyx``):

- 'vem'       factorised q(theta_d) q(z_d), point topics (Blei, Ng & Jordan 2003),
              alpha learned by Newton steps by default;
- 'meanfield' also q(beta) = Dirichlet(components_) (scikit-learn's model); batch,
              or online / stochastic (Hoffman et al. 2010) with learning_method='online'
              and partial_fit;
- 'gibbs'     collapsed Gibbs sampling (SparseLDA buckets), averaged topics after burn-in;
- 'crisp'     one topic per distinct word of a document, point theta_d and topics.
"""
import numbers
import time
import warnings

import numpy as np
from scipy.special import gammaln
from sklearn.base import BaseEstimator, ClassNamePrefixFeaturesOutMixin, TransformerMixin
from sklearn.utils.validation import check_is_fitted

from ..io import register, save_estimator
from .._ext import _lda
from ..corpus import Corpus, CorpusSource, check_corpus, is_bag_of_words
from ..engine import (Trace, default_n_threads, fit_restarts, kept_sweep, memoized,
                      run_chain, run_iterations)
from ..families.categorical import TopicWords
from ..methods import PRESETS, check_supported
from ..structures.topic_model import TopicEngine, TopicModel
from .._validation import (FittedConfig, check_random_state_param, is_choice,
                          progress_reporter, stepwise_rho)

__all__ = ["LatentDirichletAllocation"]

_FITTED = ("components_", "exp_dirichlet_component_", "n_batch_iter_", "n_iter_", "bound_",
           "doc_topic_prior_", "topic_word_prior_", "n_features_in_", "feature_names_in_",
           # gibbs: the chain's log joint and its diagnostics
           "log_joint_", "rhat_", "ess_", "mixing_", "n_relabelled_", "occupancy_",
           "n_occupied_posterior_",
           # scikit-learn's: the RandomState the fit drew its initial topics from
           "random_state_")
MAX_PRIOR = 1e50        # the largest doc_topic_prior / topic_word_prior (measured: 1e100
#                         overflows the fixed point)
_GIBBS_ATTRS = ("log_joint_", "rhat_", "ess_", "mixing_", "n_relabelled_", "occupancy_",
                "n_occupied_posterior_")
_SWITCH_WORDS = 256     # gibbs: the most frequent words whose topic rows show label switching


class _LazyTopics:
    """components_ under online updates, touched only at a mini-batch's words.

    True value: lambda = a * S + b (S word-major, V x K).  A step
    lambda <- (1 - rho) lambda + rho (eta + ratio * stats) changes the scalars
    (a, b) for every word at once and S only at the batch's words."""

    def __init__(self, components):
        self.S = np.array(components.T, dtype=np.float64, order="C")
        self.a, self.b = 1.0, 0.0
        self.colsum = self.S.sum(axis=0)
        self.V = self.S.shape[0]
        self._scratch = np.full(self.V, -1, dtype=np.int32)

    def totals(self):
        return self.a * self.colsum + self.V * self.b

    def vocabulary(self, indices):
        """The batch's distinct words (sorted) and its indices renumbered into them."""
        words = np.empty(min(indices.size, self.V), dtype=np.int32)
        local = np.empty(indices.size, dtype=np.int32)
        u = _lda.local_vocabulary(indices, self._scratch, words, local)
        return words[:u], local

    def effective(self, words, update, dtype, n_threads):
        out = np.empty((words.size, self.S.shape[1]), dtype=dtype)
        _lda.lazy_effective(self.S, self.a, self.b, words, self.totals(), out,
                            update == "posterior", n_threads)
        return out

    def step(self, words, stats, eb, soft, rho, ratio, eta, n_threads):
        """lambda <- (1 - rho) lambda + rho (eta + ratio * stats * (eb if soft))."""
        a = (1.0 - rho) * self.a
        self.b = (1.0 - rho) * self.b + rho * eta
        if a <= 0.0:              # rho = 1: the old lambda is forgotten whole
            self.S[:] = 0.0
            self.colsum[:] = 0.0
            a = 1.0
        _lda.lazy_add(self.S, self.colsum, words, stats, eb, rho * ratio / a, soft, n_threads)
        self.a = a
        if a < 1e-150:            # fold the scale back in (rare: a shrinks geometrically)
            self.S *= a
            self.colsum = self.S.sum(axis=0)
            self.a = 1.0

    def materialise(self):
        return (self.a * self.S + self.b).T.copy()


@register
class LatentDirichletAllocation(FittedConfig, ClassNamePrefixFeaturesOutMixin, TransformerMixin,
                                BaseEstimator):
    """Latent Dirichlet allocation by variational EM, mean field (batch and online),
    collapsed Gibbs sampling or crisp EM.

    Accepts every constructor parameter of
    :class:`sklearn.decomposition.LatentDirichletAllocation` and exposes the same
    fitted attributes (components_, exp_dirichlet_component_, n_batch_iter_,
    n_iter_, bound_, doc_topic_prior_, topic_word_prior_), plus ``trace_``.
    The default, method='meanfield' with learning_method='batch', is
    scikit-learn's model.

    Parameters (beyond scikit-learn's)
    ----------------------------------
    method : {'meanfield', 'vem', 'gibbs', 'crisp'}, default='meanfield'
        'em' raises a ValueError: the exact E-step is intractable for LDA.
    learn_doc_topic_prior : {None, False, True, 'symmetric', 'asymmetric'}, default=None
        Learn alpha (Newton steps; Minka's fixed point for gibbs).  None means
        'symmetric' for vem and False otherwise (as in scikit-learn).  True means
        'symmetric'.  An asymmetric alpha is stored as a vector in doc_topic_prior_.
    learn_topic_word_prior : bool, default=False
        Learn a symmetric eta (meanfield, batch only: its q(beta) gives eta an
        interior optimum; with the point topics of vem and crisp, log p(beta | eta)
        grows without bound as eta falls towards 0, so they refuse it).
    doc_topic_init : {'ones', 'best', 'warm'}, default='ones'
        Where a batch pass starts each document's fixed point.  'ones': from
        gamma = 1 every pass, as scikit-learn's batch learning (which starts from
        Gamma(100, 0.01) draws); the bound can dip by the inner tolerance
        (mean_change_tol) from one pass to the next.  'warm': from the document's
        gamma of the previous pass: exact coordinate ascent, the bound never
        decreases, but the fit tends to stay in the first passes' poor optimum.
        'best': from gamma = 1, iterated on where it falls short of the previous
        pass's gamma, which is kept otherwise: the bound never decreases.  On the
        corpora measured (see the issue note) 'ones' reaches the best held-out
        perplexity: restarting every document works like annealing.
    burn_in : int or None, default=None
        gibbs: sweeps discarded before the topic-word counts are averaged
        (None: max_iter // 2).  ``max_iter`` is the number of sweeps.
    thin : int, default=1
        gibbs: keep every thin-th sweep after burn-in.
    n_init : int, default=1
        Batch fits: the number of initialisations; the fit with the highest final
        objective is kept (crisp, like k-means, profits from restarts).
    n_threads : int or None, default=None
        Threads of the kernels (None: n_jobs if given, else all CPUs).  Results
        are identical for any value.

    Notes
    -----
    The per-document fixed point starts from gamma = 1 (scikit-learn draws it from
    Gamma(100, 0.01) when fitting), so fits are deterministic given random_state.
    ``exp_dirichlet_component_`` is exp(E log beta) for meanfield and the point
    topics (rows of components_ normalised) for the other methods: in both cases
    the topic matrix the E-step and transform use.
    ``bound_`` (scikit-learn's: the training corpus's perplexity under the final
    topics, a fixed point over every document, as costly as a pass) is computed on
    its first read after a batch fit of a corpus in memory, with the values fit
    left (kept, with the corpus, until then); save, pickling and fit_transform
    compute it too.  Its value is the one fit would have computed.
    """

    _fitted_attributes = _FITTED

    def __init__(self, n_components=10, *, doc_topic_prior=None, topic_word_prior=None,
                 learning_method="batch", learning_decay=0.7, learning_offset=10.0,
                 max_iter=10, batch_size=128, evaluate_every=-1, total_samples=1e6,
                 perp_tol=1e-1, mean_change_tol=1e-3, max_doc_update_iter=100, n_jobs=None,
                 verbose=0, random_state=None, method="meanfield", learn_doc_topic_prior=None,
                 learn_topic_word_prior=False, doc_topic_init="ones", burn_in=None, thin=1,
                 n_init=1, n_threads=None):
        self.n_components = n_components
        self.doc_topic_prior = doc_topic_prior
        self.topic_word_prior = topic_word_prior
        self.learning_method = learning_method
        self.learning_decay = learning_decay
        self.learning_offset = learning_offset
        self.max_iter = max_iter
        self.batch_size = batch_size
        self.evaluate_every = evaluate_every
        self.total_samples = total_samples
        self.perp_tol = perp_tol
        self.mean_change_tol = mean_change_tol
        self.max_doc_update_iter = max_doc_update_iter
        self.n_jobs = n_jobs
        self.verbose = verbose
        self.random_state = random_state
        self.method = method
        self.learn_doc_topic_prior = learn_doc_topic_prior
        self.learn_topic_word_prior = learn_topic_word_prior
        self.doc_topic_init = doc_topic_init
        self.burn_in = burn_in
        self.thin = thin
        self.n_init = n_init
        self.n_threads = n_threads

    # ------------------------------------------------------------ validation
    def _check_params(self):
        def _int(name, minimum):
            v = getattr(self, name)
            if isinstance(v, (bool, np.bool_)) or not isinstance(v, numbers.Integral):
                raise TypeError(f"{name} must be an int, got {v!r}")
            if v < minimum:
                raise ValueError(f"{name} must be >= {minimum}, got {v}")

        def _real(name, low, low_open=False, high=None):
            v = getattr(self, name)
            if isinstance(v, (bool, np.bool_)) or not isinstance(v, numbers.Real):
                raise TypeError(f"{name} must be a number, got {v!r}")
            if not np.isfinite(v) or v < low or (low_open and v == low) or \
                    (high is not None and v > high):
                raise ValueError(f"{name} must be in {'(' if low_open else '['}{low}, "
                                 f"{high if high is not None else 'inf'}], got {v}")

        _int("n_components", 1)
        _int("max_iter", 0)
        _int("verbose", 0)
        _int("batch_size", 1)
        _int("evaluate_every", -10**9)
        _int("max_doc_update_iter", 1)
        _int("thin", 1)
        _int("n_init", 1)
        if self.burn_in is not None:
            _int("burn_in", 0)
        _real("learning_decay", 0.0, True, 1.0)
        _real("learning_offset", 1.0)
        _real("total_samples", 0.0, True)
        _real("perp_tol", 0.0)
        _real("mean_change_tol", 0.0)
        if not is_choice(self.learning_method, ("batch", "online", "memoized")):
            raise ValueError("learning_method must be 'batch', 'online' or 'memoized', got "
                             f"{self.learning_method!r}")
        if self.learning_method == "memoized" and self.method != "meanfield":
            raise ValueError("learning_method='memoized' is for method='meanfield'")
        if not isinstance(self.method, str) or self.method not in PRESETS:
            raise ValueError(f"method must be one of {list(PRESETS)}, got {self.method!r}")
        m = check_supported(self.method, "topic_model")
        if not is_choice(self.learn_doc_topic_prior,
                         (None, False, True, "symmetric", "asymmetric")):
            raise ValueError("learn_doc_topic_prior must be None, False, True, 'symmetric' or "
                             f"'asymmetric', got {self.learn_doc_topic_prior!r}")
        if not is_choice(self.doc_topic_init, ("best", "ones", "warm")):
            raise ValueError("doc_topic_init must be 'best', 'ones' or 'warm', got "
                             f"{self.doc_topic_init!r}")
        if not isinstance(self.learn_topic_word_prior, (bool, np.bool_)):
            raise TypeError("learn_topic_word_prior must be a bool")
        if self.learn_topic_word_prior and (m.update != "posterior"
                                            or self.learning_method == "online"):
            raise ValueError("learn_topic_word_prior=True is available for batch "
                             "method='meanfield' fits only (with the point topics of vem "
                             "and crisp, log p(beta | eta) has no maximum: eta runs to 0)")
        if m.assign == "sample" and self.learning_method == "online":
            raise ValueError("learning_method='online' is not available for method='gibbs' "
                             "(collapsed Gibbs sweeps the whole corpus)")
        self._n_threads = default_n_threads(self.n_threads if self.n_threads is not None
                                            else self.n_jobs)
        return m

    def _priors(self, K):
        """(alpha vector, eta) from the constructor, validated."""
        if self.doc_topic_prior is None:
            alpha = np.full(K, 1.0 / K)
        else:
            alpha = np.asarray(self.doc_topic_prior)
            if alpha.dtype.kind not in "biuf" or alpha.dtype.kind == "b":
                raise TypeError(f"doc_topic_prior must be a positive number or a vector of "
                                f"n_components={K} positive numbers, got "
                                f"{self.doc_topic_prior!r}")
            alpha = alpha.astype(np.float64)
            if alpha.ndim == 0:
                alpha = np.full(K, float(alpha))
            elif alpha.shape != (K,):
                raise ValueError(f"doc_topic_prior must be a positive number or a vector of "
                                 f"n_components={K} values, got shape {alpha.shape}")
        if not np.all(np.isfinite(alpha)) or np.any(alpha <= 0):
            raise ValueError("doc_topic_prior must be positive and finite")
        if np.any(alpha > MAX_PRIOR):
            raise ValueError(f"doc_topic_prior must be at most {MAX_PRIOR:g} (a Dirichlet "
                             f"concentration that large is a point mass), got {alpha.max():g}")
        eta = 1.0 / K if self.topic_word_prior is None else self.topic_word_prior
        if isinstance(eta, (bool, np.bool_)) or not isinstance(eta, numbers.Real):
            raise ValueError(f"topic_word_prior must be a positive number, got {eta!r}")
        if not np.isfinite(eta) or eta <= 0:
            raise ValueError(f"topic_word_prior must be positive and finite, got {eta}")
        if eta > MAX_PRIOR:
            raise ValueError(f"topic_word_prior must be at most {MAX_PRIOR:g} (a Dirichlet "
                             f"concentration that large is a point mass), got {eta:g}")
        return alpha, float(eta)

    def _learn_alpha(self, m):
        v = self.learn_doc_topic_prior
        if v is None:
            v = "symmetric" if m.name == "vem" else False
        if v is True:
            v = "symmetric"
        return v

    def _alpha(self):
        a = np.asarray(self.doc_topic_prior_, dtype=np.float64)
        return np.full(self.n_components, float(a)) if a.ndim == 0 else a

    def _store_priors(self, alpha, eta):
        sym = np.all(alpha == alpha[0])
        self.doc_topic_prior_ = float(alpha[0]) if sym else alpha.copy()
        self.topic_word_prior_ = float(eta)

    # ------------------------------------------------------------ fitting
    def fit(self, X, y=None):
        """Fit the topics to the document-term counts X (sparse, dense or
        gensim-style bag of words)."""
        m = self._check_params()
        self.__dict__.pop("_fitted_with", None)     # unfitted until this fit completes
        for name in _GIBBS_ATTRS:                    # an earlier gibbs fit's diagnostics
            self.__dict__.pop(name, None)
        if _is_corpus_blocks(X):
            # a Dask array or an iterable of document blocks: batch E-steps per block
            if m.assign == "sample" or self.learning_method == "online":
                raise ValueError("a corpus in blocks (dask array or iterable of chunks) is "
                                 "fitted by batch vem, meanfield or crisp; gibbs and "
                                 "learning_method='online' need the corpus in memory")
            if self.doc_topic_init != "ones":
                raise ValueError("a corpus in blocks keeps no per-document state: use "
                                 "doc_topic_init='ones'")
            corpus = CorpusSource(X)
        else:
            corpus = check_corpus(X, integer=m.assign == "sample", fitting=True)
        self._set_n_features(X, corpus)
        K = self.n_components
        alpha, eta = self._priors(K)
        rng = self.random_state_ = check_random_state_param(self.random_state)
        self.n_batch_iter_ = 1
        self.n_iter_ = 0
        if m.assign == "sample":
            seed = int(rng.randint(np.iinfo(np.int32).max))
            comp, alpha = self._fit_gibbs(corpus, alpha, eta, seed)
        else:
            if self.learning_method == "online":
                comp = rng.gamma(100.0, 0.01, (K, corpus.n_words))
                comp, alpha = self._fit_online(corpus, comp, alpha, eta, m, corpus.n_docs,
                                               passes=self.max_iter)
            elif self.learning_method == "memoized":
                if isinstance(corpus, CorpusSource):
                    raise ValueError("learning_method='memoized' needs the corpus in memory")
                comp = rng.gamma(100.0, 0.01, (K, corpus.n_words))
                comp = self._fit_memoized(corpus, comp, alpha, eta, m)
            else:
                comp, alpha, eta = self._fit_batch(corpus, rng, alpha, eta, m)
        self._finish(comp, alpha, eta, m, corpus.dtype)
        self._fitted_with = self._config()
        self._defer_bound(corpus, X, m)
        return self

    def _set_n_features(self, X, corpus):
        self.n_features_in_ = corpus.n_words
        cols = getattr(X, "columns", None)
        if cols is not None and all(isinstance(c, str) for c in cols):
            self.feature_names_in_ = np.asarray(cols, dtype=object)
        elif hasattr(self, "feature_names_in_"):
            del self.feature_names_in_

    def _finish(self, comp, alpha, eta, m, dtype):
        self.components_ = np.asarray(comp, dtype=dtype)
        self._store_priors(alpha, eta)
        fam = TopicWords(comp.shape[1], eta)
        self.exp_dirichlet_component_ = np.ascontiguousarray(
            fam.effective_topics(np.asarray(comp, np.float64), m.update == "posterior",
                                 dtype).T)

    def _engine(self, corpus, m, alpha, eta, learn_alpha, learn_eta, keep_beta_free=False,
                doc_topic_init=None):
        """The word-topic family x the topic model x the method, on the engine's
        interface (fastvem.structures.topic_model.TopicEngine)."""
        structure = TopicModel(self.n_components, learn_alpha, m.assign == "argmax")
        return TopicEngine(TopicWords(corpus.n_words, eta), structure, m, alpha, eta,
                           corpus.dtype, self.max_doc_update_iter, self.mean_change_tol,
                           self._n_threads,
                           doc_topic_init=doc_topic_init or self.doc_topic_init,
                           learn_eta=learn_eta, keep_beta_free=keep_beta_free)

    def _fit_batch(self, corpus, rng, alpha, eta, m):
        """n_init batch fits (engine.fit_restarts of TopicEngine's step), each from
        its own Gamma(100, 0.01) topics; the one with the highest final objective is
        kept.  Returns (components, alpha, eta)."""
        K = self.n_components
        engine = self._engine(corpus, m, alpha, eta, self._learn_alpha(m),
                              self.learn_topic_word_prior)
        state = {"last_perp": None}

        def initialise():
            state["last_perp"] = None
            engine.reset_documents(corpus)
            return rng.gamma(100.0, 0.01, (K, corpus.n_words)), alpha.copy(), eta

        def callback(it, objective, params):
            self.n_iter_ = it
            self.n_batch_iter_ = it + 1
            if self.evaluate_every > 0 and it % self.evaluate_every == 0:
                perp = float(np.exp(-objective))
                last = state["last_perp"]
                state["last_perp"] = perp
                if self.verbose:
                    print(f"iteration: {it} of max_iter: {self.max_iter}, perplexity: {perp:.4f}")
                return last is not None and abs(last - perp) < self.perp_tol
            if self.verbose:               # scikit-learn's line
                print(f"iteration: {it} of max_iter: {self.max_iter}")
            return False

        best = fit_restarts(initialise, engine.step(corpus), self.n_init, self.max_iter,
                            tol=-1.0, callback=callback)
        self.trace_ = best.trace.as_dict()
        self.n_iter_ = best.n_iter
        return best.params

    def _fit_memoized(self, corpus, comp, alpha, eta, m):
        """Memoized mean field over batches of batch_size documents (engine.memoized
        with TopicEngine): each batch's word-topic statistics and its terms without
        beta are kept; a visit replaces them (total - old + new) and q(beta) =
        Dirichlet(eta + total) is updated after every batch.  The ELBO at the end of
        a pass is exact for the kept q(z), q(theta) and the current q(beta): the
        per-batch terms that do not involve beta are kept as numbers, the beta terms
        are <total, E log beta> minus the topics' KL.  Every step is an exact
        coordinate ascent step, so after the first pass the ELBO never decreases."""
        D = corpus.n_docs
        edges = list(range(0, D, self.batch_size)) + [D]
        # the batches keep no per-document state: each visit starts from gamma = 1
        engine = self._engine(corpus, m, alpha, eta, False, False, keep_beta_free=True,
                              doc_topic_init="ones")
        step = memoized(engine, corpus, None, len(edges) - 1, rows=corpus.rows, edges=edges)
        report, close = progress_reporter(self, "LDA meanfield memoized", total=self.max_iter,
                                          unit="Pass")

        def callback(it, objective, params):
            report.iteration(it, objective, np.nan)
            self.n_iter_ = it
            self.n_batch_iter_ = it + 1
            return False

        try:
            res = run_iterations(step, (comp, alpha, eta), self.max_iter, tol=-1.0,
                                 callback=callback)
        finally:
            close()
        self.trace_ = res.trace.as_dict()
        return res.params[0]

    def _online_step(self, lazy, batch, alpha, eta, m, total_samples):
        """One mini-batch step: E-step on the batch's words only, then the lazy update."""
        words, local = lazy.vocabulary(batch.indices)
        sub = Corpus(batch.indptr, local, batch.data, words.size)
        eb = lazy.effective(words, m.update, batch.dtype, self._n_threads)
        hard = m.assign == "argmax"
        stats, tot = TopicModel.local_step(sub, eb, alpha, None, hard,
                                           self.max_doc_update_iter, self.mean_change_tol,
                                           True, self._n_threads, apply_eb=False)
        rho = stepwise_rho(self.n_batch_iter_, self.learning_decay, self.learning_offset)
        lazy.step(words, stats, eb, not hard, rho, float(total_samples) / batch.n_docs, eta,
                  self._n_threads)
        self.n_batch_iter_ += 1
        return tot

    def _fit_online(self, corpus, comp, alpha, eta, m, total_samples, passes):
        lazy = _LazyTopics(comp)
        learn_alpha = self._learn_alpha(m)
        trace = Trace()
        report, close = progress_reporter(self, f"LDA {m.name} online", total=passes,
                                          unit="Pass")
        try:
            for it in range(1, passes + 1):
                t0 = time.perf_counter()
                for start in range(0, corpus.n_docs, self.batch_size):
                    batch = corpus.rows(start, min(corpus.n_docs, start + self.batch_size))
                    tot = self._online_step(lazy, batch, alpha, eta, m, total_samples)
                    if learn_alpha:
                        rho = stepwise_rho(self.n_batch_iter_, self.learning_decay,
                                           self.learning_offset)
                        target = TopicModel.update_alpha(tot[3:], batch.n_docs, alpha,
                                                         m.assign == "argmax",
                                                         learn_alpha == "symmetric")
                        alpha = (1 - rho) * alpha + rho * target
                self.n_iter_ = it
                trace.append(np.nan, time.perf_counter() - t0)
                report.iteration(it, np.nan, np.nan)
                if self.evaluate_every > 0 and it % self.evaluate_every == 0:
                    comp_now = lazy.materialise()
                    self._finish(comp_now, alpha, eta, m, corpus.dtype)
                    perp = self._perplexity(corpus)
                    trace.objective[-1] = -np.log(perp)
                    if self.verbose:
                        print(f"iteration: {it} of max_iter: {passes}, perplexity: {perp:.4f}")
                    last = getattr(self, "_last_perp", None)
                    self._last_perp = perp
                    if last is not None and abs(last - perp) < self.perp_tol:
                        break
        finally:
            close()
        self.__dict__.pop("_last_perp", None)
        self.trace_ = trace.as_dict()
        return lazy.materialise(), alpha

    def partial_fit(self, X, y=None):
        """One online pass over X in mini-batches of batch_size (total_samples
        documents in the whole stream).  Each step touches only its batch's words."""
        m = self._check_params()
        if m.assign == "sample":
            raise ValueError("partial_fit is not available for method='gibbs'")
        first = not self.__sklearn_is_fitted__()
        if not first:
            self._check_config("partial_fit")
        corpus = check_corpus(X, n_words=None if first else self.n_features_in_,
                              integer=False, fitting=first)
        K = self.n_components
        if first:
            self._set_n_features(X, corpus)
            alpha, eta = self._priors(K)
            rng = self.random_state_ = check_random_state_param(self.random_state)
            comp = rng.gamma(100.0, 0.01, (K, corpus.n_words))
            self.n_batch_iter_ = 1
            self.n_iter_ = 0
        else:
            alpha, eta = self._alpha(), self.topic_word_prior_
            comp = np.asarray(self.components_, dtype=np.float64)
        comp, alpha = self._fit_online(corpus, comp, alpha, eta, m, self.total_samples, 1)
        self._finish(comp, alpha, eta, m, corpus.dtype)
        self._fitted_with = self._config()
        return self

    def _fit_gibbs(self, corpus, alpha, eta, seed):
        K, V = self.n_components, corpus.n_words
        burn_in = self.max_iter // 2 if self.burn_in is None else self.burn_in
        if self.max_iter > 0 and burn_in >= self.max_iter:
            raise ValueError(f"burn_in={burn_in} leaves no sweep to average out of "
                             f"max_iter={self.max_iter}")
        learn_alpha = self._learn_alpha(PRESETS["gibbs"])
        doc_ptr, words = corpus.tokens()
        rng = np.random.default_rng(seed)
        z = rng.integers(0, K, size=words.shape[0], dtype=np.int32)
        nwk = np.bincount(words.astype(np.int64) * K + z, minlength=V * K).astype(np.int32)
        nwk = nwk.reshape(V, K)
        nk = nwk.sum(axis=0, dtype=np.int64)
        wlen = (nwk > 0).sum(axis=1).astype(np.int32)
        # each word's topics sorted by count, largest first (the sampler walks them so)
        wlist = np.ascontiguousarray(np.argsort(-nwk, axis=1, kind="stable"), dtype=np.int32)
        wcnt = np.ascontiguousarray(np.take_along_axis(nwk, wlist, axis=1), dtype=np.int32)
        wpos = np.full((V, K), -1, dtype=np.int32)
        rows, cols = np.nonzero(np.arange(K)[None, :] < wlen[:, None])
        wpos[rows, wlist[rows, cols]] = cols
        doc_ll = np.zeros(corpus.n_docs)
        acc = np.zeros((V, K))
        # label switching: the topic rows of the most frequent words at every kept
        # sweep, relabelled afterwards (fastvem.diagnostics, as for mixtures)
        freq = np.bincount(words, minlength=V)
        top = np.argsort(-freq, kind="stable")[:min(V, _SWITCH_WORDS)]
        self.log_joint_ = []
        dk = {}
        if learn_alpha:     # the sweep writes each document's nonzero topic counts
            n_d = np.diff(doc_ptr)
            dk_ptr = np.concatenate([[0], np.cumsum(np.minimum(n_d, K))])
            dk = dict(dk_ptr=dk_ptr, dk_top=np.empty(dk_ptr[-1], np.int32),
                      dk_cnt=np.empty(dk_ptr[-1], np.int32))
            len_tails = TopicModel.count_tails(n_d, np.zeros(n_d.shape[0]), 1)
        n_tokens = max(words.shape[0], 1)

        def sweep_step(alpha, sweep):
            """One collapsed sweep (the chain's state lives in the count arrays; its
            parameter is alpha): the draws, the word part of the log joint, the
            running sum of the kept sweeps' counts, alpha's update when learned."""
            _lda.gibbs_sweep(doc_ptr, words, z, nk, wlist, wcnt, wlen, wpos, doc_ll,
                             alpha, eta, seed, sweep, self._n_threads, **dk)
            lg, nnz = _lda.gibbs_word_terms(wlist, wcnt, wlen, acc,
                                            kept_sweep(sweep, burn_in, self.thin), eta,
                                            self._n_threads)
            if learn_alpha:
                alpha = TopicModel.update_alpha_counts(dk["dk_top"], dk["dk_cnt"], len_tails,
                                                       alpha, learn_alpha == "symmetric")
            lj = float(doc_ll.sum() + _word_log_joint(lg, nnz, V, nk, eta))
            self.log_joint_.append(lj)
            self.n_iter_ = sweep
            self.n_batch_iter_ = sweep + 1
            return lj / n_tokens, alpha, []

        def snapshot(sweep, alpha):
            return _topic_rows(wlist, wcnt, wlen, top, K), nk.astype(np.float64)

        report, close = progress_reporter(self, "LDA gibbs", total=self.max_iter, unit="Sweep")
        try:
            res, kept_draws = run_chain(sweep_step, alpha, self.max_iter, burn_in, self.thin,
                                        keep=snapshot, progress=report.iteration)
        finally:
            close()
        alpha, kept = res.params, len(kept_draws)
        snaps = [k[0] for k in kept_draws]
        counts = [k[1] for k in kept_draws]
        self.log_joint_ = np.asarray(self.log_joint_)
        self.trace_ = res.trace.as_dict()
        self._gibbs_diagnostics(snaps, counts, burn_in, eta)
        if kept == 0:       # no sweep kept (max_iter 0): the initial counts
            _lda.gibbs_word_terms(wlist, wcnt, wlen, acc, True, eta, self._n_threads)
            kept = 1
        return TopicWords(V, eta).components(acc / kept, eta), alpha

    def _gibbs_diagnostics(self, snaps, counts, burn_in, eta):
        """Relabelling check, topic occupancy and split-R-hat / ESS of the log joint
        (one chain: its halves).  components_ averages the kept sweeps' counts,
        which is only right if the topics did not switch labels in between: the
        kept sweeps are relabelled on p(topic | word) of the most frequent words,
        and a switch is reported (n_relabelled_ > 0, with a warning)."""
        from ..diagnostics import mixing_report, occupancy, relabel
        K = self.n_components
        self.n_relabelled_ = 0
        self.occupancy_ = np.ones(K)
        self.n_occupied_posterior_ = np.eye(K + 1)[K]
        if snaps:
            P = np.stack(snaps) + eta
            perms, _ = relabel(P / P.sum(2, keepdims=True))
            self.n_relabelled_ = int(np.any(perms != perms[0], axis=1).sum())
            if self.n_relabelled_:
                warnings.warn(f"gibbs: topics switched labels in {self.n_relabelled_} of "
                              f"{len(snaps)} kept sweeps, so components_ mixes topics; keep "
                              "fewer sweeps (a larger burn_in) or fit again", RuntimeWarning)
            _, self.occupancy_, self.n_occupied_posterior_ = occupancy(np.stack(counts), 1.0)
        post = self.log_joint_[min(burn_in, max(len(self.log_joint_) - 1, 0)):]
        mix, self.rhat_, self.ess_, _ = mixing_report({"log_joint": post[None, :]})
        self.mixing_ = {k: np.array(v) for k, v in mix.items()}

    # ------------------------------------------------------------ inference
    _CONFIG = ("n_components", "method")

    def _check_fitted_corpus(self, X):
        check_is_fitted(self)
        self._check_config()
        self._check_params()       # transform reads max_doc_update_iter, mean_change_tol
        return check_corpus(X, n_words=self.n_features_in_, dtype=self.components_.dtype)

    def _doc_topic(self, corpus, keep_gamma=True, model=None):
        """(gamma, totals) of the fixed point from gamma = 1 with the fitted topics
        (gamma None for a corpus in blocks, or when only the totals are wanted).
        model: a _FittedModel (default: this estimator's, as it is now)."""
        m = model if model is not None else _FittedModel(self, corpus.dtype)
        if isinstance(corpus, CorpusSource):
            res = corpus.estep(m.eb, m.alpha, False, m.max_iter, m.tol, False, m.n_threads)
            return None, res.totals
        gamma = (np.ones((corpus.n_docs, self.n_components), dtype=corpus.dtype)
                 if keep_gamma else None)
        _, tot = TopicModel.local_step(corpus, m.eb, m.alpha, gamma, False, m.max_iter, m.tol,
                                       False, m.n_threads)
        return gamma, tot

    def _threads(self):
        return default_n_threads(self.n_threads if self.n_threads is not None else self.n_jobs)

    def transform(self, X, *, normalize=True):
        """Document-topic distribution of X (rows sum to 1 when normalize)."""
        gamma, _ = self._doc_topic(self._check_fitted_corpus(X))
        if normalize:
            gamma /= gamma.sum(axis=1, keepdims=True)
        return gamma

    def fit_transform(self, X, y=None, *, normalize=True):
        self.fit(X, y)
        corpus = self._check_fitted_corpus(X)
        gamma, tot = self._doc_topic(corpus)
        if "_pending_bound" in self.__dict__ and gamma is not None:
            # this fixed point (gamma = 1, the final topics, all of X) is the one bound_
            # is computed from: its totals give bound_ at no cost
            self._resolve_bound(tot)
        if normalize:
            gamma /= gamma.sum(axis=1, keepdims=True)
        return gamma

    def _score_corpus(self, corpus, model=None, totals=None, doc_ratio=1.0):
        """The bound on corpus; model: a _FittedModel (default: this estimator's);
        totals: the fixed point's, if already run; doc_ratio scales the documents'
        part (scikit-learn's sub_sampling)."""
        m = model if model is not None else _FittedModel(self, corpus.dtype)
        tot = totals if totals is not None else self._doc_topic(corpus, False, m)[1]
        score = doc_ratio * TopicModel.documents_term(tot, m.alpha, corpus.n_docs, False)
        if m.components is not None:
            score -= TopicWords(m.components.shape[1], m.eta).kl(m.components, m.eta)
        return score

    def score(self, X, y=None):
        """The approximate log-likelihood of X (the variational bound, as scikit-learn)."""
        return self._score_corpus(self._check_fitted_corpus(X))

    def _perplexity(self, corpus, model=None, totals=None, doc_ratio=1.0):
        if corpus.total <= 0:
            raise ValueError("X holds no words (every document is empty): its perplexity, "
                             "exp(-bound / number of words), is undefined")
        log_perplexity = (-self._score_corpus(corpus, model, totals, doc_ratio)
                          / (corpus.total * doc_ratio))
        with np.errstate(over="ignore"):
            perplexity = float(np.exp(log_perplexity))
        if not np.isfinite(perplexity):
            raise ValueError(f"the perplexity of X overflows float64: its log is "
                             f"{log_perplexity:.4g} (X holds {corpus.total:.3g} words in all; "
                             "a near-empty corpus or extreme priors make the bound per word "
                             "that large)")
        return perplexity

    def perplexity(self, X, sub_sampling=False):
        """exp(-bound / number of words), as scikit-learn.  sub_sampling: X is a
        mini-batch of a corpus of total_samples documents, so the documents' part of
        the bound and the words are scaled by total_samples / n_documents (as
        scikit-learn's)."""
        if not isinstance(sub_sampling, (bool, np.bool_)):
            raise TypeError(f"sub_sampling must be a bool, got {sub_sampling!r}")
        corpus = self._check_fitted_corpus(X)
        ratio = (float(self.total_samples) / corpus.n_docs
                 if sub_sampling and corpus.n_docs > 0 else 1.0)
        return self._perplexity(corpus, doc_ratio=ratio)

    @property
    def _n_features_out(self):
        return self.components_.shape[0]

    # ------------------------------------------------------------ persistence
    # ------------------------------------------------------------ bound_, on first read
    def _defer_bound(self, corpus, X, m):
        """bound_ is scikit-learn's: the perplexity of the training corpus under the final
        topics, a fixed point over every document from gamma = 1 after the last M-step
        (as costly as a pass).  After a batch fit of a corpus in memory it is computed on
        the first read of bound_ (or by save, pickling, or fit_transform's own fixed
        point, which is the same one), from what fit left: the estimator keeps the
        corpus (its own arrays: those that X's share are copied), the topics, alpha and
        the inner limits until then, so the value is the one fit would have computed,
        whatever happens to X or to the fitted attributes in between.  A refit replaces
        it.  Computed in fit at once: corpora in blocks, online and gibbs fits, and a
        last objective near where the perplexity overflows (fit raises that error)."""
        self.__dict__.pop("bound_", None)
        self.__dict__.pop("_pending_bound", None)
        obj = self.trace_["objective"] if hasattr(self, "trace_") else []
        lazy = (isinstance(corpus, Corpus) and m.assign != "sample"
                and self.learning_method in ("batch", "memoized") and len(obj) > 0
                and np.isfinite(obj[-1]) and obj[-1] > -350.0 and corpus.total > 0)
        if not lazy:
            self.bound_ = self._perplexity(corpus)
            return
        self._pending_bound = (_private_corpus(corpus, X),
                               _FittedModel(self, corpus.dtype, copy=True))

    def _resolve_bound(self, totals=None):
        corpus, model = self.__dict__.pop("_pending_bound")
        try:
            self.bound_ = self._perplexity(corpus, model, totals)
        except BaseException:
            self._pending_bound = (corpus, model)     # a later read tries again
            raise
        return self.bound_

    def __getattr__(self, name):
        # called only for attributes not found: bound_ while it is pending
        if name == "bound_" and "_pending_bound" in self.__dict__:
            return self._resolve_bound()
        raise AttributeError(f"'{type(self).__name__}' object has no attribute '{name}'")

    def __getstate__(self):
        if "_pending_bound" in self.__dict__:       # pickles hold bound_, not the corpus
            self._resolve_bound()
        return super().__getstate__()

    def save(self, path):
        if "_pending_bound" in self.__dict__:
            self._resolve_bound()
        save_estimator(self, path)

    def _check_loaded(self):
        """Every fitted attribute of a loaded model, against its schema (see
        fastvem._load_checks); ValueError naming the attribute otherwise."""
        from .._load_checks import check_lda
        check_lda(self)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = True
        tags.input_tags.positive_only = True
        tags.input_tags.allow_nan = False
        return tags


class _FittedModel:
    """What the documents' fixed point and the bound read from a fitted estimator: the
    effective topics word-major (eb), alpha, the inner limits, the threads, and for
    meanfield the topics (components, with eta) of the bound's topic term.  copy=True
    keeps copies, so that a bound computed later sees the model as it was."""

    def __init__(self, est, dtype, copy=False):
        comp = est.exp_dirichlet_component_.T
        self.eb = (np.array(comp, dtype=dtype, order="C") if copy
                   else np.ascontiguousarray(comp, dtype=dtype))
        own = np.array if copy else np.asarray
        self.alpha = own(est._alpha(), dtype=np.float64)
        self.max_iter, self.tol = est.max_doc_update_iter, est.mean_change_tol
        self.n_threads = est._threads()
        self.components = None
        self.eta = est.topic_word_prior_
        if PRESETS[est.method].update == "posterior":
            self.components = own(est.components_, dtype=np.float64)


def _private_corpus(corpus, X):
    """corpus with its own arrays: those that may share memory with X's are copied (a
    CSR X of the right dtypes is used without a copy by check_corpus)."""
    import scipy.sparse as sp
    if not sp.issparse(X):
        return corpus
    theirs = [a for a in (getattr(X, n, None) for n in ("data", "indices", "indptr", "row",
                                                         "col", "offsets"))
              if isinstance(a, np.ndarray)]

    def own(a):
        return a.copy() if any(np.may_share_memory(a, t) for t in theirs) else a
    return Corpus(own(corpus.indptr), own(corpus.indices), own(corpus.data), corpus.n_words)


def _is_corpus_blocks(X):
    """A Dask array, a list / tuple of 2-D document blocks (sparse or dense), or a
    re-iterable of such blocks -- not a single matrix nor a bag-of-words list."""
    import scipy.sparse as sp
    from ..sources import is_dask_array
    if is_dask_array(X):
        return True
    if sp.issparse(X) or hasattr(X, "shape") or isinstance(X, (str, bytes, dict)):
        return False
    if isinstance(X, (list, tuple)):
        return (len(X) > 0 and not is_bag_of_words(X)
                and all(sp.issparse(c) or getattr(c, "ndim", None) == 2 for c in X))
    return hasattr(X, "__iter__")


def _word_log_joint(lg, nnz, V, nk, eta):
    """log p(w | z, eta) of the collapsed model (the topics' Dirichlet-multinomials),
    from lg = sum over the nonzero word-topic counts of lgamma(n_wk + eta), and their
    number nnz."""
    return (lg - nnz * gammaln(eta) + nk.shape[0] * gammaln(V * eta)
            - np.sum(gammaln(nk + V * eta)))


def _topic_rows(wlist, wcnt, wlen, words, K):
    """Dense (len(words), K) topic counts of the given words from the sampler's
    per-word lists."""
    rows = np.zeros((len(words), K))
    have = np.arange(K)[None, :] < wlen[words][:, None]
    r, c = np.nonzero(have)
    rows[r, wlist[words][r, c]] = wcnt[words][r, c]
    return rows
