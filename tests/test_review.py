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
                                       (dict(model="hmm"), "model"),
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
