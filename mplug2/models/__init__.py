"""mPLUG-2 models, one package per paper component.

Importing this package registers every module in ``mplug2.registry.MODELS`` (the
registries' ``locations`` import it lazily for configs).
"""
from .backbones import *  # noqa: F401,F403  dual-vision encoder
from .decoders import *  # noqa: F401,F403  shared text decoder, generation
from .fusion import *  # noqa: F401,F403  fusion module
from .necks import *  # noqa: F401,F403  universal layers
from .text import *  # noqa: F401,F403  BERT blocks, text encoder, tokenizer
from .heads import *  # noqa: F401,F403  ITC, ITM and language-model heads
from .multimodal import *  # noqa: F401,F403  task models
from .text_tasks import *  # noqa: F401,F403  text-only task models
from .data_preprocessors import *  # noqa: F401,F403  data preprocessor (images and videos)
