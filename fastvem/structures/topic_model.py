"""The topic-model latent structure (LDA admixture).

Each document d has its own topic proportions theta_d ~ Dirichlet(alpha) and a
topic per token.  The structure turns the effective topics into q(T) by the
per-document fixed point (compiled, `_ext/_lda.pyx`): soft under the method's
'softmax' assignment (q(theta_d) = Dirichlet(gamma_d), q(z_dn) by digamma), crisp
under 'argmax' (one topic per distinct word of a document, theta_d the smoothed
relative frequencies), and collapsed Gibbs draws under 'sample'.  It owns alpha.

``TopicEngine`` runs the word-topic family (``families.categorical.TopicWords``) x
this structure x a method with the engine's interface (statistics / update / bound /
step), so that the batch fit, its restarts and the memoized passes are the engine's
schedules (``engine.run_iterations``, ``fit_restarts``, ``memoized``).
"""
import numpy as np
from scipy.special import gammaln, psi

from .._ext import _lda
from ..engine import RowStats
from ..families.categorical import dirichlet_newton
from ..methods import get_method
from .base import Structure

__all__ = ["TopicModel", "TopicStats", "TopicEngine"]

# documents per block of a pass from gamma = 1: a multiple of the kernel's partition
# size, so that the sums run in the same order as over the whole corpus at once
BLOCK_DOCS = 64 * _lda.PARTITION_DOCS


class TopicModel(Structure):
    """Per-document fixed point, objective terms and alpha updates.

    The structure protocol: its block of the statistics is sum_d E[log theta_d] (K;
    under crisp, log theta_d of the point proportions) and the number of documents
    (``statistics_size`` K + 1, ``block``); its parameter alpha is a point (empirical
    Bayes, never a law): fixed (learn False), or ``point_estimate(block, alpha)``,
    the Newton update of the documents' term, symmetric or asymmetric (learn
    'symmetric' / 'asymmetric'); hard: the crisp objective's shift (alpha + 1).
    alpha has no prior, so there is no posterior, expected_log, kl or draw of it (a
    gibbs chain updates it by Minka's fixed point, ``update_alpha_counts``).  Topics
    are never re-seeded: ``empty_components`` is empty."""

    name = "topic_model"
    local_step_kind = "document"

    def __init__(self, n_components, learn=False, hard=False):
        super().__init__(n_components)
        if learn not in (False, "symmetric", "asymmetric"):
            raise ValueError(f"learn must be False, 'symmetric' or 'asymmetric', got {learn!r}")
        self.learn = learn
        self.hard = bool(hard)

    def statistics_size(self):
        return self.n_components + 1

    @staticmethod
    def block(stats):
        """The structure's block of a pass's statistics (their totals and n_docs):
        [sum_d E log theta_d (K), n_docs]."""
        return np.concatenate((stats.totals[3:], [stats.n_docs]))

    def point_estimate(self, block, alpha):
        """alpha after the statistics' block: unchanged unless learned."""
        if not self.learn:
            return alpha
        return self.update_alpha(block[:-1], block[-1], alpha, self.hard,
                                 self.learn == "symmetric")

    @staticmethod
    def empty_components(block, total_weight, rel=1e-10):
        return np.zeros(0, dtype=np.intp)

    def prior(self, *args, **kwargs):
        """alpha is a point (fixed or learned by empirical Bayes): no law."""
        return None

    def _no_law(self, *args, **kwargs):
        raise NotImplementedError("the topic model's alpha is a point (fixed or learned by "
                                  "Newton steps), not a random variable: it has no posterior")

    posterior = expected_log = kl = sample = mean = _no_law

    @staticmethod
    def local_step(corpus, eb, alpha, gamma, hard, max_iter, tol, need_stats, n_threads,
                   restart=False, apply_eb=True):
        """Run the fixed point of every document from gamma (overwritten), or, with
        gamma None, from gamma = 1 in blocks of BLOCK_DOCS documents so that no
        documents x topics array exists.  The blocks add into the same accumulators
        in document order, exactly as one call would.  Returns (stats word-major
        V x K or None, totals: [word, dirichlet, inner iterations, sum_d E log
        theta_d (K)]).  apply_eb=False leaves the soft statistics before their
        elementwise product with eb (for a caller that fuses it into its update)."""
        K = eb.shape[1]
        stats = np.zeros((corpus.n_words, K) if need_stats else (1, K))
        totals = np.zeros(3 + K)
        alpha = np.ascontiguousarray(alpha, dtype=np.float64)
        args = (int(hard), int(max_iter), float(tol), bool(need_stats), int(restart),
                int(n_threads))
        if gamma is not None:
            _lda.doc_fixed_point(corpus.indptr, corpus.indices, corpus.data, eb, alpha, gamma,
                                 stats, totals, *args)
        else:
            if restart:
                raise ValueError("restart needs the previous gamma")
            buf = np.empty((min(BLOCK_DOCS, corpus.n_docs), K), dtype=eb.dtype)
            for lo in range(0, corpus.n_docs, BLOCK_DOCS):
                block = corpus.rows(lo, min(corpus.n_docs, lo + BLOCK_DOCS))
                g = buf[:block.n_docs]
                g.fill(1.0)
                _lda.doc_fixed_point(block.indptr, block.indices, block.data, eb, alpha, g,
                                     stats, totals, *args)
        if need_stats and not hard and apply_eb:
            stats *= eb          # phi = e_k eb_wk c / norm: the eb factor is applied once here
        return (stats if need_stats else None), totals

    @staticmethod
    def documents_term(totals, alpha, n_docs, hard):
        """The documents' part of the objective from the kernel's totals: the data
        term plus E[log p(theta | alpha) - log q(theta)] (soft), or the data term plus
        log Dirichlet(theta | alpha + 1) (crisp)."""
        K = alpha.shape[0]
        if hard:
            const = gammaln(alpha.sum() + K) - gammaln(alpha + 1).sum()
        else:
            const = gammaln(alpha.sum()) - gammaln(alpha).sum()
        return float(totals[0] + totals[1] + n_docs * const)

    @staticmethod
    def update_alpha(ss, n_docs, alpha, hard, symmetric):
        """alpha maximising the documents' term, given sum_d E log theta_d.  With one
        topic theta_d = 1 whatever alpha: the term is flat, alpha stays."""
        if np.shape(alpha)[0] == 1:
            return alpha
        return dirichlet_newton(ss, n_docs, alpha, 1.0 if hard else 0.0, symmetric)

    @staticmethod
    def count_tails(values, groups, n_groups, cap=1024):
        """For the counts `values` in `groups` (int32; values <= 0 ignored):
        tails[g, j] = how many of group g exceed j (j < the largest count, at most cap),
        and the (group, count) pairs above cap.  sum_{j < c} 1 / (a + j) is
        psi(c + a) - psi(a), so a sum of such digamma differences over many counts is
        one pass over the tails."""
        values = np.ascontiguousarray(values, dtype=np.int32)
        groups = np.ascontiguousarray(groups, dtype=np.int32)
        hist = np.zeros((n_groups, cap + 1), dtype=np.int64)
        n_big = _lda.count_histogram(groups, values, hist)
        used = np.flatnonzero(hist.any(axis=0))
        top = int(used[-1]) if used.size else 0
        tails = np.cumsum(hist[:, top::-1], axis=1)[:, ::-1][:, 1:]
        if n_big:
            big = values > cap
            big_groups, big_values = groups[big].astype(np.int64), values[big]
        else:
            big_groups = big_values = np.zeros(0, dtype=np.int64)
        return tails.astype(np.float64), big_groups, big_values

    @staticmethod
    def digamma_sums(tails, big_groups, big_values, a):
        """sum over each group's counts c of psi(c + a_g) - psi(a_g) (count_tails' form)."""
        j = np.arange(tails.shape[1], dtype=np.float64)
        out = (tails / (a[:, None] + j[None, :])).sum(axis=1)
        if big_values.shape[0]:
            extra = psi(big_values + a[big_groups]) - psi(a[big_groups])
            out += np.bincount(big_groups, weights=extra, minlength=a.shape[0])
        return out

    @staticmethod
    def update_alpha_counts(topics, counts, len_tails, alpha, symmetric, n_iter=20):
        """alpha from sampled document-topic counts (Minka's fixed point for the
        Dirichlet-multinomial), used by collapsed Gibbs.

        topics, counts: the nonzero document-topic counts (any order; zeros ignored);
        len_tails: count_tails of the document lengths (one group)."""
        K = alpha.shape[0]
        if K == 1:                 # theta_d = 1 whatever alpha: nothing to learn
            return alpha
        tails, bg, bv = TopicModel.count_tails(counts, topics, K)
        a = np.array(alpha, dtype=np.float64)
        for _ in range(n_iter):
            a0 = a.sum()
            den = float(TopicModel.digamma_sums(*len_tails, np.array([a0]))[0])
            num = TopicModel.digamma_sums(tails, bg, bv, a)
            if symmetric:
                new = np.full_like(a, a.mean() * num.sum() / (K * den) if den > 0 else a[0])
            else:
                new = a * num / den if den > 0 else a
            new = np.maximum(new, 1e-6)
            if np.max(np.abs(new - a) / a) < 1e-8:
                a = new
                break
            a = new
        return a


class TopicStats(RowStats):
    """The additive statistics of a topic model's pass: the word-topic statistics
    (word-major, V x K), the kernel's totals [word term, Dirichlet term, inner
    iterations, sum_d E log theta_d (K)], the number of documents, the words (the
    weight) and, for memoized passes, the documents' bound without its beta terms
    (``beta_free``: the documents' term minus <stats, E log beta>).  They add,
    subtract and scale field by field, like RowStats."""

    _fields = ("stats", "totals", "n_docs", "weight", "beta_free")
    __slots__ = ("n_docs", "beta_free")

    def __init__(self, stats, totals, n_docs, weight, beta_free=0.0):
        self.stats, self.totals, self.n_docs = stats, totals, n_docs
        self.weight, self.beta_free = weight, beta_free
        self.nk = None

    @property
    def objective(self):
        return float(self.totals[0] + self.totals[1])

    def settle(self):
        """The statistics with the word-topic counts floored at 0: total - old + new
        can leave -1e-16 where a word's counts cancel, which a tiny eta cannot absorb
        (engine.memoized calls it after replacing a batch)."""
        return TopicStats(np.maximum(self.stats, 0.0), self.totals, self.n_docs, self.weight,
                          self.beta_free)


class TopicEngine:
    """The word-topic family x the topic-model structure x a method (vem, meanfield,
    crisp), with the engine's interface, so that run_iterations, fit_restarts and
    memoized run LDA.

    Parameters are (components, alpha, eta): components_ (K x V, eta + the
    statistics), the documents' prior alpha (K) and the topics' prior eta.  The data
    is a Corpus (or a CorpusSource: blocks of documents, E-steps per block); the
    per-document gamma is kept between passes when doc_topic_init is 'best' or
    'warm' (reset_documents), started from 1 in each pass otherwise.  keep_beta_free
    (memoized passes): the statistics carry the documents' bound without its beta
    terms, so that the ELBO at the end of a pass is exact for the kept q(z), q(theta)
    and the current q(beta)."""

    def __init__(self, family, structure, method, alpha, eta, dtype, max_doc_iter, tol,
                 n_threads, doc_topic_init="ones", learn_eta=False, keep_beta_free=False):
        self.family = family
        self.structure = structure
        self.method = get_method(method)
        self.posterior = self.method.update == "posterior"
        self.hard = self.method.assign == "argmax"
        self.alpha, self.eta = alpha, eta       # when update is given no parameters
        self.dtype = dtype
        self.max_doc_iter, self.tol, self.n_threads = max_doc_iter, tol, n_threads
        self.doc_topic_init = doc_topic_init
        self.learn_eta = learn_eta
        self.keep_beta_free = keep_beta_free
        self.gamma = None

    def reset_documents(self, corpus):
        """A fresh start of the documents' gamma (a new fit or restart)."""
        from ..corpus import CorpusSource
        keep = self.doc_topic_init != "ones" and not isinstance(corpus, CorpusSource)
        self.gamma = (np.ones((corpus.n_docs, self.structure.n_components), dtype=self.dtype)
                      if keep else None)

    def effective(self, params):
        """(eb word-major, E log beta or None): the kernel's topics, and E log beta once
        for the objective's topic term."""
        comp = params[0]
        T = self.n_threads
        elog = self.family.expected_log(comp, T) if self.posterior else None
        return self.family.effective_topics(comp, self.posterior, self.dtype, elog, T), elog

    def statistics(self, corpus, sample_weight, params, iteration=0, effective=None):
        """One pass of the documents' fixed point: TopicStats (sample_weight unused)."""
        from ..corpus import CorpusSource
        alpha = params[1]
        eb, elog = self.effective(params) if effective is None else effective
        if isinstance(corpus, CorpusSource):
            res = corpus.estep(eb, alpha, self.hard, self.max_doc_iter, self.tol, True,
                               self.n_threads)
            stats, tot = res.stats, res.totals
        else:
            stats, tot = TopicModel.local_step(corpus, eb, alpha, self.gamma, self.hard,
                                               self.max_doc_iter, self.tol, True,
                                               self.n_threads,
                                               restart=self.doc_topic_init == "best")
        beta_free = 0.0
        if self.keep_beta_free:
            if elog is None:
                elog = self.family.expected_log(params[0], self.n_threads)
            beta_free = (TopicModel.documents_term(tot, alpha, corpus.n_docs, self.hard)
                         - float(np.sum(stats * elog.T)))
        return TopicStats(stats, tot, corpus.n_docs, corpus.total, beta_free)

    def update(self, stats, iteration=0, params=None):
        """(components, alpha, eta) from the statistics: the family's components, the
        structure's alpha, eta's Newton step when learned (components again with it)."""
        alpha, eta = (self.alpha, self.eta) if params is None else params[1:]
        fam = self.family
        new = fam.components(stats.stats, eta)
        alpha = self.structure.point_estimate(self.structure.block(stats), alpha)
        if self.learn_eta:
            eta = fam.update_eta(new, eta, self.posterior)
            new = fam.components(stats.stats, eta)
        return (new, alpha, eta), []

    def objective(self, stats, params, elog=None):
        """The per-word objective at the parameters the pass used: the documents' term
        plus the topics' (the ELBO for vem and meanfield, the log joint for crisp)."""
        comp, alpha, eta = params
        return (TopicModel.documents_term(stats.totals, alpha, stats.n_docs, self.hard)
                + self.family.topic_term(comp, eta, self.posterior, elog, self.n_threads)
                ) / stats.weight

    def bound(self, stats, params, beta_free=None):
        """The ELBO (total) with the pass's q(z), q(theta) and the updated q(beta):
        the documents' terms without beta (kept by keep_beta_free), <stats, E log beta>
        and -KL of the topics."""
        comp, _, eta = params
        elog = self.family.expected_log(comp, self.n_threads)
        const = stats.beta_free if beta_free is None else beta_free
        return (const + float(np.sum(stats.stats * elog.T))
                + self.family.topic_term(comp, eta, True, n_threads=self.n_threads))

    def memoized_objective(self, total, params, kept, corpus):
        """engine.memoized's objective at the end of a pass: the bound per word, its
        batches' beta-free terms summed as one array (as kept)."""
        const = np.array([0.0 if k is None else k.beta_free for k in kept]).sum()
        return self.bound(total, params, const) / corpus.total

    def step(self, corpus, sample_weight=None):
        """step(params, iteration) -> (per-word objective at params, new params, events)."""
        def _step(params, iteration):
            eff = self.effective(params)
            stats = self.statistics(corpus, sample_weight, params, iteration, eff)
            objective = self.objective(stats, params, eff[1])
            new, events = self.update(stats, iteration, params)
            return objective, new, events
        return _step
