"""The latent-structure protocol (docs/architecture.md: the second axis).

A structure knows how the latent variables T of the rows (or documents, or
sequences) are laid out and which global parameters they carry; nothing about
the observation family or the method.  The engine reads it by these fields:

    kernel side   local_step_kind: the name of the compiled local step that turns the
                  rows' log-evidence into q(T) (softmax, argmax or a draw):
                  'mixture' (one of K per row, `_ext/_common.pxd: local_step_t`,
                  run by the shared row driver `_ext/_driver.pxd`), 'document'
                  (the topic model's per-document fixed point, `_ext/_lda.pyx`);
                  an HMM's forward-backward will be 'chain'
    statistics    its block of the additive statistics: the mixture's counts nk (K);
                  a chain adds transition counts, a topic model the documents'
                  topic sums
    parameters    point_estimate(block) (ML / MAP), empty_components(block, total)
                  (what the family re-seeds), prior(...) -> the law of its
                  parameters under mean field and gibbs, with
                  posterior(block) -> q, expected_log(q) (what the kernel adds to
                  every row's log-evidence), kl(q) (its part of the ELBO),
                  sample(q, rng) (gibbs) and mean(q) (the fitted attribute)

The mixture's law is a Dirichlet or a truncated Dirichlet process over the
weights (`DirichletWeights`); the topic model owns alpha and its updates.
"""

__all__ = ["Structure"]


class Structure:
    """Base class of the latent structures; see the module docstring."""

    name = "structure"
    local_step_kind = None

    def __init__(self, n_components):
        self.n_components = int(n_components)

    def statistics_size(self):
        """The length of the structure's block of statistics."""
        raise NotImplementedError

    def point_estimate(self, block):
        raise NotImplementedError

    @staticmethod
    def empty_components(block, total_weight, rel=1e-10):
        raise NotImplementedError

    def prior(self, *args, **kwargs):
        raise NotImplementedError
