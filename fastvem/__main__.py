"""Command line: ``fastvem`` (or ``python -m fastvem``).

``fastvem fit`` (the default) fits a GaussianMixture to the Old Faithful data
shipped in the package and prints the fitted model.
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


def main(argv=None):
    parser = argparse.ArgumentParser(prog="fastvem", description=__doc__.strip().split("\n")[0])
    sub = parser.add_subparsers(dest="command")
    p = sub.add_parser("fit", help="fit a GaussianMixture to the shipped Old Faithful data")
    for q in (parser, p):
        q.add_argument("--n-components", type=int, default=2)
        q.add_argument("--covariance-type", default="full",
                       choices=["full", "tied", "diag", "spherical"])
        q.add_argument("--method", default="em", choices=["em", "vem", "crisp"])
        q.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    return _fit(args)


if __name__ == "__main__":
    sys.exit(main())
