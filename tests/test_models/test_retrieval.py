"""MPLUG2Retriever: ITC / ITM losses, hard negatives, momentum encoders, queues, re-ranking."""
import math
import os.path as osp

import pytest
import torch
import torch.nn.functional as F
from mmengine.config import Config

from mplug2.registry import MODELS
from mplug2.structures import DataSample
from tests.conftest import tiny_mplug2, write_vocab

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))

#: Settings of the ITC head (``itc_head``); the other overrides of ``build`` are the model's.
ITC_KEYS = ('embed_dim', 'temperature', 'temperature_range', 'queue_size', 'use_momentum',
            'momentum', 'alpha')


def _samples(texts, video_idx):
    return [DataSample(text=text, video_idx=index) for text, index in zip(texts, video_idx)]


def build(vocab, **overrides):
    torch.manual_seed(0)
    overrides.setdefault('queue_size', 0)
    itc_head = dict(type='ITCHead', **{key: overrides.pop(key) for key in ITC_KEYS if key in overrides})
    return MODELS.build(tiny_mplug2('MPLUG2Retriever', vocab, text_decoder=None, itc_head=itc_head,
                                    **overrides))


@pytest.fixture(scope='module')
def vocab(tmp_path_factory):
    return write_vocab(tmp_path_factory.mktemp('vocab') / 'vocab.txt')


@pytest.fixture
def videos():
    return torch.randn(4, 3, 2, 16, 16, generator=torch.Generator().manual_seed(0))


TEXTS = ['a red circle', 'a blue square moving left', 'the red circle', 'a green triangle']
VIDEO_IDX = [0, 1, 0, 2]  # samples 0 and 2 show the same video


# ---------------------------------------------------------------------------------- losses
@pytest.mark.parametrize('queue_size', [0, 8])
def test_loss_shapes_positive_and_backward(vocab, videos, queue_size):
    model = build(vocab, queue_size=queue_size)
    assert model.itc_head.use_momentum == (queue_size > 0)
    losses = model(videos, _samples(TEXTS, VIDEO_IDX), mode='loss')
    assert set(losses) == {'loss_itc', 'loss_itm'}
    for value in losses.values():
        assert value.ndim == 0 and torch.isfinite(value) and value > 0
    sum(losses.values()).backward()
    for param in (model.itc_head.vision_proj.weight, model.itc_head.text_proj.weight,
                  model.itm_head.fc.weight, model.itc_head.temp, model.vision_encoder.conv1.weight,
                  model.fusion.layers[0].crossattention.self.query.weight):
        assert param.grad is not None and param.grad.abs().sum() > 0
    if queue_size:
        assert all(not p.requires_grad and p.grad is None
                   for p in model.momentum_encoders['text_encoder'].parameters())
        assert model.itc_head.queue_ptr.item() == 4
        assert model.itc_head.idx_queue.tolist() == VIDEO_IDX + [-100] * 4


def test_temperature_is_clamped(vocab, videos):
    model = build(vocab, temperature_range=(0.01, 0.5))
    with torch.no_grad():
        model.itc_head.temp.fill_(1e-4)
    model.loss(videos, _samples(TEXTS, VIDEO_IDX))
    assert model.itc_head.temp.item() == pytest.approx(0.01)


def _hand_infonce(sim, positives):
    """-mean_i sum_j targets_ij log softmax(sim_i)_j with targets spread over the positives."""
    total = 0.0
    for row, pos in zip(sim, positives):
        log_z = math.log(sum(math.exp(s) for s in row))
        total += -sum((s - log_z) * p / sum(pos) for s, p in zip(row, pos))
    return total / len(sim)


def test_itc_loss_equals_hand_computed_infonce(vocab):
    model = build(vocab, temperature=0.1)
    visual = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    text = torch.tensor([[0.6, 0.8], [0.8, -0.6]])
    # dot products: v0.t0 = 0.6, v0.t1 = 0.8, v1.t0 = 0.8, v1.t1 = -0.6; / temp 0.1
    sim_v2t = [[6.0, 8.0], [8.0, -6.0]]
    sim_t2v = [[6.0, 8.0], [8.0, -6.0]]  # symmetric here
    expected = (_hand_infonce(sim_v2t, [[1, 0], [0, 1]]) + _hand_infonce(sim_t2v, [[1, 0], [0, 1]])) / 2
    loss = model.itc_head.loss(visual, text, torch.tensor([0, 1]))
    assert loss.item() == pytest.approx(expected, rel=1e-6)
    # row 0: -log(e^6 / (e^6 + e^8)); row 1: -log(e^-6 / (e^8 + e^-6)); both directions alike
    assert expected == pytest.approx((math.log(1 + math.exp(2)) + 14 + math.log(1 + math.exp(-14))) / 2)

    # Two texts of the same video: both pairs are positives, the targets are 1/2, 1/2.
    loss_same = model.itc_head.loss(visual, text, torch.tensor([3, 3]))
    expected_same = (_hand_infonce(sim_v2t, [[1, 1], [1, 1]]) + _hand_infonce(sim_t2v, [[1, 1], [1, 1]])) / 2
    assert loss_same.item() == pytest.approx(expected_same, rel=1e-6)


def test_itc_distillation_targets(vocab):
    """With momentum features: targets = alpha * softmax(sim_m) + (1 - alpha) * ground truth."""
    model = build(vocab, temperature=0.5, use_momentum=True, alpha=0.4)
    visual = F.normalize(torch.tensor([[1.0, 0.2], [0.1, 1.0]]), dim=1)
    text = F.normalize(torch.tensor([[0.9, 0.3], [-0.2, 1.0]]), dim=1)
    visual_m = F.normalize(torch.tensor([[1.0, 0.0], [0.3, 1.0]]), dim=1)
    text_m = F.normalize(torch.tensor([[1.0, 0.5], [0.0, 1.0]]), dim=1)
    idx = torch.tensor([0, 1])
    loss = model.itc_head.loss(visual, text, idx, visual_m, text_m)

    gt = torch.eye(2)
    t_v2t = 0.4 * (visual_m @ text_m.t() / 0.5).softmax(1) + 0.6 * gt
    t_t2v = 0.4 * (text_m @ visual_m.t() / 0.5).softmax(1) + 0.6 * gt
    l_v2t = -(F.log_softmax(visual @ text_m.t() / 0.5, 1) * t_v2t).sum(1).mean()
    l_t2v = -(F.log_softmax(text @ visual_m.t() / 0.5, 1) * t_t2v).sum(1).mean()
    torch.testing.assert_close(loss, (l_v2t + l_t2v) / 2)


def test_alpha_warmup_comes_from_a_hook(vocab):
    """The model never reads the runner: DistillAlphaWarmupHook sets the ramp on the head."""
    from types import SimpleNamespace

    from mplug2.engine.hooks import DistillAlphaWarmupHook
    model = build(vocab, use_momentum=True, alpha=0.4)
    hook = DistillAlphaWarmupHook(warmup_iters=10)
    assert model.itc_head.current_alpha == pytest.approx(0.4)  # no hook: constant alpha
    for iteration, expected in [(0, 0.0), (5, 0.2), (10, 0.4), (50, 0.4)]:
        hook.before_train_iter(SimpleNamespace(model=model, iter=iteration), 0)
        assert model.itc_head.current_alpha == pytest.approx(expected)
    with pytest.raises(RuntimeError, match='DistillAlphaWarmupHook: the model has no ITCHead'):
        hook.before_train(SimpleNamespace(model=torch.nn.Linear(1, 1)))
    with pytest.raises(ValueError, match='warmup_iters must be positive, got 0'):
        DistillAlphaWarmupHook(warmup_iters=0)


# ---------------------------------------------------------------------------------- ITM
def test_hard_negatives_never_share_the_video(vocab):
    model = build(vocab)
    video_idx = torch.tensor([0, 0, 1, 2, 2, 2, 3, 1])
    sim = torch.randn(8, 8, generator=torch.Generator().manual_seed(1)) * 5
    for seed in range(100):
        torch.manual_seed(seed)
        neg_video, neg_text, has_negative = model.itm_head.sample_hard_negatives(sim, video_idx)
        assert has_negative.all()
        assert (video_idx[neg_video] != video_idx).all()
        assert (video_idx[neg_text] != video_idx).all()


def test_hard_negatives_follow_the_similarity(vocab):
    """The hardest negative (highest similarity) is drawn almost always."""
    model = build(vocab)
    video_idx = torch.tensor([0, 1, 2])
    sim_v2t = torch.tensor([[9.0, 5.0, -5.0], [-5.0, 9.0, 5.0], [5.0, -5.0, 9.0]])
    torch.manual_seed(0)
    counts = torch.zeros(3, 3)
    for _ in range(200):
        neg_video, neg_text, _ = model.itm_head.sample_hard_negatives(sim_v2t, video_idx)
        counts[torch.arange(3), neg_text] += 1
    # video 0's hardest text is 1, video 1's is 2, video 2's is 0 (softmax odds e^10 : 1)
    assert counts[0, 1] >= 195 and counts[1, 2] >= 195 and counts[2, 0] >= 195


def test_itm_loss_without_any_negative_scores_positives_only(vocab, videos):
    """A batch showing one video has no negatives: those pairs are ignored, not mislabelled."""
    model = build(vocab)
    model.eval()
    samples = _samples(TEXTS, [5, 5, 5, 5])
    _, _, has_negative = model.itm_head.sample_hard_negatives(torch.zeros(4, 4),
                                                              torch.tensor([5] * 4))
    assert not has_negative.any()
    tokens = model.tokenize_texts(TEXTS)
    visual = model.extract_visual_features(videos)
    text = model.encode_text(tokens['input_ids'], tokens['attention_mask'])
    loss = model.itm_head.loss(model.fuse, visual, text, tokens['attention_mask'],
                               torch.zeros(4, 4), torch.tensor([5] * 4))
    positives = model.itm_logits(visual, text, tokens['attention_mask'])
    torch.testing.assert_close(loss, F.cross_entropy(positives, torch.ones(4, dtype=torch.long)))
    assert torch.isfinite(model.loss(videos, samples)['loss_itm'])


# ---------------------------------------------------------------------------------- momentum
def _momentum_pairs(model):
    """(online, momentum) parameter pairs of the encoders (model) and projections (ITC head)."""
    encoders, projections = model.momentum_encoders, model.itc_head.momentum_projections
    return (list(encoders.pairs({name: getattr(model, name) for name in encoders.names()}))
            + list(projections.pairs({name: getattr(model.itc_head, name)
                                      for name in projections.names()})))


def test_momentum_update_formula_and_copy(vocab, videos):
    model = build(vocab, use_momentum=True, momentum=0.9)
    model.init_weights()
    pairs = _momentum_pairs(model)
    for p, p_m in pairs:
        assert torch.equal(p, p_m)
    assert model.momentum_encoders.names() == ('vision_encoder', 'universal_layers', 'text_encoder')
    assert model.itc_head.momentum_projections.names() == ('vision_proj', 'text_proj')
    assert len(pairs) == sum(1 for name, _ in model.named_parameters()
                             if name.startswith(('vision_encoder.', 'universal_layers.',
                                                 'text_encoder.', 'itc_head.vision_proj.',
                                                 'itc_head.text_proj.')))

    with torch.no_grad():  # move the online weights away from the momentum ones
        for p, _ in pairs:
            p.add_(torch.randn_like(p))
    before = [p_m.clone() for _, p_m in pairs]
    model.momentum_update()
    for (p, p_m), value in zip(pairs, before):
        torch.testing.assert_close(p_m, 0.9 * value + 0.1 * p)
    assert 'fusion' not in model.momentum_encoders  # ITM uses the online fusion only


def test_checkpoint_without_momentum_weights_starts_them_from_the_online_weights(vocab, videos):
    """A checkpoint without momentum state (e.g. a QA or pre-trained model): the momentum
    copies are missing keys, and the first EMA step copies the loaded online weights."""
    source = build(vocab)  # no momentum encoders in its state dict
    torch.manual_seed(1)
    target = build(vocab, queue_size=4)
    target.init_weights()
    missing, _ = target.load_state_dict(source.state_dict(), strict=False)
    assert {key.split('.')[0] for key in missing} == {'momentum_encoders', 'itc_head'}
    assert 'momentum_encoders.steps' in missing
    assert {'itc_head.visual_queue', 'itc_head.text_queue', 'itc_head.idx_queue',
            'itc_head.queue_ptr', 'itc_head.momentum_projections.steps'} <= set(missing)
    assert target.momentum_encoders.steps.item() == 0  # restarted: no momentum state loaded
    target.momentum_update()
    torch.testing.assert_close(target.momentum_encoders['text_encoder'].embeddings.word_embeddings.weight,
                               source.text_encoder.embeddings.word_embeddings.weight, rtol=0, atol=0)
    for p, p_m in _momentum_pairs(target):
        assert torch.equal(p, p_m)


def test_momentum_state_saves_and_loads(vocab, videos):
    """The momentum copies and their step counter are ordinary state: a saved and reloaded
    model continues the EMA exactly."""
    model = build(vocab, queue_size=4, momentum=0.5)
    model.loss(videos, _samples(TEXTS, VIDEO_IDX))
    state = model.state_dict()
    assert state['momentum_encoders.steps'].item() == 1
    assert any(key.startswith('momentum_encoders.copies.text_encoder.') for key in state)
    torch.manual_seed(3)
    clone = build(vocab, queue_size=4, momentum=0.5)
    clone.load_state_dict(state)
    for (_, p_m), (_, q_m) in zip(_momentum_pairs(model), _momentum_pairs(clone)):
        assert torch.equal(p_m, q_m)


# ---------------------------------------------------------------------------------- queue
def test_queue_enqueue_wraps_around(vocab):
    model = build(vocab, queue_size=5, embed_dim=2)

    def enqueue(ids):
        feats = torch.tensor([[float(i), 1.0] for i in ids])
        head.dequeue_and_enqueue(feats, -feats, torch.tensor(ids))

    head = model.itc_head
    enqueue([10, 11, 12])
    assert head.queue_ptr.item() == 3
    assert head.idx_queue.tolist() == [10, 11, 12, -100, -100]
    enqueue([13, 14, 15])  # slots 3, 4, 0
    assert head.queue_ptr.item() == 1
    assert head.idx_queue.tolist() == [15, 11, 12, 13, 14]
    assert head.visual_queue[:, 0].tolist() == [15, 11, 12, 13, 14]
    assert head.text_queue[:, 0].tolist() == [-15, -11, -12, -13, -14]
    enqueue([20, 21, 22, 23, 24, 25, 26])  # more than the queue: the newest 5 survive
    assert sorted(head.idx_queue.tolist()) == [22, 23, 24, 25, 26]
    assert head.queue_ptr.item() == 1
    assert head.idx_queue[1].item() == 22  # written in order from the pointer


def test_queue_needs_momentum(vocab):
    with pytest.raises(ValueError, match='use_momentum'):
        build(vocab, queue_size=8, use_momentum=False)


# ---------------------------------------------------------------------------------- ranking
def test_rerank_topk_orders_by_itm_then_itc(vocab):
    model = build(vocab, k_test=2)
    sim = torch.tensor([[0.9, 0.8, 0.1, 0.5],
                        [0.1, 0.2, 0.3, 0.4]])
    itm = torch.tensor([[1.0, 5.0, 9.0, 2.0],  # stubbed ITM "match" logits of every pair
                        [7.0, 3.0, 0.0, -4.0]])
    calls = []

    def pair_score(queries, items):
        calls.append(len(queries))
        return itm[queries, items]

    scores = model.rerank_topk(sim, pair_score)
    # row 0: ITC top-2 = items 0, 1 -> ITM puts 1 (5.0) before 0 (1.0); then 3, 2 in ITC order
    assert scores[0].argsort(descending=True).tolist() == [1, 0, 3, 2]
    # row 1: ITC top-2 = items 3, 2 -> ITM puts 2 (0.0) before 3 (-4.0); then 1, 0
    assert scores[1].argsort(descending=True).tolist() == [2, 3, 1, 0]
    assert scores[0, 1] == 5.0 and scores[1, 3] == -4.0
    assert calls == [4]  # one batched call for 2 queries x k=2

    model.rerank_score = 'itm+itc'
    scores = model.rerank_topk(sim, lambda q, i: itm[q, i])
    torch.testing.assert_close(scores[0, [0, 1]], torch.tensor([1.9, 5.8]))



def test_tensor_mode_and_predict_all(vocab, videos):
    model = build(vocab, k_test=128, itm_batch_size=5)
    model.eval()
    samples = _samples([['a red circle', 'the red circle'], 'a blue square', [], 'green'],
                       [0, 1, 2, 3])
    feats = model(videos, samples, mode='tensor')
    assert feats['visual_feat'].shape == (4, 256) and feats['visual_embeds'].shape[0] == 4
    assert feats['text_feat'].shape == (4, 256)
    assert feats['text_sample'].tolist() == [0, 0, 1, 3]
    torch.testing.assert_close(feats['visual_feat'].norm(dim=1), torch.ones(4))

    with torch.no_grad():
        result = model.predict_all(feats, feats)
        # k_test >= number of items: every pair gets its ITM "match" logit
        expected = torch.stack([
            model.itm_logits(feats['visual_embeds'],
                             feats['text_embeds'][t].expand(4, -1, -1),
                             feats['text_mask'][t].expand(4, -1))[:, 1] for t in range(4)])
    torch.testing.assert_close(result['sim_t2v'], expected, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(result['sim_v2t'], expected.t(), rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(result['sim_itc'], feats['text_feat'] @ feats['visual_feat'].t())

    # Distributed ranking: each "rank" holds the tokens of its own videos, scores their
    # candidate pairs, and the reduce (a sum over ranks) gives every rank the full result.
    model.k_test = 2
    with torch.no_grad():
        full = model.predict_all(feats, feats)
        shard_ids = [torch.tensor([0, 2]), torch.tensor([1, 3])]

        def shard_feats(ids):
            return dict(visual_feat=feats['visual_feat'],
                        visual_embeds=feats['visual_embeds'][ids])

        partials = [[] for _ in shard_ids]
        for rank, ids in enumerate(shard_ids):  # pass 1: each rank's partial scores
            model.predict_all(shard_feats(ids), feats, video_ids=ids,
                              reduce=lambda t, rank=rank: partials[rank].append(t.clone()))
        for rank, ids in enumerate(shard_ids):  # pass 2: the reduce adds the other rank's
            other = iter(partials[1 - rank])
            result = model.predict_all(shard_feats(ids), feats, video_ids=ids,
                                       reduce=lambda t: t.add_(next(other)))
            for key in ('sim_t2v', 'sim_v2t'):
                torch.testing.assert_close(result[key], full[key])
        # a rank without videos contributes nothing and still composes the whole result
        totals = iter([partials[0][0] + partials[1][0], partials[0][1] + partials[1][1]])
        empty = model.predict_all(dict(visual_feat=feats['visual_feat']), feats,
                                  video_ids=torch.zeros(0, dtype=torch.long),
                                  reduce=lambda t: t.add_(next(totals)))
        for key in ('sim_t2v', 'sim_v2t'):
            torch.testing.assert_close(empty[key], full[key])
    for key in ('sim_t2v', 'sim_v2t'):
        top2 = full[key].topk(2, dim=1).indices.sort(dim=1).values
        itc = full['sim_itc'] if key == 'sim_t2v' else full['sim_itc'].t()
        assert torch.equal(top2, itc.topk(2, dim=1).indices.sort(dim=1).values)
    with pytest.raises(ValueError, match='2 video_ids for 4 rows'):
        model.predict_all(feats, feats, video_ids=torch.tensor([0, 1]))


def test_predict_raises_helpfully(vocab, videos):
    model = build(vocab)
    with pytest.raises(NotImplementedError, match='MPLUG2RetrievalTestLoop'):
        model(videos, _samples(TEXTS, VIDEO_IDX), mode='predict')


@pytest.mark.parametrize('size', ['base', 'large'])
def test_configs(size):
    cfg = Config.fromfile(osp.join(ROOT, 'configs', 'mplug2', f'mplug2-{size}_videoretrieval_model.py'))
    model = cfg.model
    assert model.type == 'MPLUG2Retriever' and model.text_decoder is None
    itc = model.itc_head
    assert (itc.embed_dim, itc.queue_size, itc.momentum, itc.alpha, model.k_test) == \
        (256, 65536, 0.995, 0.4, 128)
