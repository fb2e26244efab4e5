"""Encoders, heads and the self-supervised methods (MoCo v2, BYOL, SimSiam, SimCLR)."""
