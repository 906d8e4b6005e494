"""Command line: ``fastvem`` (or ``python -m fastvem``).

``fastvem review`` (the default: ``fastvem --data x.npy`` is a review) fits every
method to one data set and shows, measured, where each lands on speed against
accuracy; ``fastvem fit`` fits one model (a GaussianMixture or an LDA, on your
data or the shipped Old Faithful) and saves it with ``--out``; ``fastvem predict``
and ``fastvem score`` apply a saved model.  Errors are one line on stderr with
exit code 2 (``--debug`` shows the traceback).
"""
import argparse
import os
import sys
import time

import numpy as np


def _read_X(path, model):
    """The data of fit / predict / score: a table for gmm, counts for lda."""
    if model == "lda":
        from .review import _load_corpus
        return _load_corpus(path)[0]
    from .review import _load_data
    X = _load_data(path)[0]
    if not np.all(np.isfinite(X)):
        raise ValueError(f"--data: {path} contains NaN or infinite values")
    return X


def _fit(args):
    from . import GaussianMixture, LatentDirichletAllocation
    if args.data is not None or args.model != "gmm" or args.out is not None:
        if args.data is None and args.model == "gmm":
            from .datasets import load_old_faithful
            X = load_old_faithful()[0]
        else:
            X = _read_X(args.data, args.model)
        k = args.n_components
        if args.model == "lda":
            est = LatentDirichletAllocation(k, method=args.method if args.method != "em"
                                            else "vem", random_state=args.seed)
        else:
            est = GaussianMixture(k, covariance_type=args.covariance_type, method=args.method,
                                  random_state=args.seed)
        t0 = time.perf_counter()
        est.fit(X)
        print(f"{type(est).__name__}(n_components={k}, method='{est.method}') fitted to "
              f"{X.shape[0]} x {X.shape[1]} in {time.perf_counter() - t0:.3f} s, "
              f"{est.n_iter_} iterations")
        if args.out is not None:
            est.save(args.out)
            print(f"saved to {args.out} (fastvem predict / score --model-file {args.out})")
        return 0
    from .datasets import load_old_faithful
    X, names = load_old_faithful()
    print(f"Old Faithful: {X.shape[0]} eruptions x {X.shape[1]} features ({', '.join(names)})")
    t0 = time.perf_counter()
    gm = GaussianMixture(n_components=args.n_components, covariance_type=args.covariance_type,
                         method=args.method, random_state=args.seed, max_iter=500,
                         tol=1e-6).fit(X)
    dt = time.perf_counter() - t0
    print(f"GaussianMixture(n_components={args.n_components}, covariance_type="
          f"'{args.covariance_type}', method='{args.method}'): {gm.n_iter_} iterations, "
          f"converged={gm.converged_}, {dt * 1e3:.1f} ms")
    print(f"objective per sample: {gm.lower_bound_:.6f}   BIC: {gm.bic(X):.2f}")
    np.set_printoptions(precision=4, suppress=True)
    for k in np.argsort(gm.means_[:, 0]):
        print(f"component {k}: weight {gm.weights_[k]:.4f}  mean {gm.means_[k]}")
        cov = gm.covariances_ if args.covariance_type == "tied" else gm.covariances_[k]
        print("  covariance", np.array2string(np.atleast_1d(cov), prefix="  covariance "))
    return 0


def _apply(args):
    """predict / score with a saved model."""
    from .io import load
    est = load(args.model_file)
    kind = "lda" if hasattr(est, "components_") else "gmm"
    X = _read_X(args.data, kind)
    if args.command == "score":
        value = est.perplexity(X) if kind == "lda" else est.score(X)
        print(f"{'perplexity' if kind == 'lda' else 'mean log-likelihood'}: {value:.6f}")
        return 0
    out = est.transform(X) if kind == "lda" else est.predict(X)
    if args.out is not None:
        np.save(args.out, out)
        print(f"wrote {out.shape} to {args.out}")
    else:
        np.savetxt(sys.stdout, np.atleast_2d(out.T).T, fmt="%.6g" if out.dtype.kind == "f"
                   else "%d", delimiter=",")
    return 0


def _labels(path):
    """True labels from a .npy or .csv file (one per row; strings are coded)."""
    if path.endswith(".csv"):
        from .review import _has_header
        values = np.loadtxt(path, delimiter=",", skiprows=_has_header(path), dtype=str,
                            ndmin=1)
        if values.ndim != 1:
            raise ValueError(f"--labels: {path} must hold one label per row, got "
                             f"{values.shape[1]} columns")
        return np.unique(values, return_inverse=True)[1]
    from .review import _read_table
    y = _read_table(path, "--labels")
    if y.ndim != 1:
        raise ValueError(f"--labels: {path} must hold one label per row, got shape {y.shape}")
    return y


def _review(args):
    from .review import review
    if args.model == "lda":
        for flag, value, default in (("--labels", args.labels, None),
                                     ("--covariance-type", args.covariance_type, "full")):
            if value != default:
                raise ValueError(f"{flag} is for --model gmm; a topic model has no "
                                 f"{'labels to score' if flag == '--labels' else 'covariances'}")
    if args.model != "mixture" and args.family != "gaussian_diag":
        raise ValueError(f"--family is for --model mixture; --model {args.model} names its "
                         "own family")
    if args.model not in ("gmm", "hmm", "lda") and args.covariance_type != "full":
        raise ValueError(f"--covariance-type is for --model gmm or hmm; --model {args.model} "
                         "has no covariance types (--model mixture takes them as --family "
                         "gaussian_tied, say)")
    labels = _labels(args.labels) if args.labels else None
    methods = args.methods
    if methods is None:
        methods = (["gibbs", "meanfield", "vem", "crisp"] if args.model == "lda"
                   else ["gibbs", "meanfield", "em", "vem", "crisp"])
    review(args.data, labels, model=args.model, methods=methods, n_components=args.n_components,
           covariance_type=args.covariance_type, seeds=args.seeds, test_size=args.test_size,
           out=args.out, progress=not args.no_progress, family=args.family)
    print(f"wrote review.txt, review.csv, review.json and review.png to {args.out}/")
    return 0


def _int_list(text):
    """argparse type: comma-separated integers (an argparse error otherwise)."""
    try:
        values = [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {text!r}")
    if not values:
        raise argparse.ArgumentTypeError("expected at least one integer")
    return values


def _name_list(text):
    return [v.strip() for v in text.split(",") if v.strip()]


_COMMANDS = ("fit", "review", "predict", "score")


class _Parser(argparse.ArgumentParser):
    """argparse with one-line errors: the problem and where to look, exit code 2."""

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def _parser():
    parser = _Parser(
        prog="fastvem",
        description="fastvem: latent-variable models by every method, from accurate and slow "
                    "(gibbs) to inaccurate and fast (crisp). Without a command, runs the "
                    "methods review (fastvem review --help).")
    parser.add_argument("--debug", action="store_true",
                        help="show the full traceback of an error")
    sub = parser.add_subparsers(dest="command", metavar="{fit,review,predict,score}",
                                parser_class=_Parser)
    p = sub.add_parser("fit", help="fit one model (default: a GaussianMixture to the shipped "
                                   "Old Faithful data) and optionally save it",
                       description="Fit one model. Without --data, --model or --out: a "
                                   "GaussianMixture on the Old Faithful eruptions shipped in "
                                   "the package, parameters printed.")
    p.add_argument("--data", default=None, help=".npy or .csv table (gmm), or a scipy.sparse "
                   ".npz / .npy of counts (lda)")
    p.add_argument("--model", default="gmm", choices=["gmm", "lda"],
                   help="gmm: GaussianMixture; lda: LatentDirichletAllocation (gmm)")
    p.add_argument("--out", default=None, help="save the fitted model to this .npz file")
    p.add_argument("-k", "--n-components", type=int, default=2,
                   help="number of components or topics (2)")
    p.add_argument("--covariance-type", default="full",
                   choices=["full", "tied", "diag", "spherical"],
                   help="covariance type (full)")
    p.add_argument("--method", default="em",
                   choices=["gibbs", "meanfield", "em", "vem", "crisp"],
                   help="inference method (em)")
    p.add_argument("--seed", type=int, default=0, help="random seed (0)")
    for name, what in (("predict", "labels (gmm) or topic proportions (lda) of --data"),
                       ("score", "mean log-likelihood (gmm) or perplexity (lda) of --data")):
        q = sub.add_parser(name, help=f"{what}, with a saved model",
                           description=f"Print the {what} under a model saved by "
                                       "fastvem fit --out.")
        q.add_argument("--model-file", required=True, help="a model saved by fastvem fit --out")
        q.add_argument("--data", required=True, help=".npy or .csv table, or counts (lda)")
        if name == "predict":
            q.add_argument("--out", default=None, help="write the result to this .npy file "
                           "(default: CSV on standard output)")
    r = sub.add_parser("review", help="every method on one data set: speed against accuracy",
                       description="Fit every method on a train split over several seeds, "
                                   "score held-out rows, and write a table, CSV, JSON and a "
                                   "plot of accuracy against time.")
    r.add_argument("--model", default="gmm",
                   choices=["gmm", "lda", "bernoulli", "categorical", "poisson", "multinomial",
                            "mixture", "hmm"],
                   help="gmm: Gaussian mixture; lda: topic model (Reuters via the lda package); "
                        "bernoulli (default data: binarised digits), categorical, poisson "
                        "(--data needed), multinomial (default: Reuters): discrete mixtures; "
                        "mixture: the generic fastvem.Mixture over --family (its named "
                        "model's data); "
                        "hmm: Gaussian hidden Markov model on one series in recorded order "
                        "(default: Old Faithful's eruptions), cut into 8 sequences, whole "
                        "sequences held out")
    r.add_argument("--data", default=None, help=".npy or .csv file, with or without a header "
                   "row (default: Old Faithful); for lda a scipy.sparse .npz or .npy of counts "
                   "(default: Reuters)")
    r.add_argument("--labels", default=None,
                   help=".npy or .csv file of true labels, one per row (adds the ARI; gmm)")
    r.add_argument("--methods", type=_name_list, default=None,
                   help="comma-separated methods (default: all the model supports: "
                        "gibbs,meanfield,em,vem,crisp; lda has no em)")
    r.add_argument("-k", "--n-components", type=int, default=None,
                   help="components (default: 8 for gmm, more than Old Faithful's two "
                        "clusters support; 10 topics for lda; 10 for bernoulli, 5 for "
                        "multinomial, 3 for categorical and poisson; 3 states for hmm)")
    r.add_argument("--family", default="gaussian_diag",
                   choices=["gaussian", "gaussian_diag", "gaussian_tied", "gaussian_spherical",
                            "bernoulli", "categorical", "poisson", "multinomial"],
                   help="the family of --model mixture (gaussian_diag)")
    r.add_argument("--covariance-type", default="full",
                   choices=["full", "tied", "diag", "spherical"],
                   help="covariance type of the Gaussian mixture or HMM (full)")
    r.add_argument("--seeds", type=_int_list, default=[0, 1, 2, 3, 4],
                   help="comma-separated seeds, one train / test split each (0,1,2,3,4)")
    r.add_argument("--test-size", type=float, default=0.5,
                   help="fraction of rows (documents; sequences for hmm) held out in each "
                        "split (0.5)")
    r.add_argument("--out", default="fastvem_review_out",
                   help="folder for review.txt / .csv / .json / .png (fastvem_review_out)")
    r.add_argument("--no-progress", action="store_true", help="no progress bar")
    return parser


def main(argv=None):
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in argv
    argv = [a for a in argv if a != "--debug"]
    # no command, or options only: the review (the main job)
    if not argv or (argv[0] not in _COMMANDS and argv[0] not in ("-h", "--help")):
        argv = ["review"] + argv
    parser = _parser()
    args = parser.parse_args(argv)
    try:
        if args.command in ("predict", "score"):
            return _apply(args)
        return _fit(args) if args.command == "fit" else _review(args)
    except BrokenPipeError:               # output piped into head, say: not an error
        try:
            sys.stdout = open(os.devnull, "w")
        except OSError:
            pass
        return 0
    except Exception as exc:              # one line, exit code 2, unless --debug
        if debug:
            raise
        msg = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        print(f"fastvem {args.command}: error: {msg} (--debug for the traceback)",
              file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
