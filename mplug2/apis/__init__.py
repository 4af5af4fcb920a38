"""High-level inference APIs: build a model from a config and run it on video files."""
from .inference import (answer_question, build_test_pipeline, caption_video, inference_model,
                        init_model)

__all__ = ['init_model', 'build_test_pipeline', 'inference_model', 'answer_question',
           'caption_video']
