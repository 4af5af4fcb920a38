import json

import pytest

import mplug2  # noqa: F401
from mplug2.datasets import (AnnotationError, VideoCaptionDataset, VideoQADataset,
                             VideoRetrievalDataset, load_answer_list)
from mplug2.datasets.transforms import CleanCaption, CleanQuestion


def _jsonl(path, records):
    path.write_text(''.join((r if isinstance(r, str) else json.dumps(r)) + '\n' for r in records))
    return str(path)


def test_videoqa_official_jsonl(tmp_path):
    a = _jsonl(tmp_path / 'a.jsonl', [
        dict(video_id='video1', question='What is the man doing?', answer='cook'),
        dict(video_id='tumblr_x1', question='What/who is on-screen?', answer='dog',
             question_type='what'),
    ])
    b = _jsonl(tmp_path / 'b.jsonl',
               [dict(video_id='video2', question='Who sings?', answer='woman')])
    ds = VideoQADataset([a, b], data_prefix=dict(video=str(tmp_path)), lazy_init=False)
    assert len(ds) == 3
    info = ds.get_data_info(1)
    assert info['question'] == 'What/who is on-screen?'  # as written: the pipeline cleans it
    assert CleanQuestion(max_words=30)(info)['question'] == 'what who is on screen'
    assert info['gt_answer'] == 'dog' and info['answer_weight'] == [1.0]
    assert info['question_type'] == 'what' and info['video_id'] == 'tumblr_x1'
    assert [ds.get_data_info(i)['question_id'] for i in range(3)] == [0, 1, 2]
    assert info['filename'] == str(tmp_path / 'tumblr_x1.mp4')  # nothing on disk: first ext
    (tmp_path / 'tumblr_x1.gif').write_bytes(b'x')
    assert ds.get_data_info(1)['filename'] == str(tmp_path / 'tumblr_x1.gif')
    # word limits of the pipelines: 30 for training, 50 for test
    long_q = ' '.join(['w'] * 60)
    c = _jsonl(tmp_path / 'c.jsonl', [dict(video_id='v', question=long_q, answer='a')])
    assert len(CleanQuestion(30)(VideoQADataset(c).get_data_info(0))['question'].split()) == 30
    assert len(CleanQuestion(50)(VideoQADataset(c, test_mode=True).get_data_info(0))['question']
               .split()) == 50


def test_videoqa_mmaction_json(tmp_path):
    ann = tmp_path / 'msrvtt_qa_test.json'
    ann.write_text(json.dumps([
        dict(question_id=7, video='video7010.mp4', question='what is it?', answer='cat'),
        dict(question_id=8, video='video7011.mp4', question='who?', answer=['man', 'man', 'boy']),
    ]))
    ds = VideoQADataset(str(ann), test_mode=True, data_prefix=dict(video='/videos'))
    first, second = ds.get_data_info(0), ds.get_data_info(1)
    assert first['video_id'] == 'video7010' and first['question_id'] == 7
    assert first['filename'] == '/videos/video7010.mp4'
    assert second['gt_answer'] == ['man', 'boy']
    assert second['answer_weight'] == pytest.approx([2 / 3, 1 / 3])


def test_answer_list_formats(tmp_path):
    (tmp_path / 'l.json').write_text(json.dumps(['a', 'b', 'a']))
    (tmp_path / 'l.txt').write_text('x\ny\n\n')
    _jsonl(tmp_path / 'l.jsonl', [dict(answer='p'), dict(answer='q'), dict(answer='p')])
    assert load_answer_list(str(tmp_path / 'l.json')) == ['a', 'b']
    assert load_answer_list(str(tmp_path / 'l.txt')) == ['x', 'y']
    assert load_answer_list(str(tmp_path / 'l.jsonl')) == ['p', 'q']
    (tmp_path / 'ans2label.json').write_text(json.dumps({'cat': 0, 'man': 1, 'boy': 2}))
    assert load_answer_list(str(tmp_path / 'ans2label.json')) == ['cat', 'man', 'boy']


def test_clean_text_transforms():
    """Text is cleaned in the pipeline: str and list fields, absent keys skipped."""
    results = dict(question='What/who is on-screen?', gt_caption=['A Man, cooking!', 'B  c'],
                   text='The CAT.', other='Kept As Is?')
    assert CleanQuestion(max_words=2)(dict(results))['question'] == 'what who'
    cleaned = CleanCaption(max_words=80)(dict(results))
    assert cleaned['gt_caption'] == ['a man cooking', 'b c'] and cleaned['text'] == 'the cat'
    assert cleaned['question'] == results['question'] and cleaned['other'] == 'Kept As Is?'
    assert CleanCaption(max_words=1, keys='text')(dict(text='one two'))['text'] == 'one'
    assert CleanQuestion(max_words=5)(dict(gt_answer='x')) == dict(gt_answer='x')
    with pytest.raises(TypeError, match="CleanQuestion: 'question' must be a string or a list of "
                                        'strings, got int'):
        CleanQuestion(max_words=5)(dict(question=3))
    with pytest.raises(ValueError, match='max_words must be a positive int, got 0'):
        CleanCaption(max_words=0)
    assert repr(CleanQuestion(30)) == "CleanQuestion(max_words=30, keys=('question',))"


def test_malformed_entries_name_file_and_line(tmp_path):
    bad = _jsonl(tmp_path / 'qa.jsonl', [
        dict(video_id='v1', question='q?', answer='a'),
        dict(video_id='v2', question='q?'),
    ])
    with pytest.raises(AnnotationError, match=r"qa\.jsonl:2: missing field 'answer'"):
        VideoQADataset(bad)
    broken = _jsonl(tmp_path / 'broken.jsonl', [dict(video_id='v', question='q', answer='a'),
                                                '', '{"video_id": "v2", "question": '])
    with pytest.raises(AnnotationError, match=r'broken\.jsonl:3: invalid JSON'):
        VideoQADataset(broken)
    empty_q = _jsonl(tmp_path / 'e.jsonl', [dict(video_id='v', question='  ', answer='a')])
    with pytest.raises(AnnotationError, match=r"e\.jsonl:1: field 'question' must be"):
        VideoQADataset(empty_q)
    entries = tmp_path / 'ret.json'
    entries.write_text(json.dumps([dict(video='a.mp4', caption='x'), dict(video='b.mp4')]))
    with pytest.raises(AnnotationError, match=r"ret\.json\[1\]: missing field 'caption'"):
        VideoRetrievalDataset(str(entries))
    wrong = tmp_path / 'cap.json'
    wrong.write_text(json.dumps([dict(video_id='a', caption=['ok', 3])]))
    with pytest.raises(AnnotationError, match=r"cap\.json\[0\]: field 'caption' must be"):
        VideoCaptionDataset(str(wrong))
    with pytest.raises(FileNotFoundError, match='annotation file not found'):
        VideoCaptionDataset(str(tmp_path / 'missing.jsonl'))


def test_caption_train_and_test(tmp_path):
    train = _jsonl(tmp_path / 'train.jsonl', [
        dict(video_id='video1', caption='A man, cooking!'),
        dict(video_id='video1', caption='someone cooks'),
        dict(video='video2.mp4', caption=['a dog runs', 'a dog is running']),
    ])
    ds = VideoCaptionDataset(train)
    assert len(ds) == 4
    assert ds.get_data_info(0)['gt_caption'] == 'A man, cooking!'
    assert CleanCaption(80)(ds.get_data_info(0))['gt_caption'] == 'a man cooking'
    assert ds.get_data_info(2)['video_id'] == 'video2'
    test = _jsonl(tmp_path / 'test.jsonl', [
        dict(video_id='video1', golden_captions=['A Man cooks.', 'food is made']),
        dict(video_id='video3', caption='a cat'),
        dict(video_id='video1', caption='more'),
    ])
    ds = VideoCaptionDataset(test, test_mode=True)
    assert len(ds) == 2
    assert ds.get_data_info(0)['gt_caption'] == ['a man cooks.', 'food is made', 'more']
    assert ds.get_data_info(1)['gt_caption'] == ['a cat']
    # the train-format file evaluated per video
    assert len(VideoCaptionDataset(train, test_mode=True)) == 2


def test_retrieval_train_test_and_paragraph(tmp_path):
    ann = _jsonl(tmp_path / 'ret.jsonl', [
        dict(clip_name='video9', caption='A cat sleeps.'),
        dict(clip_name='video8', caption='a car'),
        dict(clip_name='video9', caption='the cat naps'),
    ])
    train = VideoRetrievalDataset(ann)
    infos = [CleanCaption(256)(train.get_data_info(i)) for i in range(len(train))]
    assert [(i['video_id'], i['video_idx'], i['text']) for i in infos] == [
        ('video9', 0, 'a cat sleeps'), ('video9', 0, 'the cat naps'), ('video8', 1, 'a car')]
    test = VideoRetrievalDataset(ann, test_mode=True)
    assert len(test) == 2
    meta = test.metainfo
    assert meta['txt2vid'] == [0, 0, 1] and meta['vid2txt'] == [[0, 1], [2]]
    assert meta['num_videos'] == 2 and meta['num_texts'] == 3 and test.num_texts == 3
    assert test.get_data_info(0)['text_id'] == [0, 1]
    assert meta['texts'] == ['A cat sleeps.', 'the cat naps', 'a car']
    assert CleanCaption(256)(test.get_data_info(0))['text'] == ['a cat sleeps', 'the cat naps']

    didemo = tmp_path / 'didemo.json'
    didemo.write_text(json.dumps([
        dict(video='v1.mp4', caption=['A girl jumps.', 'She lands. ']),
        dict(video='v2.mp4', caption=['A dog.']),
    ]))
    para = VideoRetrievalDataset(str(didemo), is_paragraph=True, test_mode=True)
    assert CleanCaption(256)(dict(text=para.metainfo['texts']))['text'] == \
        ['a girl jumps she lands', 'a dog']
    assert para.metainfo['txt2vid'] == [0, 1]


def test_data_root_joins_relative_paths(tmp_path):
    (tmp_path / 'ann').mkdir()
    _jsonl(tmp_path / 'ann' / 'qa.jsonl', [dict(video_id='v1', question='q', answer='a')])
    ds = VideoQADataset('ann/qa.jsonl', data_root=str(tmp_path), data_prefix=dict(video='videos'))
    assert ds.ann_file == str(tmp_path / 'ann' / 'qa.jsonl')
    assert ds.get_data_info(0)['filename'] == str(tmp_path / 'videos' / 'v1.mp4')
    with pytest.raises(ValueError, match='on_error'):
        VideoQADataset('ann/qa.jsonl', data_root=str(tmp_path), on_error='ignore')
