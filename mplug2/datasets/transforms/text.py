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
"""
import re
from typing import Sequence, Union

from mmcv.transforms import BaseTransform

from mplug2.registry import TRANSFORMS

__all__ = ['pre_question', 'pre_caption', 'CleanQuestion', 'CleanCaption']

# Punctuation deleted by the official pre-processing.
_STRIP_CHARS = re.compile(r"[,.'!?\"()*#:;~]")
_MULTI_SPACE = re.compile(r'\s{2,}')


def _normalise(text: str) -> str:
    text = _STRIP_CHARS.sub('', text.lower())
    return text.replace('-', ' ').replace('/', ' ')


def _keep_words(text: str, max_words: int) -> str:
    words = text.split(' ')
    if len(words) > max_words:
        text = ' '.join(words[:max_words])
    return text


def pre_question(question: str, max_words: int) -> str:
    """Normalise a question and keep its first ``max_words`` words.

    Example: ``pre_question("What's the man doing?", 30)`` gives
    ``'whats the man doing'``.
    """
    question = _normalise(question).rstrip(' ')
    return _keep_words(question, max_words)


def pre_caption(caption: str, max_words: int) -> str:
    """Normalise a caption and keep its first ``max_words`` words.

    Example: ``pre_caption("A man  cooks (well)!\\n", 80)`` gives
    ``'a man cooks well'``.
    """
    caption = _normalise(caption).replace('<person>', 'person')
    caption = _MULTI_SPACE.sub(' ', caption)
    caption = caption.rstrip('\n').strip(' ')
    return _keep_words(caption, max_words)


class _CleanText(BaseTransform):
    """Clean the text fields ``keys`` (str or list of str; absent keys are skipped)."""

    clean = None  # the cleaning function of the subclass
    default_keys: Sequence[str] = ()

    def __init__(self, max_words: int, keys: Union[str, Sequence[str], None] = None) -> None:
        if not isinstance(max_words, int) or max_words < 1:
            raise ValueError(f'max_words must be a positive int, got {max_words!r}')
        self.max_words = max_words
        keys = self.default_keys if keys is None else keys
        self.keys = (keys, ) if isinstance(keys, str) else tuple(keys)

    def _clean_one(self, text, key: str) -> str:
        if not isinstance(text, str):
            raise TypeError(f'{type(self).__name__}: {key!r} must be a string or a list of '
                            f'strings, got {type(text).__name__}')
        return type(self).clean(text, self.max_words)

    def transform(self, results: dict) -> dict:
        for key in self.keys:
            if key not in results:
                continue
            value = results[key]
            if isinstance(value, (list, tuple)):
                results[key] = [self._clean_one(text, key) for text in value]
            else:
                results[key] = self._clean_one(value, key)
        return results

    def __repr__(self) -> str:
        return f'{type(self).__name__}(max_words={self.max_words}, keys={self.keys})'


@TRANSFORMS.register_module()
class CleanQuestion(_CleanText):
    """:func:`pre_question` on ``question`` (official word limits: 30 train, 50 test).

    Args:
        max_words: words kept.
        keys: the fields to clean, default ``('question',)``.
    """

    clean = staticmethod(pre_question)
    default_keys = ('question', )


@TRANSFORMS.register_module()
class CleanCaption(_CleanText):
    """:func:`pre_caption` on ``gt_caption`` and ``text`` (official word limits: 80 for
    captioning, 256 for retrieval).

    Args:
        max_words: words kept.
        keys: the fields to clean, default ``('gt_caption', 'text')``.
    """

    clean = staticmethod(pre_caption)
    default_keys = ('gt_caption', 'text')
