"""Loops of mplug2 (registered in ``mplug2.registry.LOOPS``)."""
from .retrieval_loop import MPLUG2RetrievalTestLoop, MPLUG2RetrievalValLoop

__all__ = ['MPLUG2RetrievalValLoop', 'MPLUG2RetrievalTestLoop']
