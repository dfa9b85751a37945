"""AlphaFuseSASRec: SASRec over AlphaFuse item embeddings."""

from recbole_alphafuse.model.item_embedding import AlphaFuseItemEmbedding
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
