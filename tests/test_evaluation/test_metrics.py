import numpy as np
import pytest
import torch

import mplug2  # noqa: F401
from mplug2.evaluation import (CaptionMetric, RetrievalMetric, VideoQAAccuracy, java_available,
                               ranks_to_metrics, retrieval_ranks)
from mplug2.structures import DataSample
from tests.conftest import MISSING


def _sample(**fields):
    sample = DataSample()
    for key, value in fields.items():
        sample.set_field(value, key)
    return sample


def test_videoqa_accuracy_exact_match_and_types():
    metric = VideoQAAccuracy()
    metric.process(None, [
        _sample(pred_answer='cat', gt_answer='cat', question_type='what'),
        _sample(pred_answer='Cat', gt_answer='cat', question_type='what'),  # exact: wrong
        _sample(pred_answer='man', gt_answer=['woman', 'man'], question_type='who'),
        _sample(pred_answer='dog', gt_answer='cat', question_type='who'),
    ])
    result = metric.evaluate(4)
    assert result['videoqa/acc'] == pytest.approx(50.0)
    assert result['videoqa/acc_what'] == pytest.approx(50.0)
    assert result['videoqa/acc_who'] == pytest.approx(50.0)

    normalized = VideoQAAccuracy(normalize=True, per_type=False)
    normalized.process(None, [dict(pred_answer=' Cat ', gt_answer='cat'),
                              dict(pred_answer='a  dog', gt_answer='a dog'),
                              dict(pred_answer='x', gt_answer='y')])
    assert normalized.evaluate(3) == {'videoqa/acc': pytest.approx(200 / 3)}
    with pytest.raises(KeyError, match='pred_answer'):
        VideoQAAccuracy().process(None, [_sample(gt_answer='a')])


def test_retrieval_ranks_3x3():
    sim = np.array([[0.9, 0.1, 0.3],
                    [0.8, 0.2, 0.5],
                    [0.1, 0.7, 0.6]])
    assert retrieval_ranks(sim, [0, 1, 2]).tolist() == [0, 2, 1]
    m = ranks_to_metrics(retrieval_ranks(sim, [0, 1, 2]))
    assert m['R1'] == pytest.approx(100 / 3) and m['R5'] == 100 and m['R10'] == 100
    assert m['MedR'] == 2 and m['MeanR'] == 2
    assert retrieval_ranks(sim.T, [[0], [1], [2]]).tolist() == [0, 1, 0]
    # boolean mask and torch input give the same; ties are broken by index
    assert retrieval_ranks(torch.tensor(sim), np.eye(3, dtype=bool)).tolist() == [0, 2, 1]
    assert retrieval_ranks(np.array([[0.5, 0.5, 0.1]]), [1]).tolist() == [1]


def test_retrieval_metric_4_texts_3_videos():
    sim_t2v = np.array([[0.2, 0.9, 0.1],   # text 0 -> video 0: rank 1
                        [0.8, 0.3, 0.4],   # text 1 -> video 0: rank 0
                        [0.5, 0.4, 0.6],   # text 2 -> video 1: rank 2
                        [0.3, 0.2, 0.7]])  # text 3 -> video 2: rank 0
    txt2vid = [0, 0, 1, 2]
    metric = RetrievalMetric()
    metric.dataset_meta = dict(txt2vid=txt2vid)
    metric.process(None, [dict(sim_t2v=torch.tensor(sim_t2v))])
    r = metric.evaluate(1)
    assert r['retrieval/t2v_R1'] == pytest.approx(50.0)
    assert r['retrieval/t2v_R5'] == pytest.approx(100.0)
    assert r['retrieval/t2v_MedR'] == pytest.approx(1.5)  # median of 1-based ranks 2, 1, 3, 1
    assert r['retrieval/t2v_MeanR'] == pytest.approx(1.75)
    # v2t: video 0 has texts {0, 1} (best rank 0), video 1 -> rank 1, video 2 -> rank 0
    assert r['retrieval/v2t_R1'] == pytest.approx(200 / 3)
    assert r['retrieval/v2t_MedR'] == pytest.approx(1.0)
    assert r['retrieval/v2t_MeanR'] == pytest.approx(4 / 3)
    assert r['retrieval/R_mean'] == pytest.approx((50 + 100 + 100 + 200 / 3 + 100 + 100) / 6)

    # blocks of rows with text ids, an explicit v2t matrix and txt2vid in the samples
    metric = RetrievalMetric(topk=(1, ))
    sim_v2t = np.array([[0.0, 0.0, 1.0, 0.0], [0.0, 0.0, 1.0, 0.0], [0.0, 0.0, 0.0, 1.0]])
    metric.process(None, [dict(sim_t2v=sim_t2v[2:], text_ids=[2, 3], txt2vid=txt2vid),
                          dict(sim_t2v=sim_t2v[:2], text_ids=[0, 1], sim_v2t=sim_v2t)])
    r = metric.evaluate(2)
    assert r['retrieval/t2v_R1'] == pytest.approx(50.0)
    assert r['retrieval/v2t_R1'] == pytest.approx(200 / 3)  # video 0 misses: text 2 first
    with pytest.raises(KeyError, match='txt2vid'):
        bare = RetrievalMetric()
        bare.process(None, [dict(sim_t2v=sim_t2v)])
        bare.evaluate(1)


JAVA_MISSING = java_available()


REFS = {'video1': ['a man is cooking food in the kitchen'],
        'video2': ['a woman is singing a song on the stage']}
FAST_SCORERS = ('BLEU', 'ROUGE_L', 'CIDEr')


def _run_caption(preds, scorers):
    metric = CaptionMetric(scorers=scorers)
    metric.process(None, [dict(video_id=v, pred_caption=preds[v], gt_caption=REFS[v])
                          for v in REFS])
    return metric.evaluate(2)


@pytest.mark.skipif(JAVA_MISSING is not None, reason=f'{MISSING}Java is needed: {JAVA_MISSING}')
def test_caption_metric_values():
    perfect = _run_caption({v: r[0] for v, r in REFS.items()}, FAST_SCORERS)
    assert perfect['caption/BLEU_4'] == pytest.approx(100.0, abs=1e-3)
    assert perfect['caption/ROUGE_L'] == pytest.approx(100.0)
    # CIDEr-D: cosine 1 for every n-gram order, times 10, in %
    assert perfect['caption/CIDEr'] == pytest.approx(1000.0, rel=1e-6)
    worse_captions = {'video1': 'a man is cooking', 'video2': 'a person sings on stage'}
    worse = _run_caption(worse_captions, FAST_SCORERS)
    for key in ('BLEU_1', 'BLEU_4', 'ROUGE_L', 'CIDEr'):
        assert 0 <= worse[f'caption/{key}'] < perfect[f'caption/{key}']
    # ROUGE-L by hand: F-measure (beta 1.2) of the longest common subsequence, averaged:
    # 'a man is cooking' (LCS 4 of 4 / 8 words) and 'a person sings on stage' (LCS 3 of 5 / 9)
    def rouge(lcs, candidate, reference, beta=1.2):
        p, r = lcs / candidate, lcs / reference
        return (1 + beta ** 2) * p * r / (r + beta ** 2 * p)
    assert worse['caption/ROUGE_L'] == pytest.approx(50 * (rouge(4, 4, 8) + rouge(3, 5, 9)), rel=1e-6)
    # the other scores are pycocoevalcap's on the same (already tokenised) texts, in %
    from pycocoevalcap.bleu.bleu import Bleu
    from pycocoevalcap.cider.cider import Cider
    gts, res = REFS, {v: [c] for v, c in worse_captions.items()}
    bleu, _ = Bleu(4).compute_score(gts, res, verbose=0)
    cider, _ = Cider().compute_score(gts, res)
    assert [worse[f'caption/BLEU_{n}'] for n in (1, 2, 3, 4)] == pytest.approx(
        [100 * b for b in bleu], rel=1e-9)
    assert worse['caption/CIDEr'] == pytest.approx(100 * cider, rel=1e-9)
    assert worse['caption/BLEU_1'] > 0 and worse['caption/CIDEr'] > 0
    assert 'caption/SPICE' not in worse and 'caption/METEOR' not in worse


@pytest.mark.skipif(JAVA_MISSING is not None, reason=f'{MISSING}Java is needed: {JAVA_MISSING}')
def test_caption_metric_meteor():
    """The full default set; METEOR's Java start-up alone takes ~20 s on 2 cores."""
    result = _run_caption({'video1': REFS['video1'][0], 'video2': 'a person sings on stage'},
                          ('BLEU', 'METEOR', 'ROUGE_L', 'CIDEr'))
    assert set(result) == {f'caption/{k}' for k in (
        'BLEU_1', 'BLEU_2', 'BLEU_3', 'BLEU_4', 'METEOR', 'ROUGE_L', 'CIDEr')}
    assert 30 < result['caption/METEOR'] < 100


def test_caption_metric_reports_missing_java(monkeypatch):
    import mplug2.evaluation.metrics.caption as caption
    monkeypatch.setattr(caption.shutil, 'which', lambda name: None)
    metric = CaptionMetric()
    metric.process(None, [dict(video_id='v', pred_caption='a', gt_caption=['a'])])
    with pytest.raises(RuntimeError, match='needs Java'):
        metric.evaluate(1)
