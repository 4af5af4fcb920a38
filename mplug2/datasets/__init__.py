"""Datasets of mplug2 (registered in ``mplug2.registry.DATASETS``) and their transforms."""
from . import transforms  # noqa: F401  registers the transforms
from .annotation_io import VIDEO_EXTENSIONS, load_answer_list
from .base_video_text import BaseVideoTextDataset
from .errors import AnnotationError, SampleLoadError, VideoLoadError
from .moving_shapes import generate_moving_shapes
from .samplers import SeededIndex, SeededSampler, sample_seed
from .video_caption import VideoCaptionDataset, load_reference_sets
from .video_qa import VideoQADataset
from .video_retrieval import VideoRetrievalDataset

__all__ = [
    'BaseVideoTextDataset', 'VideoQADataset', 'VideoCaptionDataset', 'VideoRetrievalDataset',
    'AnnotationError', 'SampleLoadError', 'VideoLoadError', 'VIDEO_EXTENSIONS',
    'load_answer_list', 'load_reference_sets', 'generate_moving_shapes', 'SeededSampler',
    'SeededIndex', 'sample_seed'
]
from .summarization import SummarizationDataset  # noqa: E402  Gigaword-style source/summary pairs
__all__ += ['SummarizationDataset']
from .glue import GLUE_TASKS, GlueDataset, get_glue_task  # noqa: E402  GLUE TSV / jsonl / parquet
__all__ += ['GlueDataset', 'GLUE_TASKS', 'get_glue_task']
from .squad import SquadDataset  # noqa: E402  SQuAD v1.1 / v2.0 windows (document stride)
__all__ += ['SquadDataset']
