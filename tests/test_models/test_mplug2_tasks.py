"""The composed task models: loss and predict on tiny configurations, images and videos."""
import json
from unittest import mock

import pytest
import torch
import torch.nn.functional as F

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
    predicted = [sample.pred_answer for sample in model(videos, samples, mode='predict')]
    # the beam search of the decoder over [visual; fused question], run by hand
    memory, memory_mask = model.encode_memory(videos, [s.question for s in samples], training=False)
    sequences = model.text_decoder.generate(memory, memory_mask, num_beams=3, max_length=4,
                                            min_length=1, length_penalty=0.6,
                                            bos_token_id=model.tokenizer.cls_token_id,
                                            eos_token_id=model.tokenizer.sep_token_id,
                                            pad_token_id=model.tokenizer.pad_token_id)
    assert predicted == model.tokenizer.batch_decode(sequences)


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


def _sequence_log_likelihood(model, memory, memory_mask, answer):
    """log P(answer [SEP] | [CLS], memory) of every batch row, summed over the tokens, by hand."""
    ids = model.tokenizer([answer + '[SEP]'])['input_ids'].expand(memory.shape[0], -1)
    logits = model.text_decoder(ids, None, memory, memory_mask)
    log_probs = logits[:, :-1].log_softmax(-1).gather(-1, ids[:, 1:, None])[..., 0]
    return log_probs.sum(1)


def test_qa_ranking_mode(tiny_vocab, videos):
    """Ranking = the candidate of highest sequence likelihood among the top-k by first-token
    probability, computed here by hand over every candidate."""
    torch.manual_seed(0)
    answers = ['red', 'blue', 'left', 'right', 'red circle', 'blue square']
    model = MODELS.build(tiny_mplug2('MPLUG2QA', tiny_vocab, answer_list=answers, rank_top_k=2))
    model.eval()
    questions = ['what color', 'which direction']
    memory, memory_mask = model.encode_memory(videos, questions, training=False)
    with torch.no_grad():
        likelihood = torch.stack([_sequence_log_likelihood(model, memory, memory_mask, answer)
                                  for answer in answers], 1)  # (B, C)
        start = model.tokenizer(['x'])['input_ids'][:1, :1].expand(2, 1)  # [CLS]
        first = model.text_decoder(start, None, memory, memory_mask)[:, -1].log_softmax(-1)
    first_ids = [model.tokenizer([answer])['input_ids'][0, 1].item() for answer in answers]
    first = first[:, first_ids]  # (B, C)
    best_of_all = [answers[i] for i in likelihood.argmax(1).tolist()]
    top2 = first.topk(2, dim=1).indices
    best_of_top2 = [answers[top2[b, likelihood[b, top2[b]].argmax()]] for b in range(2)]

    predicted = [s.pred_answer for s in model.predict(videos, _samples(question=questions))]
    assert predicted == best_of_top2
    model.rank_top_k = len(answers)
    assert model.rank_answers(memory, memory_mask) == best_of_all
    worst = [answers[i] for i in likelihood.argmin(1).tolist()]
    assert worst != best_of_all  # the check above tells the best from the worst


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
    with pytest.raises(FileNotFoundError, match=r'missing\.json'):
        MODELS.build(tiny_mplug2('MPLUG2QA', tiny_vocab, answer_list=str(tmp_path / 'missing.json')))


def _captioner(tiny_vocab, **overrides):
    torch.manual_seed(0)
    model = MODELS.build(tiny_mplug2('MPLUG2Captioner', tiny_vocab, text_encoder=None, fusion=None,
                                     **overrides))
    return model.eval()  # no dropout: compare numbers


def _perturb_decoder(model):
    """Far from its near-uniform initial outputs: token losses and generated texts depend on
    the prefix and on the video."""
    generator = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for param in model.text_decoder.parameters():
            param.add_(torch.randn(param.shape, generator=generator) * 0.5)


def test_captioner_loss_masks_prompt_and_predicts(tiny_vocab, videos):
    """The loss is the token mean of the cross-entropy over caption + [SEP] only: the prompt
    tokens ([CLS] a video of) are inputs, never targets (hand-computed here)."""
    model = _captioner(tiny_vocab)
    _perturb_decoder(model)
    assert model.prompt_length == 4  # [CLS] a video of
    samples = _samples(gt_caption=['a red circle moving left', ['a blue square moving up', 'blue square']])
    loss = model(videos, samples, mode='loss')['loss']
    loss.backward()
    visual = model.extract_visual_features(videos)
    total, count = 0, 0
    for index, caption in enumerate(['a red circle moving left', 'a blue square moving up']):
        ids = model.tokenizer([f'a video of {caption}[SEP]'])['input_ids']
        logits = model.text_decoder(ids, None, visual[index:index + 1])
        targets = ids[0, 4:]  # the caption's tokens and [SEP]; position 3 predicts the first one
        assert len(targets) == len(caption.split()) + 1
        total = total + F.cross_entropy(logits[0, 3:-1], targets, reduction='sum')
        count += len(targets)
    torch.testing.assert_close(loss, total / count, rtol=1e-5, atol=1e-6)
    # counting the prompt's tokens, or only its last word (the official quirk), changes the value
    for first_target in (1, 3):
        assert abs(F.cross_entropy(logits[0, first_target - 1:-1], ids[0, first_target:]) -
                   F.cross_entropy(logits[0, 3:-1], ids[0, 4:])) > 1e-2


def _generate_by_hand(model, visual, prefix):
    tokenizer = model.tokenizer
    return model.text_decoder.generate(visual, None, input_ids=prefix, bos_token_id=tokenizer.cls_token_id,
                                       eos_token_id=tokenizer.sep_token_id,
                                       pad_token_id=tokenizer.pad_token_id, **model.generation)


def test_captioner_force_prompt_or_official_decoding(tiny_vocab, videos):
    """force_prompt=True decodes after the prompt; force_prompt=False (the official decoding,
    used by the official-evaluation configs) decodes from [CLS] alone and cuts the generated
    prompt off the text."""
    generation = dict(num_beams=2, max_length=6, min_length=1)
    forced = _captioner(tiny_vocab, generation=generation)
    official = _captioner(tiny_vocab, generation=generation, force_prompt=False)
    _perturb_decoder(forced)
    official.load_state_dict(forced.state_dict())
    visual = forced.extract_visual_features(videos)
    prompt = forced.tokenizer(['a video of'])['input_ids'].expand(2, -1)
    from_prompt = _generate_by_hand(forced, visual, prompt)
    from_cls = _generate_by_hand(forced, visual, None)
    assert torch.equal(from_prompt[:, :4], prompt)
    from_prompt_text = [t.split('a video of')[-1].strip() for t in forced.tokenizer.batch_decode(from_prompt)]
    from_cls_text = [t.split('a video of')[-1].strip() for t in forced.tokenizer.batch_decode(from_cls)]
    assert from_prompt_text != from_cls_text  # the two decodings tell each other apart

    assert [s.pred_caption for s in forced.predict(videos)] == from_prompt_text
    assert [s.pred_caption for s in official.predict(videos)] == from_cls_text
    assert all(not caption.startswith('a video of') for caption in from_prompt_text)

    # the official decoding generates the prompt itself: it is cut off the caption
    generated = official.tokenizer(['a video of red circle[SEP]', 'blue square a video of left[SEP]'])
    with mock.patch.object(official.text_decoder, 'generate',
                           return_value=generated['input_ids']) as spy:
        captions = [s.pred_caption for s in official.predict(videos)]
    assert spy.call_args.kwargs['input_ids'] is None
    assert captions == ['red circle', 'left']


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
