"""CleanQuestion / CleanCaption limits: word cuts are reported, bad questions refused."""

import pytest

import mplug2  # noqa: F401
from mplug2.datasets.transforms import CleanCaption, CleanQuestion, pre_caption, pre_question
from tests.conftest import logged_warnings


def test_word_cut_is_reported_with_field_count_and_limit():
    words = ' '.join(f'w{i}' for i in range(60))
    with logged_warnings() as warnings:
        out = CleanQuestion(max_words=50)(dict(question=words + '?', sample_idx=7))
    assert out['question'] == pre_question(words, 50) == ' '.join(words.split()[:50])
    assert len(warnings) == 1
    assert "CleanQuestion: 'question' has 60 words, more than max_words=50" in warnings[0]
    assert 'kept the first 50, dropped 10' in warnings[0] and 'sample_idx 7' in warnings[0]

    with logged_warnings() as warnings:
        out = CleanCaption(max_words=3, keys='text')(dict(text=['A man cooks well.', 'a dog']))
    assert out['text'] == ['a man cooks', 'a dog']
    assert len(warnings) == 1
    assert "CleanCaption: 'text' has 4 words, more than max_words=3" in warnings[0]


def test_word_cut_reports_are_counted_not_repeated():
    transform = CleanCaption(max_words=2)
    with logged_warnings() as warnings:
        for _ in range(12):
            transform(dict(gt_caption='one two three four'))
        transform(dict(text='one two three'))  # another field: its own first report
    assert len(warnings) == 3  # gt_caption: 1st and 10th time; text: 1st time
    assert "'gt_caption' has 4 words" in warnings[0]
    assert "10 'gt_caption' texts cut so far, 20 words dropped" in warnings[1]
    assert "CleanCaption: 'text' has 3 words" in warnings[2]


def test_text_within_the_limit_gives_no_warning():
    with logged_warnings() as warnings:
        assert CleanQuestion(max_words=5)(dict(question='What colour is it?'))['question'] == \
            'what colour is it'
        assert CleanCaption(max_words=4)(dict(gt_caption=['A man  cooks.']))['gt_caption'] == \
            ['a man cooks']
    assert warnings == []


@pytest.mark.parametrize('question', ['?!', '...', ' ?', '"()*#:;~', ''])
def test_question_that_cleans_to_nothing_is_a_value_error(question):
    with pytest.raises(ValueError, match='empty after cleaning') as info:
        CleanQuestion(max_words=50)(dict(question=question, video_id='v1'))
    assert repr(question) in str(info.value) and "video_id 'v1'" in str(info.value)
    with pytest.raises(ValueError, match=r"the question '\?!' is empty"):
        CleanQuestion(max_words=50)(dict(question=['what is it', '?!']))


def test_non_string_question_is_a_type_error():
    with pytest.raises(TypeError, match="'question' must be a string or a list of strings, got int"):
        CleanQuestion(max_words=50)(dict(question=3))
    with pytest.raises(TypeError, match='got NoneType'):
        CleanQuestion(max_words=50)(dict(question=['ok', None]))


def test_functions_unchanged_and_silent():
    with logged_warnings() as warnings:
        assert pre_question('one two three four', 2) == 'one two'
        assert pre_question('a  b c', 3) == 'a  b'
        assert pre_caption('one, two; three: four', 3) == 'one two three'
        assert pre_question('?!', 5) == ''  # the function keeps the official behaviour
    assert warnings == []
