"""Text cleaning of questions and captions, as the official data code, as pipeline transforms.

Text is cleaned in the data pipeline only (:class:`CleanQuestion`, :class:`CleanCaption`):
datasets keep the annotation text as written, and models tokenize what the pipeline gives
them.

Both functions lower-case the text, delete the characters ``,.'!?"()*#:;~``
and turn ``-`` and ``/`` into spaces.  They differ in the details, and the
differences are kept on purpose (they decide which words survive the
``max_words`` cut):

* :func:`pre_question` only strips trailing spaces; runs of spaces are kept
  and count as empty "words" for the ``max_words`` limit (the words are
  ``text.split(' ')``).
* :func:`pre_caption` also maps ``<person>`` to ``person``, collapses every
  run of two or more whitespace characters into one space and strips the ends
  before the cut.

The WordPiece tokenizer ignores whitespace, so the kept spaces never reach the
model; only the word cut can see them.

The transforms warn when they cut a text to ``max_words`` (the functions stay
silent: they also clean evaluation references): the first time per field, then
the 10th, 100th ... time, with the counts so far. :class:`CleanQuestion`
refuses a question that cleans to nothing (``"?!"``, ``"..."``) with a
``ValueError`` naming it.
"""
import logging
import re
from typing import Sequence, Union

from mmcv.transforms import BaseTransform
from mmengine.logging import print_log

from mplug2.registry import TRANSFORMS

__all__ = ['pre_question', 'pre_caption', 'CleanQuestion', 'CleanCaption']

# Punctuation deleted by the official pre-processing.
_STRIP_CHARS = re.compile(r"[,.'!?\"()*#:;~]")
_STRIP_CHARS_TEXT = ',.\'!?"()*#:;~'
_MULTI_SPACE = re.compile(r'\s{2,}')


def _normalise(text: str) -> str:
    text = _STRIP_CHARS.sub('', text.lower())
    return text.replace('-', ' ').replace('/', ' ')


def _keep_words(text: str, max_words: int) -> str:
    words = text.split(' ')
    if len(words) > max_words:
        text = ' '.join(words[:max_words])
    return text


def _normalise_question(question: str) -> str:
    """:func:`pre_question` before the word cut."""
    return _normalise(question).rstrip(' ')


def _normalise_caption(caption: str) -> str:
    """:func:`pre_caption` before the word cut."""
    caption = _normalise(caption).replace('<person>', 'person')
    caption = _MULTI_SPACE.sub(' ', caption)
    return caption.rstrip('\n').strip(' ')


def pre_question(question: str, max_words: int) -> str:
    """Normalise a question and keep its first ``max_words`` words.

    Example: ``pre_question("What's the man doing?", 30)`` gives
    ``'whats the man doing'``.
    """
    return _keep_words(_normalise_question(question), max_words)


def pre_caption(caption: str, max_words: int) -> str:
    """Normalise a caption and keep its first ``max_words`` words.

    Example: ``pre_caption("A man  cooks (well)!\\n", 80)`` gives
    ``'a man cooks well'``.
    """
    return _keep_words(_normalise_caption(caption), max_words)


def _sample_name(results: dict) -> str:
    """``" (sample_idx 3, video_id 'v1')"`` from what ``results`` holds, for messages."""
    parts = [f'{key} {results[key]!r}' for key in ('sample_idx', 'video_id', 'filename')
             if results.get(key) is not None]
    return f' ({", ".join(parts)})' if parts else ''


def _is_report_time(times: int) -> bool:
    """The 1st, 10th, 100th ... time."""
    return str(times).rstrip('0') == '1'


class _CleanText(BaseTransform):
    """Clean the text fields ``keys`` (str or list of str; absent keys are skipped)."""

    normalise = None  # the cleaning function of the subclass, before the word cut
    default_keys: Sequence[str] = ()
    refuse_empty = False  # a text that cleans to nothing is a ValueError

    def __init__(self, max_words: int, keys: Union[str, Sequence[str], None] = None) -> None:
        if not isinstance(max_words, int) or max_words < 1:
            raise ValueError(f'max_words must be a positive int, got {max_words!r}')
        self.max_words = max_words
        keys = self.default_keys if keys is None else keys
        self.keys = (keys, ) if isinstance(keys, str) else tuple(keys)
        self._cuts = {}  # key -> [texts cut, words dropped]

    def _clean_one(self, text, key: str, results: dict) -> str:
        if not isinstance(text, str):
            raise TypeError(f'{type(self).__name__}: {key!r} must be a string or a list of '
                            f'strings, got {type(text).__name__}{_sample_name(results)}')
        cleaned = type(self).normalise(text)
        if self.refuse_empty and not cleaned.strip():
            raise ValueError(
                f'{type(self).__name__}: the {key} {text!r} is empty after cleaning (lower-case, '
                f'delete the characters {_STRIP_CHARS_TEXT}, turn - and / into spaces): nothing '
                f'is left to ask{_sample_name(results)}')
        num_words = len(cleaned.split(' '))
        if num_words > self.max_words:
            self._report_cut(key, num_words, results)
            cleaned = _keep_words(cleaned, self.max_words)
        return cleaned

    def _report_cut(self, key: str, num_words: int, results: dict) -> None:
        # (``__dict__``: a transform pickled before this counter existed has none)
        record = self.__dict__.setdefault('_cuts', {}).setdefault(key, [0, 0])
        record[0] += 1
        record[1] += num_words - self.max_words
        if not _is_report_time(record[0]):
            return
        message = (f'{type(self).__name__}: {key!r} has {num_words} words, more than '
                   f'max_words={self.max_words}: kept the first {self.max_words}, dropped '
                   f'{num_words - self.max_words}{_sample_name(results)}')
        if record[0] > 1:
            message += (f'; {record[0]} {key!r} texts cut so far, {record[1]} words dropped '
                        f'(next report at {record[0] * 10})')
        print_log(message, logger='current', level=logging.WARNING)

    def transform(self, results: dict) -> dict:
        for key in self.keys:
            if key not in results:
                continue
            value = results[key]
            if isinstance(value, (list, tuple)):
                results[key] = [self._clean_one(text, key, results) for text in value]
            else:
                results[key] = self._clean_one(value, key, results)
        return results

    def __repr__(self) -> str:
        return f'{type(self).__name__}(max_words={self.max_words}, keys={self.keys})'


@TRANSFORMS.register_module()
class CleanQuestion(_CleanText):
    """:func:`pre_question` on ``question`` (official word limits: 30 train, 50 test).

    A question cut to ``max_words`` is reported (a warning naming the field, its word count
    and the limit); a question that cleans to nothing (``"?!"``) is a ``ValueError``.

    Args:
        max_words: words kept.
        keys: the fields to clean, default ``('question',)``.
    """

    normalise = staticmethod(_normalise_question)
    default_keys = ('question', )
    refuse_empty = True


@TRANSFORMS.register_module()
class CleanCaption(_CleanText):
    """:func:`pre_caption` on ``gt_caption`` and ``text`` (official word limits: 80 for
    captioning, 256 for retrieval).

    A text cut to ``max_words`` is reported (a warning naming the field, its word count and
    the limit).

    Args:
        max_words: words kept.
        keys: the fields to clean, default ``('gt_caption', 'text')``.
    """

    normalise = staticmethod(_normalise_caption)
    default_keys = ('gt_caption', 'text')
