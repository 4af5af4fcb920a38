"""Decoders of mPLUG-2: the shared text decoder and its search algorithms."""
from .generation import beam_search, greedy_search
from .text_decoder import TextDecoder

__all__ = ['TextDecoder', 'beam_search', 'greedy_search']
