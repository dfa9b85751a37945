"""Training objectives of the diffusion backbones: what the denoiser's x0 prediction is scored by.

- ``mse``: DreamRec's mean squared error against the target item's embedding.
- ``preference``: PreferDiff's (Liu et al., "Preference Diffusion for Recommendation", ICLR
  2025) cosine error against the target, plus a preference term that asks the denoiser to
  reconstruct the target better than a negative: the centroid of the batch's other targets,
  noised independently at the same timestep.

Either can add ``x0_ce_weight`` times a ranking term on the prediction (as DiffuRec scores its
x0 against all items): softmax cross-entropy over every item of the cosine similarity between
the predicted x0 and each item, divided by ``x0_ce_temperature``. It is the SASRec models' CE
(:class:`~recbole_alphafuse.model.loss.ItemSoftmax`), so it is chunked by ``ce_chunk_size`` and
sampled by ``x0_ce_negatives`` the same way.
"""

import torch.nn.functional as F

DIFFUSION_LOSSES = ("mse", "preference")


def cosine_error(predicted, target):
    r"""Mean over rows of :math:`(\cos(\hat x_0, x_0) - 1)^2`: blind to the scale of either side,
    so shrinking a trainable table cannot lower it."""
    return (F.cosine_similarity(predicted, target, dim=-1) - 1.0).pow(2).mean()


def centroid_negatives(targets):
    """Row i: the mean of every other row (the in-batch negative of PreferDiff). Needs 2 rows."""
    return (targets.sum(dim=0, keepdim=True) - targets) / (len(targets) - 1)


def preference_loss(positive_error, negative_error, gamma, preference_lambda):
    r""":math:`-(1 - \lambda) \log \sigma(-\gamma (L_{pos} - L_{neg})) + \lambda L_{pos}`.

    As in PreferDiff's code, both errors are batch means: the sigmoid compares the batch's
    reconstruction of its targets with its reconstruction of their negatives, one scalar.
    """
    margin = -gamma * (positive_error - negative_error)
    return -(1.0 - preference_lambda) * F.logsigmoid(margin) + preference_lambda * positive_error
