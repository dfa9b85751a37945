"""PreferDiff as a backbone, and its registered models ``<Strategy>PreferDiff``."""

from recbole_alphafuse.model.dreamrec_backbone import DreamRecBackbone
from recbole_alphafuse.model.item_embedding import (
    AlphaFuseItemEmbedding,
    IDItemEmbedding,
    WhitenedItemEmbedding,
)


class PreferDiffBackbone(DreamRecBackbone):
    r"""PreferDiff (Liu et al., "Preference Diffusion for Recommendation", ICLR 2025).

    DreamRec's guided denoiser, history encoder and DDIM sampler, trained with PreferDiff's
    objective (``diffusion_loss: preference``): the cosine error of the x0 prediction, which no
    rescaling of the item table can lower, and a preference term that asks the denoiser to
    reconstruct the target better than the centroid of the batch's other targets. Its defaults
    are in ``properties/backbone/PreferDiffBackbone.yaml``.
    """


class IDPreferDiff(PreferDiffBackbone):
    r"""PreferDiff over plain trainable ID embeddings (its ID-only setting)."""

    item_embedding_class = IDItemEmbedding


class WhitenedPreferDiff(PreferDiffBackbone):
    r"""PreferDiff over frozen whitened language embeddings, no ID part (its text setting)."""

    item_embedding_class = WhitenedItemEmbedding


class AlphaFusePreferDiff(PreferDiffBackbone):
    r"""AlphaFuse on PreferDiff.

    Reference:
        Guoqing Hu et al. "AlphaFuse: Learn ID Embeddings for Sequential Recommendation in Null
        Space of Language Embeddings." in SIGIR 2025.

    AlphaFuse item embeddings in the full language space (``hidden_size: ~``), the ID part in the
    null space defined by ``null_thres``; PreferDiff generates in that space.
    """

    item_embedding_class = AlphaFuseItemEmbedding
