"""Image preprocessing for the model (numpy and Pillow only; no torch, no database, no HTTP).

One function turns stored pixel values into the model's input tensor; the trainer's evaluation view,
the exports' recorded spec, the server's case embeddings and its predictions all call it, so a case
looks the same to the model wherever it is scored. See ``docs/preprocessing.md``.
"""

from trainer.imaging.preprocess import (
    PreprocessSpec,
    center_crop,
    model_input,
    model_inputs,
    read_values,
    resize_shorter,
    spec_from_encoder_info,
    to_unit,
)

__all__ = [
    "PreprocessSpec",
    "center_crop",
    "model_input",
    "model_inputs",
    "read_values",
    "resize_shorter",
    "spec_from_encoder_info",
    "to_unit",
]
