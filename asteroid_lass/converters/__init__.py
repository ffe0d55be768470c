"""Converters from the reference systems' released checkpoints to asteroid_lass model files."""
