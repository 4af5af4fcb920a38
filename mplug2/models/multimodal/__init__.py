"""mPLUG-2 composed per task: the shared base and one file per task model."""
from .captioner import MPLUG2Captioner
from .mplug2 import MPLUG2
from .qa import MPLUG2QA
from .retriever import MPLUG2Retriever

__all__ = ['MPLUG2', 'MPLUG2QA', 'MPLUG2Captioner', 'MPLUG2Retriever']
