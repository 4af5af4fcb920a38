"""Metrics of mplug2 (registered in ``mplug2.registry.METRICS``)."""
from .caption import CaptionMetric, coco_caption_scores, java_available
from .retrieval import RetrievalMetric, invert_mapping, ranks_to_metrics, retrieval_ranks
from .video_qa import VideoQAAccuracy, normalize_answer

__all__ = [
    'VideoQAAccuracy', 'normalize_answer', 'CaptionMetric', 'coco_caption_scores',
    'java_available', 'RetrievalMetric', 'retrieval_ranks', 'ranks_to_metrics', 'invert_mapping'
]
