"""The composed task models: loss and predict on tiny configurations, images and videos."""
import json

import pytest
import torch

from mplug2.registry import MODELS
from mplug2.structures import DataSample
from tests.conftest import tiny_mplug2


def _samples(**fields_per_sample):
    """Data samples with the given data fields (text as the pipeline's Clean* leave it)."""
    keys = list(fields_per_sample)
    count = len(fields_per_sample[keys[0]])
    return [DataSample(**{key: fields_per_sample[key][index] for key in keys})
            for index in range(count)]


@pytest.fixture
def videos():
    return torch.randn(2, 3, 3, 16, 16, generator=torch.Generator().manual_seed(0))


def test_qa_loss_and_predict(tiny_vocab, videos):
    torch.manual_seed(0)
    model = MODELS.build(tiny_mplug2('MPLUG2QA', tiny_vocab, generation=dict(num_beams=3, max_length=4)))
    samples = _samples(question=['what color is the shape', 'which direction is it moving'],
                       gt_answer=[['red', 'blue'], 'left'], answer_weight=[[0.5, 0.5], [1.0]])
    losses = model(videos, samples, mode='loss')
    assert losses['loss'].ndim == 0 and losses['loss'] > 0
    losses['loss'].backward()
    assert model.vision_encoder.conv1.weight.grad is not None
    assert model.fusion.layers[0].crossattention.self.query.weight.grad is not None

    model.eval()
    predicted = model(videos, samples, mode='predict')
    assert all(isinstance(sample.pred_answer, str) for sample in predicted)


def test_qa_loss_matches_hand_computed_official_loss(tiny_vocab, videos):
    """sum over tokens per answer, times the answer weight, summed, divided by the batch size."""
    torch.manual_seed(0)
    model = MODELS.build(tiny_mplug2('MPLUG2QA', tiny_vocab))
    model.eval()  # no dropout: compare numbers
    samples = _samples(question=['what color', 'which direction'], gt_answer=[['red', 'blue'], 'left'],
                       answer_weight=[[0.25, 0.75], [1.0]])
    loss = model.loss(videos, samples)['loss']
    memory, memory_mask = model.encode_memory(videos, ['what color', 'which direction'], training=True)
    expected = 0
    for owner, answer, weight in [(0, 'red', 0.25), (0, 'blue', 0.75), (1, 'left', 1.0)]:
        ids = model.tokenizer([answer + '[SEP]'])['input_ids']
        logits = model.text_decoder(ids, None, memory[owner:owner + 1], memory_mask[owner:owner + 1])
        token_ce = torch.nn.functional.cross_entropy(logits[0, :-1], ids[0, 1:], reduction='sum')
        expected = expected + weight * token_ce
    torch.testing.assert_close(loss, expected / 2, rtol=1e-5, atol=1e-5)


def test_qa_ranking_mode(tiny_vocab, videos):
    torch.manual_seed(0)
    answers = ['red', 'blue', 'left', 'right']
    model = MODELS.build(tiny_mplug2('MPLUG2QA', tiny_vocab, answer_list=answers, rank_top_k=2))
    model.eval()
    predicted = model.predict(videos, _samples(question=['what color', 'which direction']))
    assert all(sample.pred_answer in answers for sample in predicted)


def _train_tiny_qa(model, inputs, samples, steps=40):
    optimizer = torch.optim.AdamW(model.parameters(), lr=2e-3)
    losses = []
    for _ in range(steps):
        loss = model.loss(inputs, samples)['loss']
        losses.append(loss.item())
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return losses


def test_qa_learns_a_tiny_task(tiny_vocab):
    """A few steps of AdamW on 2 fixed videos drive the loss down and the answers right."""
    torch.manual_seed(0)
    model = MODELS.build(tiny_mplug2('MPLUG2QA', tiny_vocab, generation=dict(num_beams=2, max_length=3)))
    inputs = torch.stack([torch.full((3, 2, 16, 16), -1.0), torch.full((3, 2, 16, 16), 1.0)])
    samples = _samples(question=['what color', 'what color'], gt_answer=['red', 'blue'])
    losses = _train_tiny_qa(model, inputs, samples)
    assert losses[-1] < losses[0] * 0.2
    model.eval()
    assert [s.pred_answer for s in model.predict(inputs, samples)] == ['red', 'blue']
    assert all('pred_answer' in s.keys() for s in samples)  # a data field, not metainfo


def test_qa_ranks_a_closed_answer_list_from_a_file(tiny_vocab, tmp_path):
    """The answer-list file named by the config reaches the model, which ranks it: a model
    trained on a tiny task picks the right candidate, also when the generation would be
    unconstrained (candidates share first tokens, so the second pass decides)."""
    torch.manual_seed(0)
    inputs = torch.stack([torch.full((3, 2, 16, 16), -1.0), torch.full((3, 2, 16, 16), 1.0),
                          torch.full((3, 2, 16, 16), 0.0)])
    samples = _samples(question=['what color'] * 3, gt_answer=['red', 'blue', 'red circle'])
    trained = MODELS.build(tiny_mplug2('MPLUG2QA', tiny_vocab))
    _train_tiny_qa(trained, inputs, samples, steps=60)

    answer_file = tmp_path / 'answer_list.json'
    candidates = ['green', 'red circle', 'blue', 'red', 'blue square']
    answer_file.write_text(json.dumps(candidates))
    ranker = MODELS.build(tiny_mplug2('MPLUG2QA', tiny_vocab, answer_list=str(answer_file),
                                      rank_top_k=3))
    assert ranker.answer_list == candidates
    ranker.load_state_dict(trained.state_dict())
    ranker.eval()
    predicted = [s.pred_answer for s in ranker.predict(inputs, _samples(question=['what color'] * 3))]
    assert predicted == ['red', 'blue', 'red circle']
    # the ranking keeps the most likely candidate: the least likely one is a different answer
    memory, memory_mask = ranker.encode_memory(inputs, ['what color'] * 3, training=False)
    ranker.rank_top_k = len(candidates)
    assert ranker.rank_answers(memory, memory_mask) == predicted


def test_qa_answer_list_errors(tiny_vocab, tmp_path):
    empty = tmp_path / 'empty.json'
    empty.write_text('[]')
    with pytest.raises(ValueError, match='answer_list is empty'):
        MODELS.build(tiny_mplug2('MPLUG2QA', tiny_vocab, answer_list=[]))
    with pytest.raises(FileNotFoundError):
        MODELS.build(tiny_mplug2('MPLUG2QA', tiny_vocab, answer_list=str(tmp_path / 'missing.json')))


def test_captioner_loss_masks_prompt_and_predicts(tiny_vocab, videos):
    torch.manual_seed(0)
    model = MODELS.build(tiny_mplug2('MPLUG2Captioner', tiny_vocab, text_encoder=None, fusion=None,
                                     generation=dict(num_beams=2, max_length=5, min_length=1)))
    assert model.prompt_length == 4  # [CLS] a video of
    samples = _samples(gt_caption=['a red circle moving left', ['a blue square moving up', 'blue square']])
    loss = model(videos, samples, mode='loss')['loss']
    loss.backward()
    assert loss > 0
    model.eval()
    predicted = model(videos, samples, mode='predict')
    assert all(isinstance(s.pred_caption, str) and not s.pred_caption.startswith('a video of')
               for s in predicted)


def test_captioner_on_images(tiny_vocab):
    torch.manual_seed(0)
    model = MODELS.build(tiny_mplug2('MPLUG2Captioner', tiny_vocab, text_encoder=None, fusion=None,
                                     prompt='', generation=dict(num_beams=1, max_length=3)))
    images = torch.randn(2, 3, 16, 16)
    assert model.extract_visual_features(images).shape == (2, 1 + 16, 32)
    model.eval()
    assert len(model.predict(images)) == 2


def test_visual_projection_only_when_widths_differ(tiny_vocab):
    cfg = tiny_mplug2('MPLUG2Captioner', tiny_vocab, text_encoder=None, fusion=None)
    assert MODELS.build(cfg).visual_projection is None
    cfg['vision_encoder']['arch'] = dict(width=48, layers=1, heads=2, patch_size=4)
    model = MODELS.build(cfg)
    assert model.visual_projection is not None
    assert model.extract_visual_features(torch.randn(1, 3, 16, 16)).shape == (1, 17, 32)


def test_qa_requires_its_modules(tiny_vocab):
    with pytest.raises(ValueError, match='MPLUG2QA needs text_encoder, fusion, text_decoder; '
                                         'configured without fusion'):
        MODELS.build(tiny_mplug2('MPLUG2QA', tiny_vocab, fusion=None))


def test_default_data_preprocessor_normalises_like_clip(tiny_vocab):
    model = MODELS.build(tiny_mplug2('MPLUG2Captioner', tiny_vocab, text_encoder=None, fusion=None))
    assert type(model.data_preprocessor).__name__ == 'MPLUG2DataPreprocessor'
    video = torch.full((3, 2, 16, 16), 255, dtype=torch.uint8)
    sample = DataSample()
    out = model.data_preprocessor(dict(inputs=[video], data_samples=[sample]))['inputs']
    expected = (1.0 - 0.48145466) / 0.26862954  # red channel of a white frame
    torch.testing.assert_close(out[0, 0], torch.full((2, 16, 16), expected), rtol=1e-5, atol=1e-5)
