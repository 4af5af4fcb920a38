"""The retrieval loops through an mmengine Runner: features, gathering, ranking, metrics."""
import numpy as np
import pytest
import torch
from mmengine.model import BaseModel
from mmengine.runner import Runner
from torch.utils.data import Dataset

import mplug2  # noqa: F401
from mplug2.engine.runner.retrieval_loop import _RetrievalLoopMixin, stack_padded
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

    def __init__(self, texts, scores=None, test_mode=True):
        self.video_texts = texts
        self.scores = scores
        self.test_mode = test_mode
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


def test_tiny_mplug2_retriever_end_to_end(tmp_path):
    vocab = write_vocab(tmp_path / 'vocab.txt')
    model = tiny_mplug2('MPLUG2Retriever', vocab, text_decoder=None,
                        itc_head=dict(type='ITCHead', queue_size=0), k_test=2,
                        data_preprocessor=dict(type='MPLUG2DataPreprocessor'))
    texts = [['a red circle', 'the red circle moving'], ['a blue square'], ['a green triangle'],
             ['a yellow circle', 'a dog'], ['a man runs']]
    torch.manual_seed(0)
    metrics = _runner(tmp_path, model, dict(type='ToyRetrievalDataset', texts=texts),
                      batch_size=2).test()
    for direction in ('t2v', 'v2t'):
        recalls = [metrics[f'retrieval/{direction}_R{k}'] for k in (1, 5, 10)]
        assert 0 <= recalls[0] <= recalls[1] <= recalls[2] == 100  # 5 videos: R5 = R10 = 100
        assert 1 <= metrics[f'retrieval/{direction}_MedR'] <= 5
    assert 0 <= metrics['retrieval/R_mean'] <= 100


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
    assert 0 <= runner.message_hub.get_scalar('val/retrieval/t2v_R1').current() <= 100


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
