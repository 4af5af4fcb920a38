"""Necks of mPLUG-2: the universal layers shared by text and vision."""
from .simple_fpn import LN2d, SimpleFPN
from .universal_layers import UniversalLayers

__all__ = ['UniversalLayers', 'SimpleFPN', 'LN2d']
