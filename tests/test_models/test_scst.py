"""CIDEr-D reward and self-critical sequence training for the captioner."""
import json
import math

import pytest
import torch

from mplug2.models.multimodal.cider import CiderD
from mplug2.registry import MODELS
from mplug2.structures import DataSample
from tests.conftest import tiny_mplug2

CANDIDATES = ['a red circle moves left', 'a dog plays with a ball', 'the blue square']
REFERENCES = [['a red circle moving left', 'red circle goes left'],
              ['a dog plays with the ball', 'the dog is playing'],
              ['a blue square moving up', 'blue square']]


def test_cider_d_equals_coco_evaluation():
    from pycocoevalcap.cider.cider import Cider
    gts = {i: refs for i, refs in enumerate(REFERENCES)}
    res = {i: [cand] for i, cand in enumerate(CANDIDATES)}
    _, expected = Cider().compute_score(gts, res)
    ours = CiderD().score(CANDIDATES, REFERENCES)
    assert ours == pytest.approx(list(expected), rel=1e-9, abs=1e-12)


# A candidate repeating a weighted n-gram more often than its references ("red" 3 times, "red red"
# twice), and a reference repeating one more often than the candidate: CIDEr-D clips the
# candidate's tf-idf weight to the reference's (the "D"), plain CIDEr does not.
REPEATING = ['red red red circle', 'a dog plays with a ball', 'blue square']
REPEATING_REFERENCES = [['a red circle', 'red circle moving left'],
                        ['a dog plays with the ball ball ball', 'the dog is playing'],
                        ['a blue square moving up', 'blue square']]


def _cider_by_hand(candidate, references, all_references, clip):
    """CIDEr(-D) of one candidate, written out: tf-idf of 1- to 4-grams with the document
    frequency of ``all_references``, (clipped) cosine, Gaussian length penalty, x 10."""
    import math
    from collections import Counter

    def grams(text, n):
        words = text.split()
        return Counter(tuple(words[i:i + n]) for i in range(len(words) - n + 1))

    def tfidf(text, n):
        return {g: c * (math.log(len(all_references)) -
                        math.log(max(1, sum(any(g in grams(r, n) for r in refs) for refs in all_references))))
                for g, c in grams(text, n).items()}

    total = 0.0
    for reference in references:
        penalty = math.exp(-(len(candidate.split()) - len(reference.split())) ** 2 / (2 * 6.0 ** 2))
        for n in range(1, 5):
            hyp, ref = tfidf(candidate, n), tfidf(reference, n)
            dot = sum((min(w, ref.get(g, 0.0)) if clip else w) * ref.get(g, 0.0) for g, w in hyp.items())
            norms = math.sqrt(sum(w * w for w in hyp.values())) * math.sqrt(sum(w * w for w in ref.values()))
            total += (dot / norms if norms else dot) * penalty
    return 10.0 * total / 4 / len(references)


def test_cider_d_clips_repeated_ngrams():
    from pycocoevalcap.cider.cider import Cider
    ours = CiderD().score(REPEATING, REPEATING_REFERENCES)
    _, coco = Cider().compute_score({i: refs for i, refs in enumerate(REPEATING_REFERENCES)},
                                    {i: [cand] for i, cand in enumerate(REPEATING)})
    assert ours == pytest.approx(list(coco), rel=1e-9, abs=1e-12)
    clipped = [_cider_by_hand(c, r, REPEATING_REFERENCES, clip=True)
               for c, r in zip(REPEATING, REPEATING_REFERENCES)]
    unclipped = [_cider_by_hand(c, r, REPEATING_REFERENCES, clip=False)
                 for c, r in zip(REPEATING, REPEATING_REFERENCES)]
    assert ours == pytest.approx(clipped, rel=1e-9)
    assert unclipped[0] > clipped[0] * 1.2  # the data tells CIDEr-D from CIDEr
    assert unclipped[1] == pytest.approx(clipped[1])  # a repeating reference is never clipped
    # with a training-corpus document frequency too
    scorer = CiderD(corpus=REPEATING_REFERENCES)
    assert scorer.score(REPEATING, REPEATING_REFERENCES) == pytest.approx(clipped, rel=1e-9)


def test_cider_d_corpus_reward_does_not_depend_on_the_batch():
    scorer = CiderD(corpus=REFERENCES)
    alone = scorer.score(CANDIDATES[:1], REFERENCES[:1])
    together = scorer.score(CANDIDATES, REFERENCES)
    assert alone[0] == pytest.approx(together[0])
    # A perfect candidate beats a partial one.
    perfect, partial = scorer.score(['a red circle moving left', 'red'], [REFERENCES[0]] * 2)
    assert perfect > partial > 0


def test_cider_d_rejects_bad_input():
    with pytest.raises(ValueError, match='reference sets'):
        CiderD().score(['a'], [])
    with pytest.raises(ValueError, match='no reference'):
        CiderD().score(['a'], [[]])


def _captioner(tiny_vocab, **scst):
    torch.manual_seed(0)
    return MODELS.build(tiny_mplug2('MPLUG2Captioner', tiny_vocab, text_encoder=None, fusion=None,
                                    generation=dict(num_beams=3, max_length=4, min_length=1),
                                    scst=dict(num_samples=3, **scst)))


def _caption_samples():
    return [DataSample(gt_caption=refs) for refs in
            (['a red circle moving left'], ['a blue square moving up', 'blue square'])]


def test_scst_loss_matches_the_formula(tiny_vocab, monkeypatch):
    model = _captioner(tiny_vocab)
    model.eval()  # no dropout so that the recomputation below is exact
    videos = torch.randn(2, 3, 2, 16, 16)
    rewards = [0.5, 1.0, 1.5, 2.0, 2.0, 2.0]  # video 0: advantage -0.5, 0, 0.5; video 1: all 0
    monkeypatch.setattr(model.cider, 'score', lambda cands, refs: rewards)
    out = model.loss(videos, _caption_samples())
    assert out['reward'].item() == pytest.approx(sum(rewards) / 6)

    visual = model.extract_visual_features(videos)
    sequences, _ = model.generate_captions(visual, num_beams=3, num_return_sequences=3)
    mask = (sequences != 0).long()
    labels = sequences.masked_fill(mask == 0, -100)
    labels[:, :model.prompt_length] = -100
    logits = model.text_decoder(sequences, mask, visual.repeat_interleave(3, 0))
    log_probs = logits[:, :-1].log_softmax(-1)
    targets = labels[:, 1:]
    valid = targets != -100
    token_lp = log_probs.gather(-1, targets.clamp(min=0)[..., None])[..., 0] * valid
    mean_lp = token_lp.sum(1) / valid.sum(1)
    advantage = torch.tensor([-0.5, 0.0, 0.5, 0.0, 0.0, 0.0])
    expected = (-mean_lp * advantage).mean()
    torch.testing.assert_close(out['loss_scst'], expected, rtol=1e-4, atol=1e-6)


def test_scst_trains_with_gradients_and_a_corpus(tiny_vocab, tmp_path):
    corpus = tmp_path / 'corpus.json'
    corpus.write_text(json.dumps([['a red circle moving left'], ['a blue square moving up']]))
    model = _captioner(tiny_vocab, corpus=str(corpus))
    out = model.loss(torch.randn(2, 3, 2, 16, 16), _caption_samples())
    assert torch.isfinite(out['loss_scst'])
    out['loss_scst'].backward()
    grads = [p.grad for p in model.text_decoder.parameters() if p.grad is not None]
    assert grads and any(g.abs().sum() > 0 for g in grads)
    assert model.training  # generation switched to eval and back


def test_scst_settings_are_checked(tiny_vocab):
    with pytest.raises(ValueError, match='unknown scst'):
        _captioner(tiny_vocab, beams=3)


def test_scst_corpus_from_the_training_annotations(tiny_vocab, tmp_path):
    """``corpus`` may be the caption annotation file itself: captions grouped by video."""
    lines = [dict(video_id='v0', caption=refs[0]) for refs in REFERENCES[:1]]
    lines += [dict(video_id=f'v{i}', caption=ref) for i, refs in enumerate(REFERENCES) for ref in refs[1:]]
    lines.insert(1, dict(video_id='v1', caption=REFERENCES[1][0]))
    lines.append(dict(video_id='v2', caption=REFERENCES[2][0]))
    annotations = tmp_path / 'caption_train.jsonl'
    annotations.write_text(''.join(json.dumps(line) + '\n' for line in lines))
    model = _captioner(tiny_vocab, corpus=str(annotations))
    assert model._cider is None  # not read when the model is built
    # the corpus holds the 3 reference sets: the document frequency is the one the COCO
    # evaluation takes from the references scored, so the rewards are its CIDEr-D
    from pycocoevalcap.cider.cider import Cider
    _, coco = Cider().compute_score({i: refs for i, refs in enumerate(REFERENCES)},
                                    {i: [cand] for i, cand in enumerate(CANDIDATES)})
    assert model.cider.score(CANDIDATES, REFERENCES) == pytest.approx(list(coco), rel=1e-9)
    assert model.cider.log_num_documents == pytest.approx(math.log(3))
    # scored alone, a candidate keeps its reward (the corpus, not the batch, sets the frequency)
    assert model.cider.score(CANDIDATES[1:2], REFERENCES[1:2]) == pytest.approx([coco[1]], rel=1e-9)
    bad = tmp_path / 'bad.jsonl'
    bad.write_text('{"video_id": "v0"}\n')
    with pytest.raises(Exception, match='bad.jsonl:1'):
        _ = _captioner(tiny_vocab, corpus=str(bad)).cider
