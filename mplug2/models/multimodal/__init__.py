"""mPLUG-2 composed per task."""
from .mplug2 import MPLUG2, MPLUG2Captioner, MPLUG2QA

__all__ = ['MPLUG2', 'MPLUG2QA', 'MPLUG2Captioner']
