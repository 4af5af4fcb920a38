import json
import re
import uuid

import pytest
from mmengine.logging import MMLogger

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


# ---------------------------------------------------------------- untrusted annotation files
DATASET_CLASSES = (VideoQADataset, VideoCaptionDataset, VideoRetrievalDataset)
GOOD_RECORD = dict(video_id='v1', question='what?', answer='a', caption='a cat')


@pytest.mark.parametrize('content, line, reason', [
    (b'', 1, 'the file is empty (0 bytes)'),
    (b'\n  \n\t\n', 1, 'the file holds only 3 blank lines'),
    (b'[]', 1, 'the JSON list is empty'),
    (b'\n\n[ ]\n', 3, 'the JSON list is empty'),
])
@pytest.mark.parametrize('ext', ['.json', '.jsonl'])
@pytest.mark.parametrize('cls', DATASET_CLASSES)
def test_empty_annotation_file_names_file_and_line(tmp_path, cls, ext, content, line, reason):
    """Not mmengine's 'need at least one array to concatenate' from deep inside BaseDataset."""
    path = tmp_path / f'empty{ext}'
    path.write_bytes(content)
    if ext == '.jsonl' and content.strip():  # '[]' on a jsonl line: a list, not an object
        line, reason = content.count(b'\n', 0, content.index(b'[')) + 1, \
            'expected a JSON object, got list'
    with pytest.raises(AnnotationError, match=re.escape(f'{path}:{line}: ') + r'(no records: )?'
                       + re.escape(reason)):
        cls(str(path), test_mode=cls is not VideoQADataset)
    # an empty file among good ones is named too
    good = _jsonl(tmp_path / 'good.jsonl', [GOOD_RECORD])
    with pytest.raises(AnnotationError, match=re.escape(f'{path}:{line}: ')):
        cls([good, str(path)])


@pytest.mark.parametrize('cls', DATASET_CLASSES)
def test_record_that_is_not_a_json_object_is_named(tmp_path, cls):
    """The specific message at the record, not a later generic error about a missing field."""
    listed = tmp_path / 'listed.json'
    listed.write_text(json.dumps([GOOD_RECORD, 'v2 what? a', GOOD_RECORD]))
    with pytest.raises(AnnotationError, match=re.escape(f'{listed}[1]: expected a JSON object, got str')):
        cls(str(listed), test_mode=cls is not VideoQADataset)
    lines = _jsonl(tmp_path / 'lines.jsonl', [GOOD_RECORD, '["v2", "what?", "a"]', '7'])
    with pytest.raises(AnnotationError, match=re.escape(f'{lines}:2: expected a JSON object, got list')):
        cls(lines, test_mode=cls is not VideoQADataset)
    numbers = _jsonl(tmp_path / 'numbers.jsonl', [GOOD_RECORD, '7'])
    with pytest.raises(AnnotationError, match=re.escape(f'{numbers}:2: expected a JSON object, got int')):
        cls(numbers, test_mode=cls is not VideoQADataset)


def test_empty_answer_list_file(tmp_path):
    for name, content in [('a.txt', '\n \n'), ('a.json', '{}'), ('b.json', ''), ('a.jsonl', '')]:
        (tmp_path / name).write_text(content)
        with pytest.raises(AnnotationError, match=re.escape(f'{tmp_path / name}:1: no answers')
                           if name != 'a.jsonl' else re.escape(f'{tmp_path / name}:1: no records')):
            load_answer_list(str(tmp_path / name))


def _bad_utf8(path, lines, bad_line):
    """Write ``lines`` (str) with a latin-1 byte in line ``bad_line`` (1-based); returns the
    byte's column in its line and its offset in the file."""
    data = [line.encode('utf-8') for line in lines]
    data[bad_line - 1] = lines[bad_line - 1].encode('latin-1')
    column = data[bad_line - 1].index(b'\xe9')
    offset = sum(len(d) + 1 for d in data[:bad_line - 1]) + column
    path.write_bytes(b'\n'.join(data) + b'\n')
    return column, offset


@pytest.mark.parametrize('cls, name, lines, bad_line', [
    (VideoQADataset, 'qa.jsonl', [
        json.dumps(dict(video_id='v1', question='what?', answer='a')),
        '',
        json.dumps(dict(video_id='v2', question='ou?', answer='café'), ensure_ascii=False),
    ], 3),
    (VideoCaptionDataset, 'cap.json', [
        '[', json.dumps(dict(video_id='v1', caption='a cat')) + ',',
        json.dumps(dict(video_id='v2', caption='a café'), ensure_ascii=False), ']'
    ], 3),
    (VideoRetrievalDataset, 'ret.jsonl', [
        json.dumps(dict(clip_name='vidé', caption='x'), ensure_ascii=False),
        json.dumps(dict(clip_name='v2', caption='y'))
    ], 1),
])
def test_non_utf8_file_names_line_and_byte(tmp_path, cls, name, lines, bad_line):
    column, offset = _bad_utf8(tmp_path / name, lines, bad_line)
    with pytest.raises(AnnotationError, match=re.escape(
            f'{tmp_path / name}:{bad_line}: not valid UTF-8: byte 0xe9 at byte {column} of the '
            f'line (byte {offset} of the file')):
        cls(str(tmp_path / name))


def test_utf8_text_is_read_with_its_lines(tmp_path):
    """A BOM is dropped; U+2028 inside a JSON string neither splits the line nor shifts the
    line numbers of later errors; the answer list gets the same UTF-8 check."""
    path = tmp_path / 'cap.jsonl'
    first = json.dumps(dict(video_id='v1', caption='a\u2028b caf\u00e9'), ensure_ascii=False)
    path.write_bytes(b'\xef\xbb\xbf' + (first + '\n').encode('utf-8') + b'{"video_id": "v2"}\n')
    with pytest.raises(AnnotationError, match=re.escape(f'{path}:2: missing field')):
        VideoCaptionDataset(str(path))
    path.write_bytes(path.read_bytes().rsplit(b'\n', 2)[0] + b'\n')
    assert VideoCaptionDataset(str(path)).get_data_info(0)['gt_caption'] == 'a\u2028b caf\u00e9'
    answers = tmp_path / 'answers.txt'
    answers.write_bytes(b'yes\nno\ncaf\xe9\n')
    with pytest.raises(AnnotationError, match=re.escape(
            f'{answers}:3: not valid UTF-8: byte 0xe9 at byte 3 of the line (byte 10 of')):
        load_answer_list(str(answers))


@pytest.mark.parametrize('record, message', [
    (dict(answer=''), "field 'answer' must be a non-empty string, got ''"),
    (dict(answer=' \t'), "field 'answer' must be a non-empty string, got ' \\t'"),
    (dict(answer=['cook', '  ']), "field 'answer[1]' must be a non-empty string, got '  '"),
    (dict(answers=[]), "field 'answers' must be a string or a non-empty list of strings"),
    (dict(answer='a', question='?!'),
     "field 'question' is empty after the official text cleaning (pre_question('?!') gives ''"),
    (dict(answer='a', question=' ... '), "field 'question' is empty after the official text"),
])
def test_empty_answer_or_question(tmp_path, record, message):
    ann = _jsonl(tmp_path / 'qa.jsonl', [dict(video_id='v0', question='q?', answer='x'),
                                         dict(dict(video_id='v1', question='q?'), **record)])
    with pytest.raises(AnnotationError, match=re.escape(f'{ann}:2: {message}')):
        VideoQADataset(ann)


@pytest.mark.parametrize('cls', [VideoCaptionDataset, VideoRetrievalDataset])
@pytest.mark.parametrize('test_mode', [False, True])
@pytest.mark.parametrize('record, message', [
    (dict(caption=''), "field 'caption' must be a non-empty string, got ''"),
    (dict(caption='   '), "field 'caption' must be a non-empty string, got '   '"),
    (dict(golden_captions=['a dog', '\n']),
     "field 'golden_captions[1]' must be a non-empty string, got '\\n'"),
    (dict(sentence='?!'),
     "field 'sentence' is empty after the official text cleaning (pre_caption('?!') gives ''"),
    (dict(caption=['ok', '-- ...']), "field 'caption[1]' is empty after the official text"),
])
def test_empty_caption_names_file_line_and_field(tmp_path, cls, test_mode, record, message):
    ann = tmp_path / 'cap.json'
    ann.write_text(json.dumps([dict(video='v0.mp4', caption='a cat'),
                               dict(dict(video='v1.mp4'), **record)]))
    with pytest.raises(AnnotationError, match=re.escape(f'{ann}[1]: {message}')):
        cls(str(ann), test_mode=test_mode)


def test_paragraph_checks_the_joined_text(tmp_path):
    ann = _jsonl(tmp_path / 'didemo.jsonl', [dict(video='v1.mp4', caption=['A girl.', '?']),
                                             dict(video='v2.mp4', caption=['...', '!'])])
    with pytest.raises(AnnotationError, match=re.escape(
            f"{ann}:2: field 'caption (the joined paragraph)' is empty after the official")):
        VideoRetrievalDataset(ann, is_paragraph=True)
    ann = _jsonl(tmp_path / 'didemo.jsonl', [dict(video='v1.mp4', caption=['A girl.', '?'])])
    assert VideoRetrievalDataset(ann, is_paragraph=True).texts == ['A girl. ?']


def test_duplicate_question_id_names_both_places(tmp_path):
    ann = tmp_path / 'qa.json'
    ann.write_text(json.dumps([dict(question_id=7, video='v1.mp4', question='what?', answer='a'),
                               dict(question_id=8, video='v1.mp4', question='who?', answer='b'),
                               dict(question_id=7, video='v2.mp4', question='how?', answer='c')]))
    with pytest.raises(AnnotationError, match=re.escape(
            f'{ann}[2]: duplicate question_id 7: already used at {ann}[0]')):
        VideoQADataset(str(ann), test_mode=True)
    # across files, and 7 == '7' (one key of a JSON result file)
    a = _jsonl(tmp_path / 'a.jsonl', [dict(video_id='v', question='q', answer='a', question_id=1),
                                      dict(video_id='v', question='p', answer='a', question_id=7)])
    b = _jsonl(tmp_path / 'b.jsonl',
               [dict(video_id='w', question='q', answer='a', question_id='7')])
    with pytest.raises(AnnotationError, match=re.escape(
            f"{b}:1: duplicate question_id '7': already used at {a}:2")):
        VideoQADataset([a, b])
    # an explicit id colliding with a default one (the record's position)
    c = _jsonl(tmp_path / 'c.jsonl', [dict(video_id='v', question='q', answer='a', question_id=1),
                                      dict(video_id='v', question='p', answer='a')])
    with pytest.raises(AnnotationError, match=re.escape(
            f'{c}:2: duplicate question_id 1 (by default: the record position): already used at '
            f'{c}:1;')):
        VideoQADataset(c)
    # identical records with an id are the same collision
    d = _jsonl(tmp_path / 'd.jsonl',
               [dict(video_id='v', question='q', answer='a', question_id=3)] * 2)
    with pytest.raises(AnnotationError, match=re.escape(f'{d}:2: duplicate question_id 3: '
                                                        f'already used at {d}:1')):
        VideoQADataset(d)
    e = _jsonl(tmp_path / 'e.jsonl',
               [dict(video_id='v', question='q', answer='a', question_id=[1])])
    with pytest.raises(AnnotationError, match=re.escape(f"{e}:1: field 'question_id' must be")):
        VideoQADataset(e)


def _fresh_logger():
    """A logger made current now, so that it writes to the stdout capsys captures."""
    return MMLogger.get_instance(f'test_annotations_{uuid.uuid4().hex}')


def test_repeated_identical_records_are_counted_in_a_warning(tmp_path, capsys):
    _fresh_logger()
    rec = dict(video_id='video1', caption='a man cooks')
    same = '{"caption": "a man cooks",   "video_id": "video1"}'  # other key order and spacing
    ann = _jsonl(tmp_path / 'cap.jsonl', [rec, dict(video_id='video1', caption='food'), same])
    more = _jsonl(tmp_path / 'more.jsonl', [rec])
    train = VideoCaptionDataset([ann, more])
    assert len(train) == 4  # kept
    assert train.repeated_records == [(f'{ann}:3', f'{ann}:1'), (f'{more}:1', f'{ann}:1')]
    logged = capsys.readouterr().out
    assert (f'WARNING - VideoCaptionDataset: 2 annotation record(s) identical to an earlier one, '
            f'kept (their captions count twice) ({ann}:3 repeats {ann}:1; {more}:1 repeats '
            f'{ann}:1)') in logged
    test = VideoCaptionDataset(ann, test_mode=True)
    assert test.get_data_info(0)['gt_caption'] == ['a man cooks', 'food', 'a man cooks']

    ret = VideoRetrievalDataset(ann, test_mode=True)
    assert ret.repeated_records == [(f'{ann}:3', f'{ann}:1')] and ret.num_texts == 3
    assert 'VideoRetrievalDataset: 1 annotation record(s) identical' in capsys.readouterr().out

    # QA without question ids: identical questions are kept (auto-generated QA repeats them)
    qa = _jsonl(tmp_path / 'qa.jsonl', [dict(video_id='v', question='q?', answer='a')] * 2
                + [dict(video_id='v', question='q?', answer='b')])
    ds = VideoQADataset(qa)
    assert len(ds) == 3 and ds.repeated_records == [(f'{qa}:2', f'{qa}:1')]
    assert [ds.get_data_info(i)['question_id'] for i in range(3)] == [0, 1, 2]
    assert 'VideoQADataset: 1 annotation record(s) identical' in capsys.readouterr().out
    # no repeats: no warning
    assert VideoCaptionDataset(more).repeated_records == []
    assert 'identical' not in capsys.readouterr().out
