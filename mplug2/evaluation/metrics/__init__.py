"""Metrics of mplug2 (registered in ``mplug2.registry.METRICS``)."""
from .caption import CaptionMetric, coco_caption_scores, java_available
from .retrieval import RetrievalMetric, invert_mapping, ranks_to_metrics, retrieval_ranks
from .video_qa import VideoQAAccuracy, normalize_answer

__all__ = [
    'VideoQAAccuracy', 'normalize_answer', 'CaptionMetric', 'coco_caption_scores',
    'java_available', 'RetrievalMetric', 'retrieval_ranks', 'ranks_to_metrics', 'invert_mapping'
]
from .rouge import RougeMetric, rouge_f1  # noqa: E402  ROUGE-1/2/L F1 (rouge-score)
__all__ += ['RougeMetric', 'rouge_f1']
from .glue import GlueMetric, glue_scores, write_glue_submission  # noqa: E402  GLUE metrics + submission
__all__ += ['GlueMetric', 'glue_scores', 'write_glue_submission']
from .squad import SquadMetric, combine_windows, squad_scores  # noqa: E402  SQuAD EM / F1 (+ v2.0)
__all__ += ['SquadMetric', 'combine_windows', 'squad_scores']
