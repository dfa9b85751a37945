"""DreamRec, iDreamRec and AlphaFuseDreamRec: the DreamRec backbone over three item embeddings."""

from recbole_alphafuse.model.dreamrec_backbone import DreamRecBackbone
from recbole_alphafuse.model.item_embedding import (
    AlphaFuseItemEmbedding,
    IDItemEmbedding,
    WhitenedLanguageItemEmbedding,
)


class DreamRec(DreamRecBackbone):
    r"""DreamRec over plain trainable ID embeddings.

    Reference:
        Zhengyi Yang et al. "Generate What You Prefer: Reshaping Sequential Recommendation via
        Guided Diffusion." in NeurIPS 2023.
    """

    item_embedding_class = IDItemEmbedding


class iDreamRec(DreamRecBackbone):
    r"""DreamRec over frozen whitened language embeddings, no ID part (the AlphaFuse paper's
    language-only diffusion baseline)."""

    item_embedding_class = WhitenedLanguageItemEmbedding


class AlphaFuseDreamRec(DreamRecBackbone):
    r"""AlphaFuse on DreamRec.

    Reference:
        Guoqing Hu et al. "AlphaFuse: Learn ID Embeddings for Sequential Recommendation in Null
        Space of Language Embeddings." in SIGIR 2025.

    AlphaFuse item embeddings in the full language space (``hidden_size: ~``), the ID part in the
    null space defined by ``null_thres``; the diffusion model generates in that space.
    """

    item_embedding_class = AlphaFuseItemEmbedding
