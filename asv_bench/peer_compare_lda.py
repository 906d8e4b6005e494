"""LDA side by side with its peers, in one process, on the same corpus.

Corpus: make_lda_corpus(22,000 docs, V=5,000, K=50, ~100 tokens/doc); 20,000 train,
2,000 test (the issue's workload), and the `lda` package's Reuters corpus.
Per-pass cost = (t(3 passes) - t(1 pass)) / 2, which removes set-up and scikit-learn's
final perplexity pass; fastvem and the peer alternate --repeat times (medians).
Accuracy = held-out document-completion perplexity (fastvem.topics) after --passes
passes, every model scored by the same code from its topics and alpha.
Whole fit (--only whole): what a user times -- a fresh estimator fitted for 1 pass and for
--passes passes, every cost included (set-up, initialisation, scikit-learn's final bound,
gensim's model construction; the bag-of-words conversion gensim needs is made once, outside),
alpha=0.1 and eta=0.01 on every side, the three alternating --repeat times (medians).
Gibbs: tokens per second over sweeps 2..N, fastvem and tomotopy alternating --repeat
times (medians), once with alpha fixed and once with alpha learned on both sides.
Threads: fastvem n_threads=2; gensim LdaMulticore workers=2; tomotopy workers=2;
scikit-learn n_jobs=None (one process, as its default); lda: one thread.
Run it with OPENBLAS_NUM_THREADS=1: no peer here gains from BLAS threads at these sizes,
and idle OpenBLAS threads spinning after a call steal the second core from the others.

    OPENBLAS_NUM_THREADS=1 PYTHONPATH=. python asv_bench/peer_compare_lda.py \
        [--only batch,online,gensim,whole,gibbs] [--repeat 3] [--dtype float32] [--small]
"""
import argparse
import time

import numpy as np
import scipy.sparse as sp

import fastvem
from fastvem.datasets import make_lda_corpus
from fastvem.topics import document_completion_perplexity as dcp


def timed(fn):
    t = time.perf_counter()
    out = fn()
    return time.perf_counter() - t, out


def one_pass(make_fit):
    """(t(3 passes) - t(1 pass)) / 2."""
    t1, _ = timed(lambda: make_fit(1))
    t3, _ = timed(lambda: make_fit(3))
    return (t3 - t1) / 2


def side_by_side(make_fv, make_peer, repeat):
    """Per-pass times of fastvem and the peer, alternating repeat times (a busy
    episode on the host then hits both sides); medians, and every run printed."""
    fv, peer = [], []
    for _ in range(repeat):
        fv.append(one_pass(make_fv))
        peer.append(one_pass(make_peer))
    print("  s/pass run by run: fastvem", " ".join(f"{v:.3f}" for v in fv),
          "| peer", " ".join(f"{v:.3f}" for v in peer), flush=True)
    return float(np.median(fv)), float(np.median(peer))


def to_bow(X):
    X = sp.csr_matrix(X)
    return [list(zip(X.indices[X.indptr[d]:X.indptr[d + 1]].tolist(),
                     X.data[X.indptr[d]:X.indptr[d + 1]].tolist())) for d in range(X.shape[0])]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--only", default="")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--passes", type=int, default=10)
    ap.add_argument("--small", action="store_true", help="a 5x smaller corpus (smoke run)")
    ap.add_argument("--dtype", default="float64", choices=["float64", "float32"],
                    help="dtype of the corpus given to fastvem and scikit-learn alike")
    args = ap.parse_args()
    only = set(filter(None, args.only.split(",")))
    D = 4000 if args.small else 20000
    X, truth = make_lda_corpus(D + D // 10, 5000, 50, doc_length=100, random_state=0)
    X = X.astype(args.dtype)
    Xtr, Xte = X[:D], X[D:]
    K = 50
    ntok = int(Xtr.sum())
    print(f"corpus ({args.dtype}): {Xtr.shape[0]} docs, V={Xtr.shape[1]}, {ntok} tokens, K={K}; "
          f"true-model perplexity {dcp((truth['topics'], truth['doc_topic_prior']), Xte):.1f}")
    rows = []

    def report(name, t_fv, t_peer, p_fv, p_peer, unit="s/pass"):
        ratio = t_peer / t_fv
        rows.append((name, t_fv, t_peer, ratio, p_fv, p_peer))
        print(f"{name:34s} fastvem {t_fv:8.3f} {unit}  peer {t_peer:8.3f} {unit}  "
              f"speed-up {ratio:6.2f}x  held-out perplexity fastvem {p_fv:8.1f} peer {p_peer:8.1f}",
              flush=True)

    def fv(method, n, **kw):
        return fastvem.LatentDirichletAllocation(K, method=method, max_iter=n, random_state=0,
                                                 n_threads=2, **kw).fit(Xtr)

    if not only or "batch" in only:
        from sklearn.decomposition import LatentDirichletAllocation as Sk
        for method in ("meanfield", "vem"):
            t_fv, t_sk = side_by_side(lambda n: fv(method, n),
                                      lambda n: Sk(K, max_iter=n, learning_method="batch",
                                                   random_state=0).fit(Xtr), args.repeat)
            p_fv = dcp(fv(method, args.passes), Xte)
            p_sk = dcp(Sk(K, max_iter=args.passes, learning_method="batch",
                          random_state=0).fit(Xtr), Xte)
            report(f"{method} vs sklearn batch", t_fv, t_sk, p_fv, p_sk)
    if not only or "online" in only:
        from sklearn.decomposition import LatentDirichletAllocation as Sk
        t_fv, t_sk = side_by_side(lambda n: fv("meanfield", n, learning_method="online"),
                                  lambda n: Sk(K, max_iter=n, learning_method="online",
                                               random_state=0).fit(Xtr), args.repeat)
        p_fv = dcp(fv("meanfield", args.passes, learning_method="online"), Xte)
        p_sk = dcp(Sk(K, max_iter=args.passes, learning_method="online",
                      random_state=0).fit(Xtr), Xte)
        report("online meanfield vs sklearn online", t_fv, t_sk, p_fv, p_sk)
    if not only or "gensim" in only:
        from gensim.models import LdaMulticore
        bow = to_bow(Xtr)

        def gs(n):
            return LdaMulticore(bow, num_topics=K, id2word=None, workers=2, passes=n,
                                chunksize=2000, random_state=0, iterations=100,
                                eval_every=None)
        for method in ("vem", "meanfield"):
            t_fv, t_gs = side_by_side(lambda n: fv(method, n), gs, args.repeat)
            p_fv = dcp(fv(method, args.passes), Xte)
            g = gs(args.passes)
            p_gs = dcp((g.get_topics(), g.alpha), Xte)
            report(f"{method} vs gensim LdaMulticore(2)", t_fv, t_gs, p_fv, p_gs)
    if not only or "whole" in only:
        from sklearn.decomposition import LatentDirichletAllocation as Sk
        from gensim.models import LdaMulticore as Gensim
        bow = to_bow(Xtr)
        a, e = 0.1, 0.01
        makers = {
            "fastvem meanfield": lambda n: fastvem.LatentDirichletAllocation(
                K, method="meanfield", max_iter=n, doc_topic_prior=a, topic_word_prior=e,
                random_state=0, n_threads=2).fit(Xtr),
            "fastvem vem": lambda n: fastvem.LatentDirichletAllocation(
                K, method="vem", max_iter=n, doc_topic_prior=a, topic_word_prior=e,
                random_state=0, n_threads=2).fit(Xtr),
            "sklearn batch": lambda n: Sk(K, max_iter=n, learning_method="batch",
                                          doc_topic_prior=a, topic_word_prior=e,
                                          random_state=0).fit(Xtr),
            "gensim LdaMulticore(2)": lambda n: Gensim(
                bow, num_topics=K, id2word=None, workers=2, passes=n, chunksize=2000,
                alpha=a, eta=e, random_state=0, iterations=100, eval_every=None),
        }
        for n in (1, args.passes):
            times = {name: [] for name in makers}
            fitted = {}
            for _ in range(args.repeat):
                for name, make in makers.items():
                    t, fitted[name] = timed(lambda: make(n))
                    times[name].append(t)
            med = {name: float(np.median(v)) for name, v in times.items()}
            print(f"whole fit, {n} pass(es) from a fresh start, run by run:", flush=True)
            for name, v in times.items():
                print(f"  {name:24s} " + " ".join(f"{t:.2f}" for t in v), flush=True)
            g = fitted["gensim LdaMulticore(2)"]
            perp = {"fastvem meanfield": dcp(fitted["fastvem meanfield"], Xte),
                    "fastvem vem": dcp(fitted["fastvem vem"], Xte),
                    "sklearn batch": dcp(fitted["sklearn batch"], Xte),
                    "gensim LdaMulticore(2)": dcp((g.get_topics(), g.alpha), Xte)}
            for fv_name in ("fastvem meanfield", "fastvem vem"):
                for peer in ("sklearn batch", "gensim LdaMulticore(2)"):
                    report(f"whole {n}p: {fv_name[8:]} vs {peer.split()[0]}", med[fv_name],
                           med[peer], perp[fv_name], perp[peer], unit="s")
    if not only or "gibbs" in only:
        sweeps = 30
        try:
            import tomotopy as tp
        except ImportError:
            tp = None
            print("tomotopy not installed")

        def fv_g(learn):
            m = fv("gibbs", sweeps, learn_doc_topic_prior=learn)
            return ntok / np.median(m.trace_["seconds"][1:]), m

        def tp_g(optim_interval):
            mdl = tp.LDAModel(k=K, alpha=1.0 / K, eta=1.0 / K, seed=0)
            csr = Xtr.tocsr()
            for d in range(csr.shape[0]):
                idx = csr.indices[csr.indptr[d]:csr.indptr[d + 1]]
                cnt = csr.data[csr.indptr[d]:csr.indptr[d + 1]].astype(int)
                mdl.add_doc([str(w) for w in np.repeat(idx, cnt)] or ["0"])
            mdl.optim_interval = optim_interval
            mdl.train(1, workers=2)
            t, _ = timed(lambda: mdl.train(sweeps - 1, workers=2))
            return ntok * (sweeps - 1) / t, mdl

        # Two settings, each the same model on both sides: alpha fixed at 1/K
        # (tomotopy optim_interval=0), and alpha learned (tomotopy's default: an
        # asymmetric alpha every 10 iterations; fastvem: every sweep).  fastvem and
        # tomotopy alternate, --repeat times each; medians of tokens/s.
        settings = [("alpha fixed", False, 0), ("alpha learned", "asymmetric", 10)]
        for label, learn, optim_interval in settings:
            tok_fv, tok_tp = [], []
            for _ in range(args.repeat):
                r, m = fv_g(learn)
                tok_fv.append(r)
                if tp is not None:
                    r, mdl = tp_g(optim_interval)
                    tok_tp.append(r)
            print(f"gibbs ({label}) M tokens/s, run by run: fastvem",
                  " ".join(f"{r / 1e6:.1f}" for r in tok_fv),
                  "| tomotopy", " ".join(f"{r / 1e6:.1f}" for r in tok_tp))
            tok_fv = float(np.median(tok_fv))
            p_fv = dcp(m, Xte)
            if tp is not None:
                tok_tp = float(np.median(tok_tp))
                vocab = [int(w) for w in mdl.used_vocabs]
                tw = np.zeros((K, Xtr.shape[1]))
                for k in range(K):
                    tw[k, vocab] = mdl.get_topic_word_dist(k)[:len(vocab)]
                p_tp = dcp((tw + 1e-12, np.asarray(mdl.alpha, dtype=np.float64)), Xte)
                report(f"gibbs vs tomotopy(2), {label}", 1 / tok_fv * 1e6, 1 / tok_tp * 1e6,
                       p_fv, p_tp, unit="us/tok")
            if not learn:
                tok_fixed, p_fixed = tok_fv, p_fv
        tok_fv, p_fv = tok_fixed, p_fixed
        try:
            import lda as lda_pkg
            import logging
            logging.getLogger("lda").setLevel(logging.WARNING)
            Xi = Xtr.astype(np.int64)
            t1, _ = timed(lambda: lda_pkg.LDA(K, n_iter=2, random_state=0, refresh=10**6).fit(Xi))
            t2, lm = timed(lambda: lda_pkg.LDA(K, n_iter=12, random_state=0,
                                               refresh=10**6).fit(Xi))
            tok_lda = ntok * 10 / (t2 - t1)
            report("gibbs vs lda package", 1 / tok_fv * 1e6, 1 / tok_lda * 1e6, p_fv,
                   dcp((lm.topic_word_, 1.0 / K), Xte), unit="us/tok")
        except ImportError:
            print("lda not installed")
        print(f"fastvem gibbs: {tok_fv / 1e6:.2f} M tokens/s")


if __name__ == "__main__":
    main()
