"""The registered models on the SASRec backbone: ``<Strategy>SASRec``, one per item embedding."""

from recbole_alphafuse.model.item_embedding import (
    AlphaFuseItemEmbedding,
    IDItemEmbedding,
    LLMESRItemEmbedding,
    LLMInitItemEmbedding,
    MoRecItemEmbedding,
    RLMRecItemEmbedding,
    UniSRecItemEmbedding,
    WhitenRecItemEmbedding,
)
from recbole_alphafuse.model.llm_esr_encoder import LLMESREncoderMixin
from recbole_alphafuse.model.sasrec_backbone import SASRecBackbone


class AlphaFuseSASRec(SASRecBackbone):
    r"""AlphaFuse on SASRec.

    Reference:
        Guoqing Hu et al. "AlphaFuse: Learn ID Embeddings for Sequential Recommendation in Null
        Space of Language Embeddings." in SIGIR 2025.

    Item embeddings are the frozen, whitened semantic-rich directions of the items' language
    embeddings, with trainable ID vectors (``null_dim`` wide) added in the semantic-sparse
    directions; no adapter. The sequence encoder is RecBole's SASRec.
    """

    item_embedding_class = AlphaFuseItemEmbedding


class IDSASRec(SASRecBackbone):
    r"""SASRec with plain trainable item IDs on the plugin's backbone.

    Reference:
        Wang-Cheng Kang and Julian McAuley. "Self-Attentive Sequential Recommendation." in
        ICDM 2018.

    With ``encoder: recbole`` it has RecBole's SASRec parameters and scores; its use is the ID-only
    baseline under any setting of the backbone (``encoder: reference``, ``loss_type``), so that
    language-guided models are compared with it on the same encoder.
    """

    item_embedding_class = IDItemEmbedding


class MoRecSASRec(SASRecBackbone):
    r"""MoRec on SASRec: frozen language vectors through a trainable Linear + GELU adapter.

    Reference:
        Zheng Yuan et al. "Where to Go Next for Recommender Systems? ID- vs. Modality-based
        Recommender Models Revisited." in SIGIR 2023.
    """

    item_embedding_class = MoRecItemEmbedding


class WhitenRecSASRec(SASRecBackbone):
    r"""WhitenRec on SASRec: PCA-whitened language vectors through a Linear + GELU adapter.

    Reference:
        Lingzi Zhang et al. "Are ID Embeddings Necessary? Whitening Pre-trained Text Embeddings
        for Effective Sequential Recommendation." in ICDE 2024.
    """

    item_embedding_class = WhitenRecItemEmbedding


class UniSRecSASRec(SASRecBackbone):
    r"""UniSRec's item encoder on SASRec: language vectors through a mixture of parametric-whitening
    experts (``n_experts``).

    Reference:
        Yupeng Hou et al. "Towards Universal Sequence Representation Learning for Recommender
        Systems." in KDD 2022.
    """

    item_embedding_class = UniSRecItemEmbedding


class LLMInitSASRec(SASRecBackbone):
    r"""LLMInit on SASRec: an ID table initialised from the whitened, PCA-reduced language
    embeddings (times ``semantic_scale``), then fully trained."""

    item_embedding_class = LLMInitItemEmbedding


class RLMRecSASRec(SASRecBackbone):
    r"""RLMRec on SASRec: ID embeddings with an auxiliary alignment loss to the language
    embeddings (``rlm_variant`` ``con`` or ``gen``, weight ``rlm_beta``).

    Reference:
        Xubin Ren et al. "Representation Learning with Large Language Models for
        Recommendation." in WWW 2024.
    """

    item_embedding_class = RLMRecItemEmbedding


class LLMESRSASRec(LLMESREncoderMixin, SASRecBackbone):
    r"""LLM-ESR on SASRec: an ID view and an adapted language view, encoded by a shared SASRec
    encoder, fused by cross-attention and concatenated; a contrastive loss aligns the views.

    Reference:
        Qidong Liu et al. "LLM-ESR: Large Language Models Enhancement for Long-tailed Sequential
        Recommendation." in NeurIPS 2024.
    """

    item_embedding_class = LLMESRItemEmbedding
