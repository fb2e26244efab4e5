"""Diagnosis heads on frozen encoder features: fitting, temperature scaling, calibration error.

``head`` is numpy / scipy / scikit-learn only (no torch); ``fit`` computes the features with torch and
writes ``head.json`` next to an encoder. See docs/diagnosis.md.
"""
