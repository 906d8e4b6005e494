"""The command line: one-line errors (exit code 2, the argument named, no
traceback unless --debug), the review as the default command, CSV headers,
1-D data, labels from CSV."""
import subprocess
import sys

import numpy as np
import pytest
from sklearn.datasets import load_iris

from fastvem.__main__ import main


def _run(args, tmp_path):
    """The CLI in a child process: (exit code, stdout, stderr).  iris.npy is there."""
    np.save(tmp_path / "iris.npy", load_iris().data)
    proc = subprocess.run([sys.executable, "-m", "fastvem", *args], capture_output=True,
                          text=True, cwd=tmp_path, timeout=300)
    return proc.returncode, proc.stdout, proc.stderr


def _one_line_error(code, err, *words):
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert code == 2, err
    assert len(lines) == 1 and "Traceback" not in err, err
    for w in words:
        assert w in lines[-1], (w, lines[-1])


@pytest.mark.parametrize("args, words", [
    (["review", "--data", "missing.npy"], ["no such file", "missing.npy"]),
    (["review", "--seeds", "a,b", "--no-progress"], ["--seeds", "integers"]),
    (["review", "--model", "lda", "--labels", "y.npy"], ["--labels", "--model gmm"]),
    (["review", "--model", "lda", "--covariance-type", "diag"], ["--covariance-type"]),
    (["review", "--data", "bad.txt"], [".npy or .csv"]),
    (["review", "--model", "gmm", "--family", "poisson"], ["--family", "--model mixture"]),
    (["review", "--model", "mixture", "--covariance-type", "tied"],
     ["--covariance-type", "--family gaussian_tied"]),
    (["review", "--model", "mixture", "--family", "poisson"], ["--data"]),
    (["review", "--model", "lda", "--data", "iris.npy", "--methods", "vem"],
     ["non-integer counts", "document completion"]),
])
def test_errors_are_one_line_with_exit_code_2(args, words, tmp_path):
    extra = ["--out", "o"] + ([] if "--no-progress" in args else ["--no-progress"])
    code, _, err = _run(args + extra, tmp_path)
    _one_line_error(code, err, *words)


def test_debug_shows_the_traceback(tmp_path):
    code, _, err = _run(["--debug", "review", "--data", "missing.npy", "--no-progress"],
                        tmp_path)
    assert code != 0 and "Traceback" in err


def test_nan_data_is_named(tmp_path):
    X = load_iris().data.copy()
    X[3, 1] = np.nan
    np.save(tmp_path / "x.npy", X)
    code, _, err = _run(["review", "--data", "x.npy", "--no-progress", "--out", "o"], tmp_path)
    _one_line_error(code, err, "NaN")


def test_review_is_the_default_command_and_reads_csv_with_a_header(tmp_path):
    pd = pytest.importorskip("pandas")
    iris = load_iris()
    pd.DataFrame(iris.data, columns=iris.feature_names).to_csv(tmp_path / "x.csv", index=False)
    pd.Series(iris.target_names[iris.target], name="species").to_csv(tmp_path / "y.csv",
                                                                     index=False)
    out = str(tmp_path / "o")
    assert main(["--data", str(tmp_path / "x.csv"), "--labels", str(tmp_path / "y.csv"),
                 "-k", "3", "--methods", "em", "--seeds", "0", "--out", out,
                 "--no-progress"]) == 0
    table = open(f"{out}/review.txt").read()
    assert "(150 x 4)" in table                   # the header row is not data
    ari = float([ln for ln in table.splitlines() if ln.startswith("em ")][0].split()[-1])
    assert ari > 0.5                              # string labels read and coded


def test_one_dimensional_npy_is_one_feature(tmp_path):
    np.save(tmp_path / "x.npy", load_iris().data[:, 2])
    out = str(tmp_path / "o")
    assert main(["review", "--data", str(tmp_path / "x.npy"), "--methods", "em",
                 "--seeds", "0", "--out", out, "--no-progress"]) == 0
    assert "(150 x 1)" in open(f"{out}/review.txt").read()


def test_every_option_has_help():
    from fastvem.__main__ import _parser
    parser = _parser()
    subs = next(a for a in parser._actions if a.__class__.__name__ == "_SubParsersAction")
    for p in [parser, *subs.choices.values()]:
        for action in p._actions:
            if action.option_strings and action.dest != "help":
                assert action.help, (p.prog, action.option_strings)


@pytest.mark.parametrize("model", ["gmm", "lda"])
def test_fit_save_predict_score(model, tmp_path):
    import scipy.sparse as sp
    if model == "gmm":
        np.save(tmp_path / "x.npy", load_iris().data)
    else:
        from fastvem.datasets import make_lda_corpus
        X, _ = make_lda_corpus(200, 50, 3, random_state=0)
        sp.save_npz(tmp_path / "x.npz", X)
    data = str(tmp_path / ("x.npy" if model == "gmm" else "x.npz"))
    m = str(tmp_path / "m.npz")
    assert main(["fit", "--model", model, "--data", data, "-k", "3", "--out", m]) == 0
    import fastvem
    est = fastvem.load(m)
    assert main(["predict", "--model-file", m, "--data", data,
                 "--out", str(tmp_path / "p.npy")]) == 0
    got = np.load(tmp_path / "p.npy")
    if model == "gmm":
        np.testing.assert_array_equal(got, est.predict(load_iris().data))
    else:
        np.testing.assert_allclose(got, est.transform(sp.load_npz(data)))
    code, out, err = _run(["score", "--model-file", m, "--data", data], tmp_path)
    assert code == 0 and ("perplexity" in out if model == "lda" else "log-likelihood" in out)


def test_lda_reads_a_csv_of_counts(tmp_path):
    """The README's `fastvem fit --data x.csv --model lda`: a dense table of counts
    (as .csv and .npy) fits the same model as its scipy.sparse .npz; a file of
    another kind is refused naming data."""
    import scipy.sparse as sp
    from fastvem.datasets import make_lda_corpus
    X, _ = make_lda_corpus(120, 30, 3, random_state=0)
    dense = X.toarray()
    np.savetxt(tmp_path / "x.csv", dense, fmt="%d", delimiter=",")
    np.save(tmp_path / "x.npy", dense)
    sp.save_npz(tmp_path / "x.npz", X)
    import fastvem
    comps = []
    for name in ("x.csv", "x.npy", "x.npz"):
        out = str(tmp_path / f"m_{name}.npz")
        assert main(["fit", "--model", "lda", "--data", str(tmp_path / name), "-k", "3",
                     "--method", "vem", "--out", out]) == 0
        comps.append(fastvem.load(out).components_)
    np.testing.assert_allclose(comps[0], comps[2], rtol=1e-12)
    np.testing.assert_allclose(comps[1], comps[2], rtol=1e-12)
    (tmp_path / "x.txt").write_text("1,2\n")
    code, _, err = _run(["fit", "--model", "lda", "--data", str(tmp_path / "x.txt"), "-k", "2",
                         "--out", str(tmp_path / "m.npz")], tmp_path)
    _one_line_error(code, err, "data")


def test_predict_needs_a_model_file(tmp_path):
    code, _, err = _run(["predict", "--data", "iris.npy"], tmp_path)
    _one_line_error(code, err, "--model-file")


def test_review_mixture_command(tmp_path, capsys):
    """--model mixture reviews the generic fastvem.Mixture over --family, on its named
    model's data (Old Faithful for a Gaussian); the table names the family."""
    out = str(tmp_path / "o")
    assert main(["review", "--model", "mixture", "--family", "gaussian_spherical",
                 "--methods", "em,meanfield", "--seeds", "0", "--out", out,
                 "--no-progress"]) == 0
    text = open(f"{out}/review.txt").read()
    assert "Old Faithful (272 x 2), Mixture('gaussian_spherical') K=3" in text
    rows = [line.split() for line in text.splitlines() if line.startswith(("em ", "meanfield"))]
    assert [r[0] for r in rows] == ["em", "meanfield"]
    assert all(np.isfinite(float(r[4])) and float(r[4]) < 0 for r in rows)   # held-out lpd


def test_review_mixture_categorical_reads_every_category(tmp_path):
    """--family categorical: the family is built with every category of the data, so a
    held-out row never meets an unseen code."""
    codes = np.random.default_rng(0).integers(0, 4, (120, 3))
    np.savetxt(tmp_path / "codes.csv", codes, delimiter=",", fmt="%d")
    out = str(tmp_path / "o")
    assert main(["review", "--model", "mixture", "--family", "categorical", "--data",
                 str(tmp_path / "codes.csv"), "--methods", "em", "--seeds", "0", "--out", out,
                 "--no-progress"]) == 0
    assert "Mixture(" in open(f"{out}/review.txt").read()


def test_review_hmm_command(tmp_path, capsys):
    out = str(tmp_path / "o")
    assert main(["review", "--model", "hmm", "--methods", "em,vem", "--seeds", "0",
                 "--covariance-type", "diag", "--out", out, "--no-progress"]) == 0
    text = capsys.readouterr().out
    assert "GaussianHMM K=3 covariance_type=diag" in text
    assert "(272 x 2, one series cut into 8 sequences" in open(f"{out}/review.txt").read()


def test_review_hmm_errors_are_one_line(tmp_path):
    code, _, err = _run(["review", "--model", "hmm", "--covariance-type", "tied",
                         "--no-progress", "--out", "o"], tmp_path)
    _one_line_error(code, err, "meanfield", "tied")
