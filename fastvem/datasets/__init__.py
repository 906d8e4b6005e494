"""Small real data sets shipped with fastvem, and seeded synthetic generators."""
import os

import numpy as np

__all__ = ["load_house_votes", "load_old_faithful", "make_gaussian_mixture",
           "make_lda_corpus"]

_HERE = os.path.dirname(os.path.abspath(__file__))


def load_old_faithful():
    """Old Faithful geyser eruptions (272 x 2): eruption time and waiting time
    in minutes (Haerdle 1991, as in R's `datasets::faithful`).

    Returns (X, feature_names)."""
    path = os.path.join(_HERE, "old_faithful.csv")
    with open(path) as fh:
        names = fh.readline().strip().split(",")
    X = np.loadtxt(path, delimiter=",", skiprows=1)
    return X, names


_VOTE_CODES = {"n": 0, "y": 1, "?": 2}


def load_house_votes():
    """1984 United States Congressional Voting Records (435 x 16): the votes of
    every member of the House of Representatives (98th Congress, 2nd session) on
    16 key votes identified by the Congressional Quarterly Almanac, with each
    member's party (267 democrats, 168 republicans).

    Source: J. Schlimmer (1987), "Congressional Voting Records", UCI Machine
    Learning Repository (house-votes-84.data), https://doi.org/10.24432/C5C01P,
    licensed CC BY 4.0.  The shipped file keeps the raw values and the row order
    of the UCI file, with a header naming the columns.

    Coding: n (voted against, paired against, announced against) = 0,
    y (voted for, paired for, announced for) = 1, ? (voted present, voted present
    to avoid a conflict of interest, or did not vote or otherwise make a position
    known) = 2.  The abstention is kept as a category of its own, as latent class
    analysis commonly treats it, rather than as a missing value; 392 of the
    6,960 votes are '?' (104 of them on the last vote).

    Returns (X, party, feature_names): X an (435, 16) int64 array of codes for
    ``CategoricalMixture``, party a (435,) string array ('democrat' or
    'republican'), feature_names the 16 vote names in column order."""
    path = os.path.join(_HERE, "house_votes_84.csv")
    with open(path) as fh:
        header = fh.readline().strip().split(",")
        rows = [line.strip().split(",") for line in fh if line.strip()]
    party = np.array([r[0] for r in rows])
    X = np.array([[_VOTE_CODES[v] for v in r[1:]] for r in rows], dtype=np.int64)
    return X, party, header[1:]


def make_gaussian_mixture(n_samples, n_features, n_components, covariance_type="full",
                          separation=4.0, random_state=0, dtype=np.float64):
    """Seeded synthetic data from a Gaussian mixture with known parameters.

    Returns (X, labels, truth) where truth has 'weights', 'means', 'covariances'
    in scikit-learn's layout for `covariance_type`."""
    rng = np.random.default_rng(random_state)
    K, D = n_components, n_features
    weights = rng.dirichlet(np.full(K, 5.0))
    means = rng.normal(scale=separation, size=(K, D))
    if covariance_type == "full":
        A = rng.normal(size=(K, D, D)) / np.sqrt(D)
        covs = A @ A.transpose(0, 2, 1) + 0.5 * np.eye(D)
        chol = np.linalg.cholesky(covs)
    elif covariance_type == "tied":
        A = rng.normal(size=(D, D)) / np.sqrt(D)
        covs = A @ A.T + 0.5 * np.eye(D)
        chol = np.broadcast_to(np.linalg.cholesky(covs), (K, D, D))
    elif covariance_type == "diag":
        covs = rng.uniform(0.5, 2.0, size=(K, D))
        chol = np.sqrt(covs)[:, None, :] * np.eye(D)
    elif covariance_type == "spherical":
        covs = rng.uniform(0.5, 2.0, size=K)
        chol = np.sqrt(covs)[:, None, None] * np.eye(D)
    else:
        raise ValueError(f"unknown covariance_type {covariance_type!r}")
    labels = rng.choice(K, size=n_samples, p=weights)
    X = np.empty((n_samples, D), dtype=dtype)
    step = 1 << 18
    for s in range(0, n_samples, step):
        lab = labels[s:s + step]
        z = rng.standard_normal(size=(len(lab), D))
        X[s:s + step] = means[lab] + np.einsum("nij,nj->ni", chol[lab], z)
    return X, labels, {"weights": weights, "means": means, "covariances": covs}


def make_lda_corpus(n_docs, n_words, n_topics, doc_length=100, doc_topic_prior=0.1,
                    topic_word_prior=0.05, random_state=0):
    """Seeded synthetic corpus from the LDA generative process.

    topics beta_k ~ Dirichlet(topic_word_prior), theta_d ~ Dirichlet(doc_topic_prior),
    document lengths ~ Poisson(doc_length), counts ~ Multinomial(n_d, theta_d beta).
    Returns (X, truth): X a scipy.sparse CSR matrix of int64 counts (n_docs x n_words);
    truth has 'topics' (K x V, rows sum to 1), 'doc_topic' (D x K), 'doc_topic_prior'
    and 'topic_word_prior'."""
    import scipy.sparse as sp
    rng = np.random.default_rng(random_state)
    K, V, D = n_topics, n_words, n_docs
    topics = rng.dirichlet(np.full(V, topic_word_prior), size=K)
    theta = rng.dirichlet(np.full(K, doc_topic_prior), size=D)
    lengths = rng.poisson(doc_length, size=D)
    blocks = []
    step = max(1, 2_000_000 // V)
    for s in range(0, D, step):
        p = theta[s:s + step] @ topics
        p /= p.sum(axis=1, keepdims=True)
        blocks.append(sp.csr_matrix(rng.multinomial(lengths[s:s + step], p)))
    X = sp.vstack(blocks, format="csr").astype(np.int64)
    return X, {"topics": topics, "doc_topic": theta, "doc_topic_prior": doc_topic_prior,
               "topic_word_prior": topic_word_prior}
