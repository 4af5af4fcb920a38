"""mplug2: mPLUG-2 (Xu et al., ICML 2023) as an OpenMMLab plugin."""
# The compatibility layer must run before any host library is imported.
from . import compat  # noqa: F401  isort: skip
from .version import __version__

__all__ = ['__version__']
