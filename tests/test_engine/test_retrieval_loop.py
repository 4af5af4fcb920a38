"""The retrieval loops through an mmengine Runner: features, gathering, ranking, metrics."""
import numpy as np
import pytest
import torch
from mmengine.dataset import pseudo_collate
from mmengine.model import BaseModel
from mmengine.runner import Runner
from torch.utils.data import Dataset

import mplug2  # noqa: F401
from mplug2.engine.runner.retrieval_loop import _RetrievalLoopMixin, stack_padded
from mplug2.evaluation.metrics.retrieval import invert_mapping, ranks_to_metrics, retrieval_ranks
from mplug2.models.data_preprocessors import MPLUG2DataPreprocessor  # noqa: F401  registers it
from mplug2.registry import DATASETS, MODELS
from mplug2.structures import DataSample
from tests.conftest import tiny_mplug2, write_vocab


@DATASETS.register_module(force=True)
class ToyRetrievalDataset(Dataset):
    """Test layout of ``VideoRetrievalDataset``: one sample per video with its texts.

    Args:
        texts: the texts of every video.
        scores: optional (num_texts, num_videos) similarity the stub model will return.
        test_mode: False gives the training layout: one sample per text (``text`` a str).
    """

    def __init__(self, texts, scores=None, test_mode=True, missing=()):
        self.video_texts = texts
        self.scores = scores
        self.test_mode = test_mode
        self.missing = set(missing)  # test mode: placeholders of bad videos (blank, missing)
        self.txt2vid, self.text_ids, start = [], [], 0
        for video, video_texts in enumerate(texts):
            self.text_ids.append(list(range(start, start + len(video_texts))))
            self.txt2vid += [video] * len(video_texts)
            start += len(video_texts)
        self.metainfo = dict(txt2vid=self.txt2vid, num_videos=len(texts), num_texts=start)

    def __len__(self):
        return len(self.video_texts) if self.test_mode else len(self.txt2vid)

    def __getitem__(self, index):
        if not self.test_mode:
            video = self.txt2vid[index]
            sample = DataSample(metainfo=dict(video_idx=video, sample_idx=index))
            sample.text = self.video_texts[video][index - self.text_ids[video][0]]
            return dict(inputs=torch.full((3, 2, 16, 16), 40 * video, dtype=torch.uint8),
                        data_samples=sample)
        video = torch.full((3, 2, 16, 16), 40 * index, dtype=torch.uint8)
        sample = DataSample(metainfo=dict(video_idx=index, sample_idx=index))
        sample.text = self.video_texts[index]
        sample.text_id = self.text_ids[index]
        if index in self.missing:
            video = torch.zeros_like(video)
            sample.set_metainfo(dict(missing=True))
            sample.skipped_samples = [dict(index=index, filename=f'v{index}.mp4', reason='corrupt')]
        if self.scores is not None:
            sample.scores = [self.scores[t] for t in self.text_ids[index]]
        return dict(inputs=video, data_samples=sample)


@MODELS.register_module(force=True)
class StubRetriever(BaseModel):
    """Tensor mode: a one-hot feature per video and the given score row per text, so that
    ``predict_all`` returns exactly the dataset's hand-made similarity matrix."""

    def __init__(self, num_videos, data_preprocessor=None):
        super().__init__(data_preprocessor=data_preprocessor)
        self.num_videos = num_videos
        self.dummy = torch.nn.Parameter(torch.zeros(1))

    def forward(self, inputs, data_samples=None, mode='tensor'):
        assert mode == 'tensor'
        assert inputs.shape[0] == len(data_samples)
        video = torch.tensor([s.video_idx for s in data_samples])
        scores = [row for s in data_samples for row in s.scores]
        return dict(visual_feat=torch.eye(self.num_videos)[video],
                    text_feat=torch.tensor(scores, dtype=torch.float),
                    text_sample=torch.tensor([i for i, s in enumerate(data_samples)
                                              for _ in s.scores]))

    def predict_all(self, video_feats, text_feats, video_ids=None, reduce=None):
        sim = text_feats['text_feat'] @ video_feats['visual_feat'].t()
        return dict(sim_t2v=sim, sim_v2t=sim.t().contiguous())


def _runner(tmp_path, model, dataset, batch_size=2, shuffle=False):
    return Runner(
        model=model,
        work_dir=str(tmp_path),
        experiment_name=f'retrieval_{tmp_path.name}',
        test_dataloader=dict(dataset=dataset, batch_size=batch_size, num_workers=0,
                             sampler=dict(type='DefaultSampler', shuffle=shuffle)),
        test_evaluator=dict(type='RetrievalMetric'),
        test_cfg=dict(type='MPLUG2RetrievalTestLoop'),
        default_scope='mplug2',
        default_hooks=dict(logger=dict(type='LoggerHook', interval=1)),
    )


def test_hand_made_3x3_similarity_gives_known_recalls(tmp_path):
    scores = [[0.9, 0.1, 0.0],   # text 0 -> video 0 first: hit at rank 1
              [0.8, 0.3, 0.1],   # text 1 -> video 1 second: rank 2
              [0.1, 0.2, 0.7]]   # text 2 -> video 2 first
    dataset = dict(type='ToyRetrievalDataset', texts=[['a'], ['b'], ['c']], scores=scores)
    model = dict(type='StubRetriever', num_videos=3, data_preprocessor=dict(type='MPLUG2DataPreprocessor'))
    metrics = _runner(tmp_path, model, dataset).test()
    assert metrics['retrieval/t2v_R1'] == pytest.approx(200 / 3)
    assert metrics['retrieval/t2v_R5'] == 100
    assert metrics['retrieval/t2v_MedR'] == 1
    assert metrics['retrieval/t2v_MeanR'] == pytest.approx(4 / 3)
    # videos rank texts by columns: video 0 -> [0.9, 0.8, 0.1] (text 0 first), video 1 ->
    # [0.1, 0.3, 0.2] (text 1 first), video 2 -> [0.0, 0.1, 0.7] (text 2 first)
    assert metrics['retrieval/v2t_R1'] == 100


@pytest.mark.parametrize('shuffle', [False, True])
def test_several_texts_per_video_and_any_sample_order(tmp_path, shuffle):
    """4 videos, 6 texts, batches of 3 (a partial one); the sampler order does not matter."""
    texts = [['t0', 't1'], ['t2'], ['t3', 't4'], ['t5']]
    #         v0   v1   v2   v3
    scores = [[0.9, 0.0, 0.0, 0.0],   # t0 (v0): rank 1
              [0.1, 0.5, 0.0, 0.0],   # t1 (v0): rank 2
              [0.0, 0.9, 0.0, 0.0],   # t2 (v1): rank 1
              [0.0, 0.0, 0.2, 0.8],   # t3 (v2): rank 2
              [0.1, 0.2, 0.3, 0.4],   # t4 (v2): rank 2
              [0.6, 0.5, 0.4, 0.3]]   # t5 (v3): rank 4
    dataset = dict(type='ToyRetrievalDataset', texts=texts, scores=scores)
    model = dict(type='StubRetriever', num_videos=4, data_preprocessor=dict(type='MPLUG2DataPreprocessor'))
    metrics = _runner(tmp_path, model, dataset, batch_size=3, shuffle=shuffle).test()
    assert metrics['retrieval/t2v_R1'] == pytest.approx(200 / 6)
    assert metrics['retrieval/t2v_R5'] == 100
    assert metrics['retrieval/t2v_MedR'] == 2
    assert metrics['retrieval/t2v_MeanR'] == pytest.approx((1 + 2 + 1 + 2 + 2 + 4) / 6)
    # v2t, a hit is the best-ranked of the video's texts: v0 -> t0 first; v1 -> t2 first;
    # v2 column [0, 0, 0, 0.2, 0.3, 0.4] -> t4 second; v3 column [0, 0, 0, 0.8, 0.4, 0.3] -> t5 third
    assert metrics['retrieval/v2t_R1'] == pytest.approx(50)
    assert metrics['retrieval/v2t_MeanR'] == pytest.approx((1 + 1 + 2 + 3) / 4)


def _metrics_in_one_batch(model, texts):
    """The reference: every video and text through the model in a single batch, ranked by
    ``predict_all`` at once, recalls from the ranks (no loop, no gathering, no collating)."""
    dataset = ToyRetrievalDataset(texts)
    model.eval()
    with torch.no_grad():
        data = model.data_preprocessor(pseudo_collate([dataset[i] for i in range(len(dataset))]), False)
        feats = model(data['inputs'], data['data_samples'], mode='tensor')
        sims = model.predict_all(
            {key: feats[key] for key in ('visual_feat', 'visual_embeds')},
            {key: feats[key] for key in ('text_feat', 'text_embeds', 'text_mask')})
    assert feats['text_sample'].tolist() == dataset.txt2vid  # one sample per video, texts in order
    metrics = {}
    for direction, sim, gt in (('t2v', sims['sim_t2v'], dataset.txt2vid),
                               ('v2t', sims['sim_v2t'], invert_mapping(dataset.txt2vid, len(texts)))):
        for key, value in ranks_to_metrics(retrieval_ranks(sim, gt)).items():
            metrics[f'retrieval/{direction}_{key}'] = value
    metrics['retrieval/R_mean'] = np.mean([metrics[f'retrieval/{d}_R{k}'] for d in ('t2v', 'v2t')
                                           for k in (1, 5, 10)])
    return metrics


def test_tiny_mplug2_retriever_end_to_end(tmp_path):
    vocab = write_vocab(tmp_path / 'vocab.txt')
    model = tiny_mplug2('MPLUG2Retriever', vocab, text_decoder=None,
                        itc_head=dict(type='ITCHead', queue_size=0), k_test=2,
                        data_preprocessor=dict(type='MPLUG2DataPreprocessor'))
    texts = [['a red circle', 'the red circle moving'], ['a blue square'], ['a green triangle'],
             ['a yellow circle', 'a dog'], ['a man runs']]
    torch.manual_seed(0)
    runner = _runner(tmp_path, model, dict(type='ToyRetrievalDataset', texts=texts), batch_size=2)
    metrics = runner.test()
    assert metrics['retrieval/t2v_R5'] == metrics['retrieval/t2v_R10'] == 100  # 5 videos
    assert metrics['retrieval/v2t_R10'] == 100  # 7 texts
    # the loop (batches of 2, features gathered and collated) = the whole set in one batch
    expected = _metrics_in_one_batch(runner.model, texts)
    assert {key: metrics[key] for key in expected} == pytest.approx(expected, rel=1e-12)
    assert expected['retrieval/t2v_R1'] not in (0, 100)  # not a degenerate ranking


def test_train_with_momentum_then_retrieval_validation(tmp_path):
    """Runner.train: ITC (momentum + queue) and ITM losses, then MPLUG2RetrievalValLoop."""
    vocab = write_vocab(tmp_path / 'vocab.txt')
    model = tiny_mplug2('MPLUG2Retriever', vocab, text_decoder=None,
                        itc_head=dict(type='ITCHead', queue_size=4), k_test=2,
                        data_preprocessor=dict(type='MPLUG2DataPreprocessor'))
    texts = [['a red circle', 'the red circle moving'], ['a blue square'], ['a green triangle']]
    loader = dict(batch_size=2, num_workers=0, sampler=dict(type='DefaultSampler', shuffle=False))
    torch.manual_seed(0)
    runner = Runner(
        model=model, work_dir=str(tmp_path), experiment_name=f'retrieval_train_{tmp_path.name}',
        train_dataloader=dict(dataset=dict(type='ToyRetrievalDataset', texts=texts, test_mode=False),
                              **loader),
        val_dataloader=dict(dataset=dict(type='ToyRetrievalDataset', texts=texts), **loader),
        optim_wrapper=dict(optimizer=dict(type='AdamW', lr=1e-3)),
        train_cfg=dict(type='EpochBasedTrainLoop', max_epochs=1, val_interval=1),
        val_cfg=dict(type='MPLUG2RetrievalValLoop'), val_evaluator=dict(type='RetrievalMetric'),
        default_scope='mplug2', default_hooks=dict(checkpoint=dict(type='CheckpointHook', interval=0)))
    trained = runner.train()
    assert trained.itc_head.queue_ptr.item() == 0  # 4 training texts went through a queue of 4
    assert sorted(trained.itc_head.idx_queue.tolist()) == [0, 0, 1, 2]
    # one AdamW step moved the online weights; the EMA moved the momentum copies 0.5 % of the way
    assert not torch.equal(trained.itc_head.text_proj.weight,
                           trained.itc_head.momentum_projections['text_proj'].weight)
    assert runner.message_hub.get_scalar('train/loss_itm').current() > 0
    expected = _metrics_in_one_batch(trained, texts)  # the validation of the trained weights
    for key in ('t2v_R1', 'v2t_R1', 't2v_MeanR', 'v2t_MeanR', 'R_mean'):
        assert runner.message_hub.get_scalar(f'val/retrieval/{key}').current() == pytest.approx(
            expected[f'retrieval/{key}'], rel=1e-12), key


def test_collate_orders_texts_by_id_and_pads():
    records = [
        dict(sample_idx=0, visual=dict(visual_feat=torch.tensor([1.0, 0.0])),
             texts=[(2, dict(text_mask=torch.ones(3)))]),
        dict(sample_idx=1, visual=dict(visual_feat=torch.tensor([0.0, 1.0])),
             texts=[(0, dict(text_mask=torch.ones(2))), (1, dict(text_mask=torch.ones(4)))]),
    ]
    video_feats, text_feats, txt2vid = _RetrievalLoopMixin.collate_features(records)
    assert txt2vid == [1, 1, 0]
    assert text_feats['text_mask'].tolist() == [[1, 1, 0, 0], [1, 1, 1, 1], [1, 1, 1, 0]]
    assert video_feats['visual_feat'].shape == (2, 2)
    assert stack_padded([torch.zeros(2, 3), torch.zeros(1, 3)]).shape == (2, 2, 3)
    with pytest.raises(ValueError, match='text_id'):
        records[0]['texts'][0] = (5, dict(text_mask=torch.ones(3)))
        _RetrievalLoopMixin.collate_features(records)


def test_shared_metric_on_hand_made_ranks():
    from mplug2.evaluation.metrics.retrieval import ranks_to_metrics, retrieval_ranks
    sim = np.array([[0.9, 0.1, 0.0], [0.8, 0.3, 0.1], [0.1, 0.2, 0.7]])
    ranks = retrieval_ranks(sim, [0, 1, 2])
    assert ranks.tolist() == [0, 1, 0]
    assert ranks_to_metrics(ranks)['R1'] == pytest.approx(200 / 3)


# ------------------------------------------------------------------ bad videos, on_error='skip'
@MODELS.register_module(force=True)
class OracleRetriever(BaseModel):
    """A perfect retriever: video ``v`` is the one-hot of its ``video_idx``, a text the one-hot
    of its video (``txt2vid`` by ``text_id``). It would match a missing video too (the
    placeholder keeps ``video_idx``): only the loop can rank it last."""

    def __init__(self, txt2vid, data_preprocessor=None):
        super().__init__(data_preprocessor=data_preprocessor)
        self.txt2vid = list(txt2vid)
        self.dummy = torch.nn.Parameter(torch.zeros(1))
        self.seen = []  # (video_idx, missing, blank: every channel constant (normalised zeros))

    def forward(self, inputs, data_samples=None, mode='tensor'):
        num_videos = max(self.txt2vid) + 1
        for video, sample in zip(inputs, data_samples):
            self.seen.append((sample.video_idx, bool(sample.get('missing', False)),
                              bool((video.flatten(1).std(1) == 0).all())))
        text_ids = [t for s in data_samples for t in s.text_id]
        return dict(
            visual_feat=torch.eye(num_videos)[[s.video_idx for s in data_samples]],
            text_feat=torch.eye(num_videos)[[self.txt2vid[t] for t in text_ids]],
            text_sample=torch.tensor([i for i, s in enumerate(data_samples) for _ in s.text_id]))

    def predict_all(self, video_feats, text_feats, video_ids=None, reduce=None):
        sim = text_feats['text_feat'] @ video_feats['visual_feat'].t()
        return dict(sim_t2v=sim, sim_v2t=sim.t().contiguous())


@pytest.fixture
def retrieval_with_bad_video(tmp_path):
    """4 videos, 8 texts: video 1 (texts 2, 3, 4) is a corrupt file."""
    import json
    import shutil

    from mplug2.datasets.moving_shapes import generate_moving_shapes
    shapes = tmp_path / 'shapes'
    generate_moving_shapes(str(shapes), num_train=4, num_test=1, num_frames=4, size=32, seed=0)
    videos = tmp_path / 'videos'
    videos.mkdir()
    for i in (0, 2, 3):
        shutil.copy(shapes / 'videos' / f'shapes_train_0000{i}.mp4', videos)
    (videos / 'shapes_train_00001.mp4').write_bytes(b'\x00' * 2048)
    captions = [['A red circle.', 'The circle moves'], ['A BLUE square!', 'a square', 'blue'],
                ['a triangle'], ['a dog', 'a man runs']]
    ann = tmp_path / 'retrieval.jsonl'
    ann.write_text(''.join(json.dumps(dict(clip_name=f'shapes_train_0000{v}', caption=c)) + '\n'
                           for v, c in enumerate(captions)))
    return str(ann), str(videos)


def _retrieval_dataset(ann, videos):
    return dict(type='VideoRetrievalDataset', ann_file=ann, data_prefix=dict(video=videos),
                test_mode=True, on_error='skip',
                pipeline=[dict(type='CleanCaption', max_words=30),
                          dict(type='LoadVideoFrames', num_frames=2, test_mode=True),
                          dict(type='PackMultimodalInputs')])


def test_dataset_placeholder_keeps_the_video_texts_and_ids(retrieval_with_bad_video):
    from mplug2.datasets import VideoRetrievalDataset
    ann, videos = retrieval_with_bad_video
    cfg = _retrieval_dataset(ann, videos)
    cfg.pop('type')
    dataset = VideoRetrievalDataset(**cfg)
    data = dataset[1]
    sample = data['data_samples']
    assert sample.missing and sample.video_idx == 1 and sample.sample_idx == 1
    assert sample.text_id == [2, 3, 4]
    assert sample.text == ['a blue square', 'a square', 'blue']  # cleaned as the others
    assert data['inputs'].shape == dataset[2]['inputs'].shape and not data['inputs'].any()


@pytest.mark.parametrize('batch_size', [1, 3])
def test_bad_video_in_skip_mode_is_ranked_last(tmp_path, retrieval_with_bad_video, batch_size):
    ann, videos = retrieval_with_bad_video
    txt2vid = [0, 0, 1, 1, 1, 2, 3, 3]
    runner = Runner(
        model=dict(type='OracleRetriever', txt2vid=txt2vid,
                   data_preprocessor=dict(type='MPLUG2DataPreprocessor')),
        work_dir=str(tmp_path / 'work'), experiment_name=f'retrieval_bad_{tmp_path.name}',
        test_dataloader=dict(dataset=_retrieval_dataset(ann, videos), batch_size=batch_size,
                             num_workers=0, sampler=dict(type='DefaultSampler', shuffle=False)),
        test_evaluator=dict(type='RetrievalMetric'), test_cfg=dict(type='MPLUG2RetrievalTestLoop'),
        custom_hooks=[dict(type='BadSampleReportHook')], default_scope='mplug2')
    metrics = runner.test()
    seen = sorted(runner.model.seen)  # the placeholder: its own video_idx, blank frames
    assert seen == [(0, False, False), (1, True, True), (2, False, False), (3, False, False)]
    # 8 texts: the 3 of the missing video find it last (rank 4 of 4), the others first
    assert metrics['retrieval/t2v_R1'] == pytest.approx(100 * 5 / 8)
    assert metrics['retrieval/t2v_R5'] == 100
    assert metrics['retrieval/t2v_MeanR'] == pytest.approx((5 * 1 + 3 * 4) / 8)
    # the missing video finds its own texts last: the best at rank 6 of 8
    assert metrics['retrieval/v2t_R1'] == 75 and metrics['retrieval/v2t_R5'] == 75
    assert metrics['retrieval/v2t_MeanR'] == pytest.approx((1 + 1 + 1 + 6) / 4)
    assert metrics['retrieval/missing_videos'] == 1
    assert runner.message_hub.get_info('bad_samples/test_epoch') == 1
    log = next((tmp_path / 'work').rglob('*.log')).read_text()
    assert 'BadSampleReportHook: 1 bad sample(s) skipped during test' in log
    assert 'shapes_train_00001.mp4 (x1)' in log


def test_tiny_mplug2_retriever_with_a_missing_video(tmp_path):
    """The real model: the missing video is left out of the ITM re-ranking and ranked last."""
    vocab = write_vocab(tmp_path / 'vocab.txt')
    model = tiny_mplug2('MPLUG2Retriever', vocab, text_decoder=None,
                        itc_head=dict(type='ITCHead', queue_size=0), k_test=2,
                        data_preprocessor=dict(type='MPLUG2DataPreprocessor'))
    texts = [['a red circle', 'the red circle moving'], ['a blue square'], ['a green triangle'],
             ['a yellow circle', 'a dog'], ['a man runs']]
    torch.manual_seed(0)
    metrics = _runner(tmp_path, model, dict(type='ToyRetrievalDataset', texts=texts, missing=[1]),
                      batch_size=2).test()
    assert metrics['retrieval/missing_videos'] == 1
    # the text of video 1 finds it last (rank 5): it is never in the top 1
    assert metrics['retrieval/t2v_R1'] <= 100 * 6 / 7
    assert metrics['retrieval/v2t_R1'] <= 80 and metrics['retrieval/v2t_R5'] <= 80


def test_rank_missing_last_and_the_metric():
    sim_t2v = torch.tensor([[0.9, 0.1], [0.2, 0.6], [0.2, 0.7]])  # texts x present videos 0, 2
    sim_v2t = sim_t2v.t()
    txt2vid = [0, 1, 2]  # video 1 (text 1) is missing
    full_t2v, full_v2t = _RetrievalLoopMixin.rank_missing_last(sim_t2v, sim_v2t, [0, 2],
                                                              txt2vid, 3)
    assert full_t2v[:, 1].tolist() == [float('-inf')] * 3
    assert full_t2v[:, [0, 2]].tolist() == sim_t2v.tolist()
    assert full_v2t[1].tolist() == [0, float('-inf'), 0]
    from mplug2.evaluation import RetrievalMetric
    metric = RetrievalMetric()
    metric.process(None, [dict(sim_t2v=full_t2v, sim_v2t=full_v2t, txt2vid=txt2vid,
                               missing_videos=[1])])
    result = metric.compute_metrics(metric.results)
    assert result['missing_videos'] == 1
    assert result['t2v_R1'] == pytest.approx(100 * 2 / 3)  # text 1 finds video 1 last
    assert result['v2t_R1'] == pytest.approx(100 * 2 / 3)  # video 1 finds text 1 last
    # the metric ranks a missing video last by itself too (scores that favour it)
    metric = RetrievalMetric()
    metric.process(None, [dict(sim_t2v=torch.eye(3), txt2vid=txt2vid, missing_videos=[1])])
    result = metric.compute_metrics(metric.results)
    assert result['t2v_R1'] == pytest.approx(100 * 2 / 3)
    assert result['t2v_MeanR'] == pytest.approx(5 / 3)


def test_a_replacement_sample_is_refused_with_the_reason():
    sample = DataSample(metainfo=dict(sample_idx=3))
    sample.text, sample.text_id = ['x'], [5]
    sample.skipped_samples = [dict(index=2, filename='v2.mp4', reason='corrupt')]
    feats = dict(visual_feat=torch.zeros(1, 2), text_feat=torch.zeros(1, 2),
                 text_sample=torch.zeros(1, dtype=torch.long))
    with pytest.raises(ValueError, match="another video's texts and text_id.*test_mode=True"):
        _RetrievalLoopMixin.split_records(feats, [sample])
