"""Vision backbones of mPLUG-2."""
from .clip_checkpoint import (convert_hf_clip, convert_openai_clip,
                              load_clip_state_dict, load_clip_weights)
from .dual_vision_encoder import (DualVisionEncoder, LocalTemporal,
                                  resize_pos_embed)
from .mplug2_vit_adapters import (MPLUG2ImageBackbone, MPLUG2VideoBackbone,
                                  MPLUG2ViTDetBackbone)

__all__ = [
    'DualVisionEncoder', 'LocalTemporal', 'resize_pos_embed',
    'convert_openai_clip', 'convert_hf_clip', 'load_clip_state_dict',
    'load_clip_weights', 'MPLUG2VideoBackbone', 'MPLUG2ImageBackbone',
    'MPLUG2ViTDetBackbone'
]
