"""asv: LatentDirichletAllocation per method, with scikit-learn's LDA beside it.

time_fit / peakmem_fit: a fit of N_PASSES passes on a synthetic corpus
(4,000 docs, V=2,000, K=20, ~100 tokens/doc); track_perplexity: held-out
document-completion perplexity of that fit (lower is better)."""
import numpy as np

import fastvem
from fastvem.datasets import make_lda_corpus
from fastvem.topics import document_completion_perplexity

N_PASSES = 5
K = 20


def _corpus():
    X, _ = make_lda_corpus(4400, 2000, K, doc_length=100, random_state=0)
    X = X.astype(np.float64)
    return X[:4000], X[4000:]


class _LDABase:
    timeout = 600

    def setup(self, *args):
        self.Xtr, self.Xte = _corpus()

    def make(self, *args):
        raise NotImplementedError

    def time_fit(self, *args):
        self.make(*args).fit(self.Xtr)

    def peakmem_fit(self, *args):
        self.make(*args).fit(self.Xtr)

    def track_perplexity(self, *args):
        return document_completion_perplexity(self.make(*args).fit(self.Xtr), self.Xte)

    track_perplexity.unit = "perplexity"


class FastvemLDA(_LDABase):
    params = [["vem", "meanfield", "meanfield-online", "crisp", "gibbs", "gibbs-alpha"]]
    param_names = ["method"]

    def make(self, method):
        kw = {}
        if method == "meanfield-online":
            method, kw = "meanfield", {"learning_method": "online"}
        elif method == "gibbs-alpha":     # Gibbs learning an asymmetric alpha every sweep
            method, kw = "gibbs", {"learn_doc_topic_prior": "asymmetric"}
        n = 4 * N_PASSES if method == "gibbs" else N_PASSES
        return fastvem.LatentDirichletAllocation(K, method=method, max_iter=n, random_state=0,
                                                 **kw)


class SklearnLDA(_LDABase):
    params = [["batch", "online"]]
    param_names = ["learning_method"]

    def make(self, learning_method):
        from sklearn.decomposition import LatentDirichletAllocation
        return LatentDirichletAllocation(K, learning_method=learning_method,
                                         max_iter=N_PASSES, random_state=0)
