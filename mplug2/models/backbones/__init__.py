"""Vision backbones of mPLUG-2."""
from .dual_vision_encoder import (DualVisionEncoder, LocalTemporal,
                                  resize_pos_embed)
from .mplug2_vit_adapters import (MPLUG2ImageBackbone, MPLUG2VideoBackbone,
                                  MPLUG2ViTDetBackbone)

__all__ = [
    'DualVisionEncoder', 'LocalTemporal', 'resize_pos_embed',
    'MPLUG2VideoBackbone', 'MPLUG2ImageBackbone', 'MPLUG2ViTDetBackbone'
]
