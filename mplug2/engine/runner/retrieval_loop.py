"""Validation / test loops of video-text retrieval: features batch by batch, ranking at the end.

Retrieval cannot be scored per batch: every text is ranked against every video. The loops

1. run ``model(inputs, data_samples, mode='tensor')`` on every batch (after the data
   preprocessor). The model returns per-video tensors (keys ``visual_*``, first dimension
   the batch) and per-text tensors (keys ``text_*``, one row per text of the batch's
   samples, plus ``text_sample``: the batch position of each text's sample); see
   :meth:`mplug2.models.MPLUG2Retriever.forward`;
2. split them into one record per dataset sample (moved to the CPU), gather the global
   features and the texts of all ranks and order them by ``sample_idx`` (padding
   duplicates of the distributed sampler are dropped); the visual token features (every
   per-video tensor of more than one dimension) stay on the rank that computed them;
3. stack them (``text_*`` rows ordered by ``text_id``; rows of different lengths are
   right-padded with zeros) and call ``model.predict_all(video_feats, text_feats,
   video_ids, reduce)``: each rank re-scores the candidate pairs of its own videos
   (``video_ids``) and ``reduce`` sums the partial scores over the ranks;
4. hand the result to the evaluator as one dict per rank (the contract of
   :class:`mplug2.evaluation.RetrievalMetric`):
   ``sim_t2v`` (this rank's rows of the texts x videos scores) with ``text_ids`` (which
   rows), ``txt2vid`` (the video of every text), and, on rank 0, ``sim_v2t`` (videos x
   texts, whole). Scores: higher is better.

Dataset contract (``VideoRetrievalDataset(test_mode=True)``): one sample per video, in
any order the sampler likes; its data sample has ``text`` (a str or a list of texts of
that video) and optionally ``text_id`` (their global indices, 0..num_texts-1; default:
numbered in video order), ``sample_idx`` (its dataset index; default: the
``DefaultSampler`` order, ``shuffle=False``) and ``missing`` (metainfo). Video ``i`` of the
score matrices is dataset sample ``i``.

Bad videos (``on_error='skip'``): in test mode the dataset returns, for a video that
cannot be loaded, a placeholder with the video's own ``sample_idx``, ``video_idx``,
``text`` and ``text_id``, ``missing=True`` and blank frames (see
:class:`mplug2.datasets.BaseVideoTextDataset`). Its texts stay queries and candidates,
scored by the model as usual; the video itself is left out of ``predict_all`` (its
blank frames must not take a re-ranking candidate slot) and ranked last for every
query: its column of ``sim_t2v`` is ``-inf``, and in its row of ``sim_v2t`` its own texts
are ``-inf`` (the others 0). The evaluator gets ``missing_videos`` and
:class:`mplug2.evaluation.RetrievalMetric` reports their number. This keeps the metrics
over all the texts and videos of the benchmark, a missing video counting as a miss,
instead of refusing skip mode. A *replacement* sample (another video standing in for the
bad one, as in training mode) would bring that video's texts and ``text_id``: the loop
refuses it with a message.
"""
from itertools import chain, zip_longest
from typing import Dict, List, Sequence, Tuple

import torch
from mmengine.dist import all_gather_object, all_reduce, get_rank, get_world_size
from mmengine.model import is_model_wrapper
from mmengine.runner import TestLoop, ValLoop
from mmengine.runner.amp import autocast

from mplug2.registry import LOOPS

__all__ = ['MPLUG2RetrievalValLoop', 'MPLUG2RetrievalTestLoop', 'stack_padded']


def _as_list(value) -> list:
    if value is None:
        return []
    return list(value) if isinstance(value, (list, tuple)) else [value]


def stack_padded(rows: Sequence[torch.Tensor]) -> torch.Tensor:
    """Stack tensors whose first dimension may differ, right-padding it with zeros
    (text token states and masks of batches padded to different lengths)."""
    if not rows:
        raise ValueError('nothing to stack')
    if any(row.dim() == 0 for row in rows) or len({row.shape for row in rows}) == 1:
        return torch.stack(list(rows))
    length = max(row.shape[0] for row in rows)
    out = rows[0].new_zeros((len(rows), length) + tuple(rows[0].shape[1:]))
    for index, row in enumerate(rows):
        out[index, :row.shape[0]] = row
    return out


class _RetrievalLoopMixin:
    """The retrieval ``run`` shared by the val and test loops (``stage`` names the hooks)."""

    stage: str

    def run(self) -> dict:
        stage = self.stage
        self.runner.call_hook(f'before_{stage}')
        self.runner.call_hook(f'before_{stage}_epoch')
        self.runner.model.eval()
        records: List[dict] = []
        for idx, data_batch in enumerate(self.dataloader):
            records += self.run_iter(idx, data_batch)
        metrics = self.rank_and_evaluate(records)
        self.runner.call_hook(f'after_{stage}_epoch', metrics=metrics)
        self.runner.call_hook(f'after_{stage}')
        return metrics

    @property
    def _model(self):
        model = self.runner.model
        return model.module if is_model_wrapper(model) else model

    @torch.no_grad()
    def run_iter(self, idx: int, data_batch: dict) -> List[dict]:
        """Features of one batch, split into one CPU record per sample."""
        self.runner.call_hook(f'before_{self.stage}_iter', batch_idx=idx, data_batch=data_batch)
        model = self._model
        with autocast(enabled=self.fp16):
            data = model.data_preprocessor(data_batch, False)
            feats = model._run_forward(data, mode='tensor')
        data_samples = data['data_samples']
        records = self.split_records(feats, data_samples)
        self.runner.call_hook(f'after_{self.stage}_iter', batch_idx=idx, data_batch=data_batch,
                              outputs=data_samples)
        return records

    @staticmethod
    def split_records(feats: Dict[str, torch.Tensor], data_samples: Sequence) -> List[dict]:
        """One record per sample: its ``visual_*`` rows, and ``texts``: a list of
        ``(text_id or None, {text_* key: row})`` for the sample's texts."""
        records = []
        for position, sample in enumerate(data_samples):
            missing = bool(sample.get('missing', False))
            if sample.get('skipped_samples') and not missing:
                raise ValueError(
                    'retrieval evaluation got a sample that replaced a bad one (skipped_samples '
                    f"{[s.get('index') for s in sample.get('skipped_samples')]}): it would bring "
                    "another video's texts and text_id. Build the dataset with test_mode=True "
                    '(a bad video then becomes a placeholder marked missing) or use '
                    "on_error='raise'")
            records.append(dict(
                sample_idx=sample.get('sample_idx'),
                missing=missing,
                visual={k: v[position].cpu() for k, v in feats.items() if k.startswith('visual_')},
                texts=[]))
        if 'text_sample' in feats:
            text_keys = [k for k in feats if k.startswith('text_') and k != 'text_sample']
            owners = feats['text_sample'].tolist()
            text_ids = {position: _as_list(sample.get('text_id'))
                        for position, sample in enumerate(data_samples)}
            seen = [0] * len(data_samples)
            for row, owner in enumerate(owners):
                ids = text_ids[owner]
                text_id = int(ids[seen[owner]]) if ids else None
                seen[owner] += 1
                records[owner]['texts'].append(
                    (text_id, {k: feats[k][row].cpu() for k in text_keys}))
        return records

    def gather_records(self, records: List[dict]) -> Tuple[List[dict], List[Tuple[int, int]]]:
        """All ranks' records in dataset order, without the sampler's padding duplicates,
        and where each of them is held: ``(rank, index in that rank's records)`` (for a
        duplicated sample, the lowest rank)."""
        parts = all_gather_object(records)
        size = len(self.dataloader.dataset)
        if all(r['sample_idx'] is not None for r in chain.from_iterable(parts)):
            unique = {}
            for holder, part in enumerate(parts):
                for index, record in enumerate(part):
                    unique.setdefault(int(record['sample_idx']), (record, (holder, index)))
            ordered = [unique[key] for key in sorted(unique)][:size]
        else:
            # DefaultSampler(shuffle=False) order: rank r holds samples r, r + W, r + 2W ...
            ordered = [(record, (holder, index))
                       for index, group in enumerate(zip_longest(*parts))
                       for holder, record in enumerate(group) if record is not None][:size]
        return [record for record, _ in ordered], [where for _, where in ordered]

    @staticmethod
    def collate_features(records: List[dict]) -> Tuple[dict, dict, List[int]]:
        """Stack the records into ``video_feats``, ``text_feats`` (rows in ``text_id``
        order) and ``txt2vid`` (the video, i.e. record position, of every text)."""
        if not records:
            raise ValueError('the retrieval loop got no samples')
        video_feats = {k: stack_padded([r['visual'][k] for r in records])
                       for k in records[0]['visual']}
        texts = [(text_id, video, feats) for video, record in enumerate(records)
                 for text_id, feats in record['texts']]
        if not texts:
            raise ValueError('the retrieval loop got no texts: the samples need a `text` field')
        if all(text_id is not None for text_id, _, _ in texts):
            texts.sort(key=lambda item: item[0])
            ids = [text_id for text_id, _, _ in texts]
            if ids != list(range(len(ids))):
                raise ValueError('text_id must number the texts 0..num_texts-1 exactly once')
        text_feats = {k: stack_padded([feats[k] for _, _, feats in texts]) for k in texts[0][2]}
        txt2vid = [video for _, video, _ in texts]
        return video_feats, text_feats, txt2vid

    @staticmethod
    def rank_missing_last(sim_t2v: torch.Tensor, sim_v2t: torch.Tensor, present: List[int],
                          txt2vid: List[int], num_videos: int) -> Tuple[torch.Tensor, torch.Tensor]:
        """Scores over the ``present`` videos -> scores over all ``num_videos``, every missing
        video ranked last: ``-inf`` in its ``sim_t2v`` column and for its own texts in its
        ``sim_v2t`` row (0 for the other texts)."""
        full_t2v = sim_t2v.new_full((sim_t2v.shape[0], num_videos), float('-inf'))
        full_t2v[:, present] = sim_t2v
        full_v2t = sim_v2t.new_zeros((num_videos, sim_v2t.shape[1]))
        full_v2t[present] = sim_v2t
        is_present = torch.zeros(num_videos, dtype=torch.bool)
        is_present[present] = True
        for text, video in enumerate(txt2vid):
            if not is_present[video]:
                full_v2t[video, text] = float('-inf')
        return full_t2v, full_v2t

    @torch.no_grad()
    def rank_and_evaluate(self, records: List[dict]) -> dict:
        """Gather the global features, keep the token features here, rank and evaluate.

        Per-video tensors of more than one dimension (the visual tokens) never leave their
        rank: every rank re-scores the candidate pairs of its own videos and the partial
        scores are summed over the ranks. Only the global features and the texts are
        gathered, so memory per rank does not grow with the number of ranks.
        """
        rank, world_size = get_rank(), get_world_size()
        local_tokens = [{k: v for k, v in r['visual'].items() if v.dim() > 1} for r in records]
        shared = [dict(r, visual={k: v for k, v in r['visual'].items() if v.dim() <= 1})
                  for r in records]
        ordered, holders = self.gather_records(shared)
        video_feats, text_feats, txt2vid = self.collate_features(ordered)
        missing = [video for video, record in enumerate(ordered) if record.get('missing')]
        present = [video for video, record in enumerate(ordered) if not record.get('missing')]
        if not present:
            raise ValueError(f'all the {len(ordered)} videos of the retrieval evaluation are '
                             'missing (their files could not be loaded)')
        if missing:  # rank the present videos only; the missing ones are put back below
            video_feats = {k: v[present] for k, v in video_feats.items()}
        position = {video: row for row, video in enumerate(present)}
        mine = [(position[video], index) for video, (holder, index) in enumerate(holders)
                if holder == rank and video in position]
        video_ids = torch.tensor([video for video, _ in mine], dtype=torch.long)
        if mine:
            for key in local_tokens[mine[0][1]]:
                video_feats[key] = stack_padded([local_tokens[index][key] for _, index in mine])
        model = self._model

        def reduce(tensor: torch.Tensor) -> torch.Tensor:
            if world_size > 1:
                all_reduce(tensor, op='sum')
            return tensor

        with autocast(enabled=self.fp16):
            scores = model.predict_all(video_feats, text_feats, video_ids=video_ids, reduce=reduce)
        sim_t2v, sim_v2t = scores['sim_t2v'].float(), scores['sim_v2t'].float()
        if missing:
            sim_t2v, sim_v2t = self.rank_missing_last(sim_t2v, sim_v2t, present, txt2vid,
                                                      len(ordered))
        t2v_rows = torch.arange(rank, len(txt2vid), world_size)
        result = dict(sim_t2v=sim_t2v[t2v_rows], text_ids=t2v_rows.tolist(), txt2vid=txt2vid,
                      missing_videos=missing)
        if rank == 0:
            result['sim_v2t'] = sim_v2t
        self.evaluator.process(data_samples=[result], data_batch=None)
        return self.evaluator.evaluate(world_size)


@LOOPS.register_module()
class MPLUG2RetrievalValLoop(_RetrievalLoopMixin, ValLoop):
    """Retrieval validation (see the module docstring). Args as :class:`mmengine.runner.ValLoop`:
    ``dataloader``, ``evaluator`` (e.g. ``dict(type='RetrievalMetric')``), ``fp16``."""

    stage = 'val'


@LOOPS.register_module()
class MPLUG2RetrievalTestLoop(_RetrievalLoopMixin, TestLoop):
    """Retrieval test (see the module docstring). Args as :class:`mmengine.runner.TestLoop`:
    ``dataloader``, ``evaluator`` (e.g. ``dict(type='RetrievalMetric')``), ``fp16``."""

    stage = 'test'
