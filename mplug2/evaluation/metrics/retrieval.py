"""Text-to-video and video-to-text retrieval metrics from similarity matrices."""
from typing import Dict, List, Optional, Sequence, Union

import numpy as np
import torch
from mmengine.evaluator import BaseMetric

from mplug2.registry import METRICS

__all__ = ['RetrievalMetric', 'retrieval_ranks', 'ranks_to_metrics', 'invert_mapping']

GroundTruth = Union[np.ndarray, torch.Tensor, Sequence[Union[int, Sequence[int]]]]


def _gt_mask(gt: GroundTruth, num_queries: int, num_items: int) -> torch.Tensor:
    """A ``(num_queries, num_items)`` boolean mask of the correct items of every query."""
    if isinstance(gt, (np.ndarray, torch.Tensor)) and gt.ndim == 2:
        mask = torch.as_tensor(np.asarray(gt) if isinstance(gt, np.ndarray) else gt).bool()
        if tuple(mask.shape) != (num_queries, num_items):
            raise ValueError(f'gt mask of shape {tuple(mask.shape)} does not match the '
                             f'similarity matrix ({num_queries}, {num_items})')
        return mask
    if len(gt) != num_queries:
        raise ValueError(f'{len(gt)} ground-truth entries for {num_queries} queries')
    rows, cols = [], []
    for query, items in enumerate(gt):
        items = [int(items)] if np.ndim(items) == 0 else [int(i) for i in items]
        if not items:
            raise ValueError(f'query {query} has no ground-truth item')
        rows.extend([query] * len(items))
        cols.extend(items)
    cols_t = torch.tensor(cols, dtype=torch.long)
    if cols_t.numel() and (cols_t.min() < 0 or cols_t.max() >= num_items):
        raise ValueError(f'ground-truth item index out of range [0, {num_items})')
    mask = torch.zeros(num_queries, num_items, dtype=torch.bool)
    mask[torch.tensor(rows, dtype=torch.long), cols_t] = True
    return mask


def retrieval_ranks(sim: Union[np.ndarray, torch.Tensor], gt: GroundTruth) -> np.ndarray:
    """0-based rank of the best-ranked correct item of every query.

    Args:
        sim: ``(num_queries, num_items)`` similarity scores, higher is better.
        gt: the correct items of every query: an int per query, a list of ints per query,
            or a boolean ``(num_queries, num_items)`` mask.

    Returns:
        ``(num_queries,)`` int64 array. Items are ranked by descending score; ties are
        broken by item index (a stable sort), as ``np.argsort(-row, kind='stable')``.
    """
    sim = torch.as_tensor(np.asarray(sim) if not isinstance(sim, torch.Tensor) else sim)
    if sim.dim() != 2:
        raise ValueError(f'sim must be 2-D (queries x items), got shape {tuple(sim.shape)}')
    sim = sim.detach().float().cpu()
    num_queries, num_items = sim.shape
    mask = _gt_mask(gt, num_queries, num_items)
    order = torch.argsort(-sim, dim=1, stable=True)
    rank_of = torch.empty_like(order)
    rank_of.scatter_(1, order, torch.arange(num_items).expand(num_queries, num_items).clone())
    ranks = torch.where(mask, rank_of, torch.full_like(rank_of, num_items)).min(dim=1).values
    return ranks.numpy()


def ranks_to_metrics(ranks: np.ndarray, topk: Sequence[int] = (1, 5, 10)) -> Dict[str, float]:
    """``R@k`` (% of queries whose rank < k), ``MedR`` and ``MeanR`` (1-based ranks)."""
    ranks = np.asarray(ranks)
    metrics = {f'R{k}': 100.0 * float(np.mean(ranks < k)) for k in topk}
    metrics['MedR'] = float(np.median(ranks)) + 1
    metrics['MeanR'] = float(np.mean(ranks)) + 1
    return metrics


def invert_mapping(query_to_items: Sequence[Union[int, Sequence[int]]],
                   num_items: int) -> List[List[int]]:
    """``txt2vid`` -> ``vid2txt`` (and back): the queries of every item."""
    inverse: List[List[int]] = [[] for _ in range(num_items)]
    for query, items in enumerate(query_to_items):
        for item in ([items] if np.ndim(items) == 0 else items):
            inverse[int(item)].append(query)
    return inverse


@METRICS.register_module()
class RetrievalMetric(BaseMetric):
    """Recall@K, median and mean rank for text-to-video and video-to-text retrieval.

    The retrieval loop computes the similarities of all texts and all videos and calls
    ``evaluator.process`` with one (or several) data samples holding:

    * ``sim_t2v``: ``(num_texts, num_videos)`` scores (a block of rows is fine:
      ``text_ids`` then says which texts they are; default all texts, in order);
    * ``sim_v2t`` (optional, whole matrix): ``(num_videos, num_texts)`` scores; when absent the
      transpose of ``sim_t2v`` is used (with ITM re-ranking the two directions differ);
    * ``txt2vid`` (optional): the video(s) of every text; by default it comes from the
      dataset's metainfo (``txt2vid`` of :class:`~mplug2.datasets.VideoRetrievalDataset`,
      which the runner passes to ``dataset_meta``).

    * ``missing_videos`` (optional): videos whose file could not be loaded (placeholders
      of a dataset with ``on_error='skip'``, see the retrieval loop). They stay in the
      evaluation, ranked last for every query: last among the videos of every text (so
      their texts are misses), and their own texts last for them (a v2t miss).

    Several texts per video are supported: t2v counts a hit when the text's video is in
    the top k; v2t when any of the video's texts is.

    Results (prefix ``retrieval/``): ``t2v_R1``, ``t2v_R5``, ``t2v_R10``, ``t2v_MedR``,
    ``t2v_MeanR``, the same with ``v2t_``, ``R_mean`` (mean of the six recalls) and, when
    there were any, ``missing_videos`` (their number).
    """
    default_prefix = 'retrieval'

    def __init__(self, topk: Sequence[int] = (1, 5, 10), collect_device: str = 'cpu',
                 prefix: Optional[str] = None) -> None:
        super().__init__(collect_device=collect_device, prefix=prefix)
        self.topk = tuple(topk)

    def process(self, data_batch, data_samples: Sequence) -> None:
        for sample in data_samples:
            if sample.get('sim_t2v') is None:
                raise KeyError('RetrievalMetric needs sim_t2v (texts x videos) in the data '
                               'samples it is given')
            entry = {}
            for key in ('sim_t2v', 'sim_v2t'):
                value = sample.get(key)
                if value is not None:
                    entry[key] = (value.detach().float().cpu().numpy()
                                  if isinstance(value, torch.Tensor) else np.asarray(value))
            for key in ('txt2vid', 'text_ids', 'missing_videos'):
                if sample.get(key) is not None:
                    entry[key] = sample.get(key)
            self.results.append(entry)

    def compute_metrics(self, results: List[dict]) -> Dict[str, float]:
        if not results:
            raise ValueError('RetrievalMetric got no results')
        txt2vid = next((r['txt2vid'] for r in results if 'txt2vid' in r), None)
        if txt2vid is None:
            txt2vid = (self.dataset_meta or {}).get('txt2vid')
        if txt2vid is None:
            raise KeyError('RetrievalMetric needs the text -> video ground truth: txt2vid in '
                           'the data samples or in the dataset metainfo')
        num_texts = len(txt2vid)
        num_videos = results[0]['sim_t2v'].shape[1]
        sim_t2v = np.full((num_texts, num_videos), np.nan, dtype=np.float32)
        sim_v2t = None
        start = 0
        for result in results:
            block = result['sim_t2v']
            ids = result.get('text_ids')
            ids = np.arange(start, start + len(block)) if ids is None else np.asarray(ids)
            sim_t2v[ids] = block
            start = int(ids.max()) + 1 if len(ids) else start
            if 'sim_v2t' in result:
                sim_v2t = result['sim_v2t'] if sim_v2t is None else sim_v2t
        if np.isnan(sim_t2v).any():
            missing = np.nonzero(np.isnan(sim_t2v).any(axis=1))[0]
            raise ValueError(f'no similarities for {len(missing)} texts (e.g. {missing[:5]})')
        if sim_v2t is None:
            sim_v2t = sim_t2v.T
        vid2txt = invert_mapping(txt2vid, num_videos)
        missing = sorted({int(v) for r in results for v in r.get('missing_videos', ())})
        if missing:  # rank them last (idempotent: the retrieval loop already did)
            sim_t2v = sim_t2v.copy()
            sim_t2v[:, missing] = -np.inf
            sim_v2t = np.array(sim_v2t, dtype=np.float32)
            for video in missing:
                sim_v2t[video, vid2txt[video]] = -np.inf
        metrics = {}
        for direction, sim, gt in (('t2v', sim_t2v, txt2vid), ('v2t', sim_v2t, vid2txt)):
            values = ranks_to_metrics(retrieval_ranks(sim, gt), self.topk)
            metrics.update({f'{direction}_{k}': v for k, v in values.items()})
        recalls = [v for k, v in metrics.items() if k[4:5] == 'R' and k[5:].isdigit()]
        metrics['R_mean'] = float(np.mean(recalls))
        if missing:
            metrics['missing_videos'] = len(missing)
        return metrics
