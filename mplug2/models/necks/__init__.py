"""Necks of mPLUG-2: the universal layers shared by text and vision."""
from .universal_layers import UniversalLayers

__all__ = ['UniversalLayers']
