"""The data structure exchanged between the data pipeline, the models and the metrics.

:class:`DataSample` is a thin subclass of :class:`mmengine.structures.BaseDataElement`
(mmpretrain's ``DataSample`` is not used: importing it imports ``mmpretrain.models``).

Field conventions of mplug2 (both kinds of field read the same way, ``sample.question``
or ``sample.get('question')``):

* metainfo (identifiers and geometry, set once by the packing transform):
  ``video_id``, ``sample_idx``, ``filename``, ``frame_inds``, ``img_shape``, ``ori_shape``,
  ``num_frames``, ``question_id``, ``video_idx``, ``missing`` (True on the placeholder of a sample
  that could not be loaded at evaluation, ``on_error='skip'``) ...
* data fields (annotations and predictions): ``question``, ``gt_answer``,
  ``answer_weight``, ``gt_caption``, ``text``, ``text_id``, ``question_type``,
  ``skipped_samples`` (bad samples this sample replaced, see ``on_error='skip'``),
  and the model's predictions ``pred_answer`` (str) / ``pred_caption`` (str).

Models read the fields as attributes (``sample.question``; ``sample.get(name)`` for optional
ones) and write predictions as data fields (``sample.pred_answer = answer``).
"""
from mmengine.structures import BaseDataElement

__all__ = ['DataSample']


class DataSample(BaseDataElement):
    """One video-text (or image-text) sample: annotations, meta information, predictions."""

    def __repr__(self) -> str:
        meta = ', '.join(f'{k}={self.metainfo[k]!r}' for k in self.metainfo_keys())
        data = ', '.join(f'{k}={_short(v)}' for k, v in self.items()
                         if k not in self.metainfo_keys())
        return f'{type(self).__name__}(META: {meta} | DATA: {data})'


def _short(value, limit: int = 80) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[:limit - 3] + '...'
