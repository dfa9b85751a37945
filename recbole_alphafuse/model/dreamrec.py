"""The registered models on the DreamRec backbone: ``<Strategy>DreamRec``, one per item embedding."""

from recbole_alphafuse.model.dreamrec_backbone import DreamRecBackbone
from recbole_alphafuse.model.item_embedding import (
    AlphaFuseItemEmbedding,
    IDItemEmbedding,
    LLMESRItemEmbedding,
    LLMInitItemEmbedding,
    MoRecItemEmbedding,
    RLMRecItemEmbedding,
    UniSRecItemEmbedding,
    WhitenedItemEmbedding,
    WhitenRecItemEmbedding,
)
from recbole_alphafuse.model.llm_esr_encoder import LLMESREncoderMixin


class IDDreamRec(DreamRecBackbone):
    r"""DreamRec over plain trainable ID embeddings.

    Reference:
        Zhengyi Yang et al. "Generate What You Prefer: Reshaping Sequential Recommendation via
        Guided Diffusion." in NeurIPS 2023.
    """

    item_embedding_class = IDItemEmbedding


class WhitenedDreamRec(DreamRecBackbone):
    r"""DreamRec over frozen whitened language embeddings, no ID part (the AlphaFuse paper's
    language-only diffusion baseline)."""

    item_embedding_class = WhitenedItemEmbedding


class AlphaFuseDreamRec(DreamRecBackbone):
    r"""AlphaFuse on DreamRec.

    Reference:
        Guoqing Hu et al. "AlphaFuse: Learn ID Embeddings for Sequential Recommendation in Null
        Space of Language Embeddings." in SIGIR 2025.

    AlphaFuse item embeddings in the full language space (``hidden_size: ~``), the ID part in the
    null space defined by ``null_thres``; the diffusion model generates in that space.
    """

    item_embedding_class = AlphaFuseItemEmbedding


class MoRecDreamRec(DreamRecBackbone):
    r"""MoRec's item embeddings (language -> Linear + GELU) on DreamRec."""

    item_embedding_class = MoRecItemEmbedding


class WhitenRecDreamRec(DreamRecBackbone):
    r"""WhitenRec's item embeddings (whitened language -> Linear + GELU) on DreamRec."""

    item_embedding_class = WhitenRecItemEmbedding


class UniSRecDreamRec(DreamRecBackbone):
    r"""UniSRec's mixture-of-experts item embeddings on DreamRec."""

    item_embedding_class = UniSRecItemEmbedding


class LLMInitDreamRec(DreamRecBackbone):
    r"""LLMInit's language-initialised ID table on DreamRec."""

    item_embedding_class = LLMInitItemEmbedding


class RLMRecDreamRec(DreamRecBackbone):
    r"""RLMRec's aligned ID embeddings on DreamRec (the alignment loss is added to the MSE)."""

    item_embedding_class = RLMRecItemEmbedding


class LLMESRDreamRec(LLMESREncoderMixin, DreamRecBackbone):
    r"""LLM-ESR's dual-view items and history encoding on DreamRec (diffusion in the
    concatenated item space)."""

    item_embedding_class = LLMESRItemEmbedding
