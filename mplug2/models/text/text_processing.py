"""Text pre-processing of questions and captions, as the official data code.

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

__all__ = ['pre_question', 'pre_caption']

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
