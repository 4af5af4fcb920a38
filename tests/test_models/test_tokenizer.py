"""Tests of ``MPLUG2Tokenizer`` and the text pre-processing functions."""
import pickle

import pytest
import torch

from mplug2.datasets.transforms.text import pre_caption, pre_question
from mplug2.models.text.tokenizer import MPLUG2Tokenizer
from mplug2.registry import TOKENIZERS
from tests.conftest import logged_warnings

VOCAB = [
    '[PAD]', '[unused0]', '[UNK]', '[CLS]', '[SEP]', '[MASK]', 'a', 'video',
    'of', 'man', 'is', 'yes', 'what', 'cook', '##ing', '##s', 'the', '.',
    'dog', 'run', '##ning'
]
IDS = {t: i for i, t in enumerate(VOCAB)}
CLS, SEP, PAD, MASK, UNK = (IDS[t]
                            for t in ('[CLS]', '[SEP]', '[PAD]', '[MASK]',
                                      '[UNK]'))


@pytest.fixture
def vocab_file(tmp_path):
    path = tmp_path / 'vocab.txt'
    path.write_text('\n'.join(VOCAB) + '\n', encoding='utf-8')
    return path


@pytest.fixture
def tok(vocab_file):
    return MPLUG2Tokenizer(str(vocab_file), vocab_size=len(VOCAB))


def ids(*tokens):
    return [IDS[t] for t in tokens]


class TestTokenizer:

    def test_special_ids_and_sizes(self, tok):
        assert (tok.cls_token_id, tok.sep_token_id, tok.pad_token_id,
                tok.mask_token_id) == (CLS, SEP, PAD, MASK)
        assert tok.vocab_size == len(VOCAB) == len(tok)

    def test_single_sequence_has_cls_and_no_sep(self, tok):
        out = tok('A Man is Cooking.')
        assert set(out) == {'input_ids', 'attention_mask'}
        assert out['input_ids'].tolist() == [
            ids('[CLS]', 'a', 'man', 'is', 'cook', '##ing', '.')
        ]
        assert out['input_ids'].dtype == torch.long
        assert out['attention_mask'].dtype == torch.long
        assert out.input_ids is out['input_ids']  # attribute access

    def test_sep_text_is_special_token(self, tok):
        out = tok(['yes[SEP]', 'the dog is running [SEP]'])
        assert out['input_ids'].tolist() == [
            ids('[CLS]', 'yes', '[SEP]') + [PAD] * 4,
            ids('[CLS]', 'the', 'dog', 'is', 'run', '##ning', '[SEP]'),
        ]
        assert out['attention_mask'].tolist() == [[1, 1, 1, 0, 0, 0, 0],
                                                  [1] * 7]
        # Lower-case "[sep]" is ordinary text.
        assert SEP not in tok('yes [sep]')['input_ids'][0].tolist()
        assert tok('[MASK] dog')['input_ids'].tolist() == [
            ids('[CLS]', '[MASK]', 'dog')
        ]

    def test_unknown_words(self, tok):
        assert tok('zebra dogs')['input_ids'].tolist() == [
            [CLS, UNK, IDS['dog'], IDS['##s']]
        ]

    def test_truncation_counts_cls_and_cuts_sep(self, tok):
        text = 'a video of a man cooking[SEP]'
        full = tok(text)['input_ids'][0].tolist()
        assert full == ids('[CLS]', 'a', 'video', 'of', 'a', 'man', 'cook',
                           '##ing', '[SEP]')
        out = tok([text, 'yes'], max_length=5)
        assert out['input_ids'].tolist() == [full[:5], ids('[CLS]', 'yes') +
                                             [PAD] * 3]
        assert out['attention_mask'].tolist() == [[1] * 5, [1, 1, 0, 0, 0]]
        # No truncation asked, or no max_length: full length.
        assert tok(text, max_length=5, truncation=False)['input_ids'].shape[
            1] == len(full)

    def test_padding_max_length(self, tok):
        out = tok(['yes', 'the dog'], max_length=6, padding='max_length')
        assert out['input_ids'].tolist() == [
            ids('[CLS]', 'yes') + [PAD] * 4,
            ids('[CLS]', 'the', 'dog') + [PAD] * 3
        ]
        assert out['attention_mask'].sum(1).tolist() == [2, 3]
        with pytest.raises(ValueError, match="padding='max_length' needs max_length"):
            tok(['yes'], padding='max_length')

    def test_decode_strips_cls_sep_pad(self, tok):
        out = tok(['the dog is running[SEP]', 'yes[SEP]'])
        assert tok.batch_decode(out['input_ids']) == [
            'the dog is running', 'yes'
        ]
        assert tok.decode(ids('[CLS]', 'a', 'man', '[SEP]', '[PAD]')) == \
            'a man'
        assert tok.decode(torch.tensor(ids('[CLS]', 'cook', '##ing'))) == \
            'cooking'
        # Only [CLS]/[SEP]/[PAD] are removed, like the official code.
        assert tok.decode(ids('[CLS]', '[UNK]', 'dog')) == '[UNK] dog'

    def test_pickle_roundtrip(self, tok):
        tok2 = pickle.loads(pickle.dumps(tok))
        assert tok2('yes[SEP]')['input_ids'].tolist() == [
            ids('[CLS]', 'yes', '[SEP]')
        ]

    def test_directory_and_registry(self, vocab_file):
        tok = TOKENIZERS.build(
            dict(type='MPLUG2Tokenizer', vocab_file=str(vocab_file.parent),
                 vocab_size=None))
        assert isinstance(tok, MPLUG2Tokenizer)
        assert tok.vocab_file == str(vocab_file)

    def test_vocab_size_mismatch(self, vocab_file):
        with pytest.raises(ValueError) as info:
            MPLUG2Tokenizer(str(vocab_file))  # default 30522
        message = str(info.value)
        assert str(vocab_file) in message
        assert '30522' in message and str(len(VOCAB)) in message

    def test_missing_special_token(self, tmp_path):
        path = tmp_path / 'vocab.txt'
        path.write_text('\n'.join(t for t in VOCAB if t != '[MASK]'))
        with pytest.raises(ValueError, match=r'\[MASK\]'):
            MPLUG2Tokenizer(str(path), vocab_size=None)

    def test_non_local_name(self, tmp_path):
        with pytest.raises(FileNotFoundError, match='local'):
            MPLUG2Tokenizer('bert-large-uncased')
        with pytest.raises(FileNotFoundError, match='vocab.txt'):
            MPLUG2Tokenizer(str(tmp_path))  # directory without vocab.txt


class TestPositionLimit:
    """``position_limit``: a hard cap (the rows of a position table), reported when it cuts."""

    TEXT = 'the dog is running'  # [CLS] the dog is run ##ning: 6 tokens

    def test_cut_with_a_warning_counting_the_dropped_tokens(self, tok):
        with logged_warnings() as warnings:
            out = tok([self.TEXT, 'yes', 'a man cooking'], position_limit=4,
                      limit_source='the test table')
        assert out['input_ids'].tolist() == [
            ids('[CLS]', 'the', 'dog', 'is'), ids('[CLS]', 'yes') + [PAD] * 2,
            ids('[CLS]', 'a', 'man', 'cook')]
        assert out['attention_mask'].tolist() == [[1] * 4, [1, 1, 0, 0], [1] * 4]
        assert len(warnings) == 1
        message = warnings[0]
        assert '2 of 3 texts had more than 4 tokens' in message
        assert 'the longest 6' in message and '3 tokens dropped' in message
        assert 'no max_length was asked for, but the test table has 4 positions' in message

    def test_cap_wins_over_max_length_truncation_and_padding(self, tok):
        with logged_warnings() as warnings:
            assert tok(self.TEXT, max_length=10, position_limit=4)['input_ids'].shape == (1, 4)
            assert tok(self.TEXT, max_length=3, truncation=False,
                       position_limit=4)['input_ids'].shape == (1, 3)
            assert tok('yes', max_length=10, padding='max_length',
                       position_limit=4)['input_ids'].tolist() == [ids('[CLS]', 'yes') + [PAD] * 2]
        assert len(warnings) == 2  # max_length=10 and truncation=False: two causes
        assert 'max_length=10 is more than the 4 positions of the position table' in warnings[0]

    def test_no_warning_within_the_limit(self, tok):
        with logged_warnings() as warnings:
            out = tok([self.TEXT, 'yes'], position_limit=6)
            assert tok(self.TEXT, max_length=3, position_limit=4)['input_ids'].shape == (1, 3)
        assert out['input_ids'].shape == (2, 6)
        assert warnings == []

    def test_reports_are_counted_not_repeated(self, tok):
        with logged_warnings() as warnings:
            for _ in range(12):
                tok(self.TEXT, position_limit=5)
        assert len(warnings) == 2  # the 1st and the 10th time
        assert 'this happened 10 times so far: 10 texts cut, 10 tokens dropped' in warnings[1]
        with pytest.raises(ValueError, match='position_limit'):
            tok('yes', position_limit=0)


class TestTextProcessing:

    def test_pre_question(self):
        assert pre_question("What's the MAN doing?", 30) == \
            'whats the man doing'
        assert pre_question('Is it black/white, or red-ish?!', 30) == \
            'is it black white or red ish'
        assert pre_question('a "b" (c) *d* #e: f; g~', 30) == \
            'a b c d e f g'
        assert pre_question('one two three four', 2) == 'one two'
        # Runs of spaces are kept and count as (empty) words, trailing
        # spaces are stripped (official behaviour).
        assert pre_question('a  b c  ', 30) == 'a  b c'
        assert pre_question('a  b c', 3) == 'a  b'

    def test_pre_caption(self):
        assert pre_caption('A man -- cooks (well)!\n', 80) == \
            'a man cooks well'
        assert pre_caption('  <person> rides a bike/car.  ', 80) == \
            'person rides a bike car'
        assert pre_caption('one, two; three: four', 3) == 'one two three'
        assert pre_caption("it's~ the end#", 80) == 'its the end'


def test_matches_slow_bert_tokenizer_with_official_convention(vocab_file, tok):
    """Same ids as a slow BertTokenizer whose single-sequence special tokens
    are ``[CLS] x`` (the official ``build_inputs_with_special_tokens``)."""
    from transformers import BertTokenizer

    class SlowCLSOnly(BertTokenizer):

        def build_inputs_with_special_tokens(self, ids_0, ids_1=None):
            if ids_1 is None:
                return [self.cls_token_id] + ids_0
            return ([self.cls_token_id] + ids_0 + [self.sep_token_id] + ids_1 +
                    [self.sep_token_id])

    slow = SlowCLSOnly(str(vocab_file), do_lower_case=True)
    texts = [
        'The DOG is running[SEP]', 'Ünïcode cooking. the dog!', 'yes [SEP]',
        'a video of a man cooking the dog running [SEP]', '  a\tman\n',
        'a [MASK] dog[SEP][PAD]'
    ]
    for max_length in (None, 4, 8):
        kw = dict(max_length=max_length, truncation=max_length is not None)
        expected = [slow(t, **kw)['input_ids'] for t in texts]
        got = tok(texts, max_length=max_length)
        for row, mask, exp in zip(got['input_ids'].tolist(),
                                  got['attention_mask'].tolist(), expected):
            assert row[:sum(mask)] == exp
