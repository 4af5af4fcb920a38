"""mPLUG-2 composed per task."""
from .mplug2 import MPLUG2, MPLUG2Captioner, MPLUG2QA
from .retrieval import MPLUG2Retriever

__all__ = ['MPLUG2', 'MPLUG2QA', 'MPLUG2Captioner', 'MPLUG2Retriever']
