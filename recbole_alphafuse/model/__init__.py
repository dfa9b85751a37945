"""Registered models: each pairs a backbone with an item-embedding strategy."""

from recbole_alphafuse.model.alphafuse_sasrec import AlphaFuseSASRec

__all__ = ["AlphaFuseSASRec"]
