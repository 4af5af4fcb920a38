"""Fusion of mPLUG-2: asymmetric co-attention (+ optional connected attention)."""
from .fusion_module import FusionModule

__all__ = ['FusionModule']
