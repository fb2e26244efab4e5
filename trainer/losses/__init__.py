"""Multi-positive contrastive losses and the gaze positive mask."""

from trainer.losses.cosine import multi_positive_cosine
from trainer.losses.infonce import multi_positive_infonce
from trainer.losses.mask import PairLookup, drop_positives
from trainer.losses.ntxent import multi_positive_ntxent

__all__ = [
    "PairLookup",
    "drop_positives",
    "multi_positive_cosine",
    "multi_positive_infonce",
    "multi_positive_ntxent",
]
