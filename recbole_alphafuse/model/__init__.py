"""Registered models: each pairs a backbone with an item-embedding strategy."""

import torch

from recbole_alphafuse.model.alphafuse_recbole import (
    AlphaFuseBERT4Rec,
    AlphaFuseGRU4Rec,
)
from recbole_alphafuse.model.alphafuse_sasrec import AlphaFuseSASRec
from recbole_alphafuse.model.baselines import (
    LLMESR,
    IDSASRec,
    LLMESRDreamRec,
    LLMInit,
    LLMInitDreamRec,
    MoRec,
    MoRecDreamRec,
    RLMRec,
    RLMRecDreamRec,
    UniSRec,
    UniSRecDreamRec,
    WhitenRec,
    WhitenRecDreamRec,
)
from recbole_alphafuse.model.dreamrec import AlphaFuseDreamRec, DreamRec, iDreamRec

# Importing RecBole's sequential models runs its SINE module, which switches autograd's anomaly
# detection on for the whole process: a debugging aid that slows every training step.
torch.autograd.set_detect_anomaly(False)

__all__ = [
    "LLMESR",
    "AlphaFuseBERT4Rec",
    "AlphaFuseDreamRec",
    "AlphaFuseGRU4Rec",
    "AlphaFuseSASRec",
    "DreamRec",
    "IDSASRec",
    "LLMESRDreamRec",
    "LLMInit",
    "LLMInitDreamRec",
    "MoRec",
    "MoRecDreamRec",
    "RLMRec",
    "RLMRecDreamRec",
    "UniSRec",
    "UniSRecDreamRec",
    "WhitenRec",
    "WhitenRecDreamRec",
    "iDreamRec",
]
