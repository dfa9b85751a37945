"""Registered models, named ``<Strategy><Backbone>``: each pairs a backbone with an item-embedding
strategy (``model/sasrec.py``, ``model/dreamrec.py``, ``model/preferdiff.py``,
``model/recbole_backbones.py``)."""

import torch

from recbole_alphafuse.model.dreamrec import (
    AlphaFuseDreamRec,
    IDDreamRec,
    LLMESRDreamRec,
    LLMInitDreamRec,
    MoRecDreamRec,
    RLMRecDreamRec,
    UniSRecDreamRec,
    WhitenedDreamRec,
    WhitenRecDreamRec,
)
from recbole_alphafuse.model.preferdiff import (
    AlphaFusePreferDiff,
    IDPreferDiff,
    WhitenedPreferDiff,
)
from recbole_alphafuse.model.recbole_backbones import AlphaFuseBERT4Rec, AlphaFuseGRU4Rec
from recbole_alphafuse.model.sasrec import (
    AlphaFuseSASRec,
    IDSASRec,
    LLMESRSASRec,
    LLMInitSASRec,
    MoRecSASRec,
    RLMRecSASRec,
    UniSRecSASRec,
    WhitenRecSASRec,
)

# Importing RecBole's sequential models runs its SINE module, which switches autograd's anomaly
# detection on for the whole process: a debugging aid that slows every training step.
torch.autograd.set_detect_anomaly(False)

__all__ = [
    "AlphaFuseBERT4Rec",
    "AlphaFuseDreamRec",
    "AlphaFuseGRU4Rec",
    "AlphaFusePreferDiff",
    "AlphaFuseSASRec",
    "IDDreamRec",
    "IDPreferDiff",
    "IDSASRec",
    "LLMESRDreamRec",
    "LLMESRSASRec",
    "LLMInitDreamRec",
    "LLMInitSASRec",
    "MoRecDreamRec",
    "MoRecSASRec",
    "RLMRecDreamRec",
    "RLMRecSASRec",
    "UniSRecDreamRec",
    "UniSRecSASRec",
    "WhitenRecDreamRec",
    "WhitenRecSASRec",
    "WhitenedDreamRec",
    "WhitenedPreferDiff",
]

# Earlier names, still accepted by --model (a run then logs and saves under the new name).
MODEL_ALIASES = {
    "DreamRec": "IDDreamRec",
    "iDreamRec": "WhitenedDreamRec",
    "LLMESR": "LLMESRSASRec",
    "LLMInit": "LLMInitSASRec",
    "MoRec": "MoRecSASRec",
    "RLMRec": "RLMRecSASRec",
    "UniSRec": "UniSRecSASRec",
    "WhitenRec": "WhitenRecSASRec",
}
