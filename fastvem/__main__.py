"""Command line: ``fastvem`` (or ``python -m fastvem``).

``fastvem review`` (the default) fits every method to one data set and shows,
measured, where each lands on speed against accuracy; ``fastvem fit`` fits one
GaussianMixture to the Old Faithful data shipped in the package.
"""
import argparse
import sys
import time

import numpy as np


def _fit(args):
    from . import GaussianMixture
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


def _review(args):
    from .review import review
    methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    seeds = [int(s) for s in args.seeds.split(",") if s.strip()]
    labels = np.load(args.labels, allow_pickle=False) if args.labels else None
    k = args.n_components if args.n_components is not None else (10 if args.model == "lda" else 2)
    if args.model == "lda" and args.methods == "gibbs,meanfield,em,vem,crisp":
        methods = ["gibbs", "meanfield", "vem", "crisp"]
    review(args.data, labels, model=args.model, methods=methods, n_components=k,
           covariance_type=args.covariance_type, seeds=seeds, out=args.out,
           progress=not args.no_progress)
    print(f"wrote review.txt, review.csv, review.json and review.png to {args.out}/")
    return 0


def main(argv=None):
    parser = argparse.ArgumentParser(prog="fastvem", description=__doc__.strip().split("\n")[0])
    sub = parser.add_subparsers(dest="command")
    p = sub.add_parser("fit", help="fit a GaussianMixture to the shipped Old Faithful data")
    p.add_argument("--n-components", type=int, default=2)
    p.add_argument("--covariance-type", default="full",
                   choices=["full", "tied", "diag", "spherical"])
    p.add_argument("--method", default="em",
                   choices=["gibbs", "meanfield", "em", "vem", "crisp"])
    p.add_argument("--seed", type=int, default=0)
    r = sub.add_parser("review", help="every method on one data set: speed against accuracy")
    r.add_argument("--model", default="gmm", choices=["gmm", "lda"],
                   help="gmm: Gaussian mixture; lda: topic model (Reuters via the lda package)")
    r.add_argument("--data", default=None, help=".npy or .csv file (default: Old Faithful); "
                   "for lda a scipy.sparse .npz or .npy of counts (default: Reuters)")
    r.add_argument("--labels", default=None, help=".npy file of true labels (for the ARI)")
    r.add_argument("--methods", default="gibbs,meanfield,em,vem,crisp")
    r.add_argument("-k", "--n-components", type=int, default=None,
                   help="components (default: 2 for gmm, 10 topics for lda)")
    r.add_argument("--covariance-type", default="full",
                   choices=["full", "tied", "diag", "spherical"])
    r.add_argument("--seeds", default="0,1,2,3,4")
    r.add_argument("--out", default="fastvem_review_out")
    r.add_argument("--no-progress", action="store_true")
    args = parser.parse_args(argv)
    if args.command == "fit":
        return _fit(args)
    if args.command is None:
        args = parser.parse_args(["review"] + list(argv or []))
    return _review(args)


if __name__ == "__main__":
    sys.exit(main())
