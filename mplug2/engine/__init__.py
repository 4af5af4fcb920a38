"""Engine pieces of mplug2: hooks, loops and optimiser constructors."""
from .hooks import *  # noqa: F401,F403
from .optimizers import *  # noqa: F401,F403
from .runner import *  # noqa: F401,F403
