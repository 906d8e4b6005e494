"""The methods review runs end to end and writes its table, files and plot."""
import csv
import json
import os

import numpy as np
import pytest

import fastvem
from fastvem.__main__ import main
from fastvem.datasets import make_gaussian_mixture
from fastvem.methods import METHOD_NAMES


def test_review_command_on_shipped_data(tmp_path, capsys):
    out = str(tmp_path / "rev")
    assert main(["review", "--seeds", "0,1", "--out", out, "--no-progress"]) == 0
    text = capsys.readouterr().out
    for m in METHOD_NAMES:
        assert m in text
    with open(os.path.join(out, "review.csv")) as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == 2 * len(METHOD_NAMES)
    assert all(np.isfinite(float(r["heldout_log_predictive"])) for r in rows)
    meta = json.load(open(os.path.join(out, "review.json")))
    assert meta["shape"] == [272, 2] and len(meta["summary"]) == len(METHOD_NAMES)
    assert meta["n_components"] == 8 and meta["test_size"] == 0.5
    assert "Reading: most accurate on held-out data was" in text
    with open(os.path.join(out, "review.png"), "rb") as fh:
        assert fh.read(8) == b"\x89PNG\r\n\x1a\n"
    import matplotlib.image as mpimg
    img = mpimg.imread(os.path.join(out, "review.png"))
    assert img.ndim == 3 and img.shape[0] > 100 and img.shape[1] > 100


def test_review_with_labels_reports_ari(tmp_path):
    X, y, _ = make_gaussian_mixture(600, 2, 3, "full", separation=6.0, random_state=0)
    rows = fastvem.review(X, y, methods=["em", "crisp"], n_components=3, seeds=[0],
                                 out=str(tmp_path), progress=False, plot=False)
    assert {r["method"] for r in rows} == {"em", "crisp"}
    assert all(r["ari"] > 0.95 for r in rows)


def test_review_from_csv_file(tmp_path):
    X, _, _ = make_gaussian_mixture(200, 2, 2, "diag", random_state=1)
    path = str(tmp_path / "d.csv")
    np.savetxt(path, X, delimiter=",", header="a,b", comments="")
    rows = fastvem.review(path, methods=["em"], seeds=[0], out=str(tmp_path / "o"),
                                 progress=False, plot=False)
    assert len(rows) == 1


@pytest.mark.parametrize("kw, match", [(dict(methods=["newton"]), "methods"),
                                       (dict(seeds=[]), "seeds"),
                                       (dict(test_size=1.5), "test_size"),
                                       (dict(model="hmmm"), "model"),
                                       (dict(data="x.txt"), "data")])
def test_review_bad_arguments(tmp_path, kw, match):
    kw.setdefault("data", None)
    data = kw.pop("data")
    with pytest.raises(ValueError, match=match):
        fastvem.review(data, out=str(tmp_path), progress=False, plot=False, **kw)


def test_review_lda_command_on_a_corpus_file(tmp_path, capsys):
    import scipy.sparse as sp
    from fastvem.datasets import make_lda_corpus
    X, _ = make_lda_corpus(300, 200, 4, doc_length=60, random_state=0)
    path = str(tmp_path / "corpus.npz")
    sp.save_npz(path, X)
    out = str(tmp_path / "rev")
    assert main(["review", "--model", "lda", "--data", path, "-k", "4", "--seeds", "0",
                 "--methods", "vem,crisp,gibbs", "--out", out, "--no-progress"]) == 0
    text = capsys.readouterr().out
    assert "held-out perplexity" in text and "LatentDirichletAllocation K=4" in text
    with open(os.path.join(out, "review.csv")) as fh:
        rows = list(csv.DictReader(fh))
    assert {r["method"] for r in rows} == {"vem", "crisp", "gibbs"}
    perps = [float(r["perplexity"]) for r in rows]
    # better than a uniform model over the 200 words, and finite
    assert all(np.isfinite(p) and 1 < p < 200 for p in perps), perps
    with open(os.path.join(out, "review.png"), "rb") as fh:
        assert fh.read(8) == b"\x89PNG\r\n\x1a\n"


def test_review_lda_default_corpus_and_refusals(tmp_path):
    pytest.importorskip("lda")
    rows = fastvem.review(model="lda", methods=["vem"], n_components=5, seeds=[0],
                          out=str(tmp_path), progress=False, plot=False)
    assert len(rows) == 1 and np.isfinite(rows[0]["perplexity"])
    with pytest.raises(ValueError, match="em is intractable"):
        fastvem.review(model="lda", methods=["em"], out=str(tmp_path), progress=False)


def test_default_review_shows_the_spectrum(tmp_path):
    """The README's first command: on Old Faithful with 8 components (more than its
    two clusters support) the Bayesian methods, which leave the extra components
    empty or average over them, beat em and crisp on the held-out half by more than
    the seed-to-seed standard errors."""
    rows = fastvem.review(out=str(tmp_path), progress=False, plot=False)
    from fastvem.review import _summary
    s = {r["method"]: r for r in _summary(rows, list(METHOD_NAMES))}
    for bayes in ("meanfield", "gibbs"):
        for point in ("em", "crisp"):
            gap = s[bayes]["heldout_log_predictive"] - s[point]["heldout_log_predictive"]
            assert gap > 2 * (s[bayes]["heldout_se"] + s[point]["heldout_se"]), (bayes, point)
    # (which method is fastest is measured, not asserted: timings belong in benchmarks)


def _summary_row(method, lpd, se, seconds, perplexity=None):
    row = {"method": method, "heldout_log_predictive": lpd, "heldout_se": se,
           "seconds": seconds}
    if perplexity is not None:
        row["perplexity"] = perplexity
    return row


def test_reading_names_the_most_accurate_the_ties_and_the_fastest():
    from fastvem.review import reading
    summary = [_summary_row("gibbs", -4.20, 0.02, 0.5), _summary_row("meanfield", -4.22, 0.02, 0.02),
               _summary_row("em", -4.50, 0.05, 0.04), _summary_row("crisp", -4.60, 0.05, 0.004)]
    text = reading(summary, "held-out lpd")
    assert "most accurate on held-out data was gibbs (held-out lpd -4.200)" in text
    assert "tied within the standard errors with meanfield" in text
    assert "em was 0.300 nats per sample lower" in text
    assert "crisp, the least accurate, 0.400 nats per sample lower" in text
    assert "Fastest was crisp (4.0 ms, 125x faster than gibbs), at held-out lpd -4.600" in text
    # the fastest is also the most accurate
    text = reading([_summary_row("em", -1.0, 0.01, 0.01), _summary_row("gibbs", -2.0, 0.01, 1.0)],
                   "held-out lpd")
    assert "most accurate on held-out data was em" in text and "as accurate as the best" in text
    # perplexity: lower is better, gaps in percent
    text = reading([_summary_row("vem", -np.log(40.0), 0.001, 0.05, 40.0),
                    _summary_row("crisp", -np.log(50.0), 0.001, 0.01, 50.0)],
                   "perplexity", perplexity=True)
    assert "was vem (perplexity 40.0)" in text and "crisp was 25.0% higher in perplexity" in text


def _boxes_disjoint(texts, renderer):
    boxes = [t.get_window_extent(renderer) for t in texts if t.get_visible() and t.get_text()]
    for i in range(len(boxes)):
        for j in range(i + 1, len(boxes)):
            assert not boxes[i].overlaps(boxes[j]), (texts[i].get_text(), texts[j].get_text())
    return boxes


@pytest.mark.parametrize("seconds", [(0.004, 0.006, 0.009, 0.012, 0.3),      # iris-like
                                     (0.021, 0.025, 0.03, 0.033, 0.045),    # < 1 decade
                                     (1e-3, 1e-2, 0.1, 1.0, 30.0)])
def test_review_plot_has_no_overlapping_labels(seconds):
    """Method names sit in a legend beside the axes, x tick labels do not collide
    (iris once showed overlapping minor labels), and the title fits in the figure."""
    from fastvem.review import _figure
    methods = list(METHOD_NAMES)
    summary = [_summary_row(m, -4.26 + 0.001 * i, 0.04, t) for i, (m, t) in
               enumerate(zip(methods, seconds))]
    rows = [{"method": m, "seconds": t * (1 + 0.1 * k), "heldout_log_predictive": -4.26}
            for m, t in zip(methods, seconds) for k in range(3)]
    title = "a_rather_long_file_name_of_someones_data.csv, LDA K=10"
    fig = _figure(summary, rows, title, "-log perplexity per held-out token")
    fig.canvas.draw()
    r = fig.canvas.get_renderer()
    ax = fig.axes[0]
    legend = ax.get_legend()
    assert [t.get_text() for t in legend.get_texts()] == methods
    _boxes_disjoint(legend.get_texts(), r)
    assert not legend.get_window_extent(r).overlaps(ax.get_window_extent(r))
    ticks = [t for t in ax.get_xticklabels() if ax.get_xlim()[0] <= t.get_position()[0]
             <= ax.get_xlim()[1]]
    assert len(_boxes_disjoint(ticks, r)) >= 2
    fb = fig.bbox
    tb = ax.title.get_window_extent(r)
    assert fb.x0 <= tb.x0 and tb.x1 <= fb.x1 and ax.title.get_text() == title
    assert "perplexity" in ax.get_ylabel()
    import matplotlib.pyplot as plt
    plt.close(fig)


def test_review_of_the_discrete_mixtures(tmp_path, capsys):
    """Every discrete mixture has a review: bernoulli on the binarised digits by
    default (with their labels: the ARI), categorical and poisson on given data,
    multinomial on a corpus file; a model without shipped data asks for it."""
    rows = fastvem.review(model="bernoulli", methods=["em", "crisp"], seeds=[0],
                          out=str(tmp_path / "b"), progress=False, plot=False)
    assert {r["method"] for r in rows} == {"em", "crisp"}
    assert all(r["ari"] > 0.3 and np.isfinite(r["heldout_log_predictive"]) for r in rows)
    assert "BernoulliMixture K=10" in open(tmp_path / "b" / "review.txt").read()
    rng = np.random.default_rng(0)
    codes = rng.integers(0, [3, 4, 2], (200, 3))
    codes[0] = [2, 3, 1]
    rows = fastvem.review(codes, model="categorical", seeds=[0, 1], out=str(tmp_path / "c"),
                          progress=False, plot=False)
    assert len(rows) == 2 * len(METHOD_NAMES)
    rows = fastvem.review(rng.poisson(3.0, (200, 4)).astype(float), model="poisson",
                          methods=["meanfield", "gibbs"], seeds=[0], out=str(tmp_path / "p"),
                          progress=False, plot=True)
    assert os.path.exists(tmp_path / "p" / "review.png")
    with pytest.raises(ValueError, match="no shipped data"):
        fastvem.review(model="poisson", out=str(tmp_path), progress=False)
    import scipy.sparse as sp
    from fastvem.datasets import make_lda_corpus
    C, _ = make_lda_corpus(200, 100, 3, doc_length=40, random_state=0)
    sp.save_npz(tmp_path / "c.npz", C)
    assert main(["review", "--model", "multinomial", "--data", str(tmp_path / "c.npz"), "-k",
                 "3", "--seeds", "0", "--methods", "em,gibbs", "--out", str(tmp_path / "m"),
                 "--no-progress"]) == 0
    assert "MultinomialMixture K=3" in capsys.readouterr().out
    assert main(["review", "--model", "poisson", "--covariance-type", "diag",
                 "--no-progress"]) == 2
    assert "--covariance-type is for --model gmm" in capsys.readouterr().err


def test_review_of_the_hmm_on_old_faithful(tmp_path, capsys):
    """GaussianHMM by every method on Old Faithful's eruptions in recorded order, cut
    into 8 sequences, half of them held out whole: a finite held-out lpd per row for
    every method, vem's ELBO gap >= 0 (and only for vem), and the files written."""
    from fastvem.review import HMM_SEQUENCES
    out = tmp_path / "h"
    rows = fastvem.review(model="hmm", seeds=[0, 1], out=str(out), progress=False, plot=True)
    text = capsys.readouterr().out
    assert "GaussianHMM K=3 covariance_type=full" in text and "ELBO gap" in text
    assert "Reading: most accurate on held-out data was" in text
    assert len(rows) == 2 * len(METHOD_NAMES)
    assert {r["method"] for r in rows} == set(METHOD_NAMES)
    for r in rows:
        assert np.isfinite(r["heldout_log_predictive"]) and np.isfinite(r["train_objective"])
        # Old Faithful: about -4 nats per eruption; nothing absurd
        assert -6.0 < r["heldout_log_predictive"] < -3.0, r
        if r["method"] == "vem":
            assert r["elbo_gap"] >= -1e-9
        else:
            assert r["elbo_gap"] is None
    meta = json.load(open(out / "review.json"))
    assert meta["model"] == "hmm" and meta["n_sequences"] == HMM_SEQUENCES
    assert meta["shape"] == [272, 2] and len(meta["summary"]) == len(METHOD_NAMES)
    with open(out / "review.csv") as fh:
        assert len(list(csv.DictReader(fh))) == 2 * len(METHOD_NAMES)
    with open(out / "review.png", "rb") as fh:
        assert fh.read(8) == b"\x89PNG\r\n\x1a\n"


def test_review_hmm_scores_whole_held_out_sequences(tmp_path):
    """The held-out score is log p of the held-out sequences, whole, per row: the
    review's number equals the estimator's score on the sequences the seed held out
    (em; gibbs: the log mean over the draws, each sequence)."""
    from scipy.special import logsumexp
    from fastvem.review import HMM_SEQUENCES, _hmm_estimator, _split
    X = fastvem.datasets.load_old_faithful()[0]
    rows = fastvem.review(model="hmm", methods=["em", "gibbs"], seeds=[3], n_components=2,
                          out=str(tmp_path), progress=False, plot=False)
    pieces = np.array_split(np.arange(X.shape[0]), HMM_SEQUENCES)
    test, train = (np.sort(i) for i in _split(3, HMM_SEQUENCES, 0.5))
    tr = np.concatenate([pieces[i] for i in train])
    te = np.concatenate([pieces[i] for i in test])
    lens = [len(pieces[i]) for i in test]
    em = _hmm_estimator("em", 2, "full", 3, 300, 1e-6).fit(X[tr], [len(pieces[i]) for i in train])
    assert np.isclose(rows[0]["heldout_log_predictive"], em.score(X[te], lens) / len(te),
                      rtol=1e-10)
    gb = _hmm_estimator("gibbs", 2, "full", 3, 300, 1e-6).fit(X[tr],
                                                             [len(pieces[i]) for i in train])
    ll = gb._draws_log_evidence(X[te], lens)
    assert ll.shape == (gb.posterior_samples_["startprob"].shape[0], len(lens))
    want = np.sum(logsumexp(ll, axis=0) - np.log(ll.shape[0])) / len(te)
    assert np.isclose(rows[1]["heldout_log_predictive"], want, rtol=1e-10)
    # a draw's log evidence is the model's score with its attributes set to that draw
    one = _hmm_estimator("em", 2, "full", 3, 300, 1e-6)
    one.startprob_ = gb.posterior_samples_["startprob"][0]
    one.transmat_ = gb.posterior_samples_["transmat"][0]
    gb._set_theta(gb._sample_family, gb.posterior_samples_["theta"][0])
    one.means_, one.covars_ = gb.means_, gb._covars_
    assert np.isclose(one.score(X[te], lens), ll[0].sum(), rtol=1e-10)


def test_review_hmm_refusals(tmp_path):
    with pytest.raises(ValueError, match="meanfield"):
        fastvem.review(model="hmm", covariance_type="tied", out=str(tmp_path), progress=False)
    rows = fastvem.review(model="hmm", covariance_type="tied", methods=["em", "vem", "crisp"],
                          seeds=[0], out=str(tmp_path), progress=False, plot=False)
    assert len(rows) == 3
    with pytest.raises(ValueError, match="at least 16 rows"):
        fastvem.review(np.zeros((10, 2)), model="hmm", out=str(tmp_path), progress=False)
