"""Array type aliases shared by the gaze math, the trainer and the server (numpy only).

Shapes are documented where the arrays are used; these aliases only fix the dtype.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

#: float64 values (gaze samples, coordinates, features, scores).
FloatArray = NDArray[np.float64]
#: float32 values (model inputs and outputs: preprocessed images, embeddings, probabilities).
Float32Array = NDArray[np.float32]
#: int64 indices and counts.
IntArray = NDArray[np.int64]
#: booleans (masks, dHash bits).
BoolArray = NDArray[np.bool_]
