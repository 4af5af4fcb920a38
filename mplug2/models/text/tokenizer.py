"""BERT WordPiece tokenizer with the official mPLUG-2 input conventions.

* A single sequence is encoded as ``[CLS] x`` **without** a trailing
  ``[SEP]``; a pair as ``[CLS] a [SEP] b [SEP]``. Sentence classification (GLUE)
  uses BERT's own input instead, :meth:`MPLUG2Tokenizer.encode_pairs`:
  ``[CLS] a [SEP]`` and ``[CLS] a [SEP] b [SEP]`` with ``token_type_ids``.
* End of sequence is marked by appending the *text* ``"[SEP]"``
  (``answer + '[SEP]'`` encodes as ``[CLS] ans [SEP]``); special-token strings
  written in the text are matched as special tokens (case-sensitively, before
  lower-casing).
* Truncation to ``max_length`` counts the ``[CLS]``: at most
  ``max_length - 1`` word pieces are kept, and an appended ``[SEP]`` is cut
  like any other token when the text is too long (as in the official code).
* Right padding with ``[PAD]`` (id 0 in the BERT vocabulary).
* ``position_limit`` is a hard limit on the number of tokens, for the rows of
  the position table of the module the ids go to: longer texts are cut to it
  whatever ``max_length`` says, with a warning that counts the dropped tokens
  (the first time per cause, then at the 10th, 100th ... time).
* Decoding removes the ``[CLS]``, ``[SEP]`` and ``[PAD]`` strings from the
  decoded text and strips the ends (other special tokens such as ``[UNK]``
  are kept), like the official evaluation code.

The vocabulary is always read from a local ``vocab.txt``: nothing is ever
fetched from the Hugging Face hub.
"""
import logging
import os
from typing import Dict, List, Optional, Sequence, Union

from mmengine.logging import print_log
from torch import Tensor

from mplug2.registry import TOKENIZERS

__all__ = ['MPLUG2Tokenizer', 'TokenizerOutput', 'truncate_pair']

SPECIAL_TOKENS = ('[PAD]', '[UNK]', '[CLS]', '[SEP]', '[MASK]')
# Strings removed from decoded text (official evaluation code).
_DECODE_STRIP = ('[SEP]', '[CLS]', '[PAD]')


class TokenizerOutput(dict):
    """``dict`` of ``input_ids`` / ``attention_mask`` with attribute access
    (``out.input_ids``) and ``to(device)``."""

    def __getattr__(self, name):
        try:
            return self[name]
        except KeyError as exc:
            raise AttributeError(name) from exc

    def to(self, *args, **kwargs) -> 'TokenizerOutput':
        return TokenizerOutput(
            {k: v.to(*args, **kwargs) for k, v in self.items()})


def truncate_pair(tokens_a: List[int], tokens_b: Optional[List[int]],
                  max_tokens: int):
    """BERT's ``_truncate_seq_pair``: drop the last token of the longer sequence (of ``b`` on
    a tie) until both hold at most ``max_tokens`` together; a single sequence is cut to
    ``max_tokens``. Returns new lists ``(a, b)`` (``b`` None when it was)."""
    if tokens_b is None:
        return list(tokens_a[:max(max_tokens, 0)]), None
    len_a, len_b = len(tokens_a), len(tokens_b)
    while len_a + len_b > max_tokens:
        if len_a > len_b:
            len_a -= 1
        else:
            len_b -= 1
    return list(tokens_a[:len_a]), list(tokens_b[:len_b])


def _resolve_vocab_file(vocab_file: str) -> str:
    path = os.path.expanduser(str(vocab_file))
    if os.path.isdir(path):
        candidate = os.path.join(path, 'vocab.txt')
        if not os.path.isfile(candidate):
            raise FileNotFoundError(
                f'MPLUG2Tokenizer: directory {path!r} has no vocab.txt. Pass '
                'the path of a BERT WordPiece vocab.txt (or of a directory '
                'holding one).')
        return candidate
    if os.path.isfile(path):
        return path
    raise FileNotFoundError(
        f'MPLUG2Tokenizer: {vocab_file!r} is not a local file or directory. '
        'This tokenizer never downloads anything: pass the path of a local '
        'BERT WordPiece vocab.txt (e.g. the vocab.txt of bert-large-uncased, '
        '30522 entries) or of a directory containing it.')


@TOKENIZERS.register_module()
class MPLUG2Tokenizer:
    """Uncased BERT WordPiece tokenizer following the official conventions.

    Built on :class:`transformers.BertTokenizerFast` from a local vocabulary
    (see the module docstring for the conventions).

    Args:
        vocab_file (str): path of a ``vocab.txt``, or of a directory holding
            one. Names of hub models are refused (nothing is downloaded).
        vocab_size (int, optional): expected vocabulary size; a mismatch
            raises ``ValueError`` (guards against truncated or placeholder
            vocabularies). ``None`` skips the check. Defaults to 30522
            (``bert-base/large-uncased``).
        do_lower_case (bool): lower-case and strip accents (uncased BERT).
            Defaults to True.

    Example:
        >>> tok = MPLUG2Tokenizer('data/bert-large-uncased/vocab.txt')
        >>> out = tok(['yes[SEP]', 'a video of a dog[SEP]'], max_length=20)
        >>> out['input_ids']       # (2, L) LongTensor, [CLS] ... [SEP] [PAD]
        >>> tok.batch_decode(out['input_ids'])
        ['yes', 'a video of a dog']
    """

    def __init__(self,
                 vocab_file: str,
                 vocab_size: Optional[int] = 30522,
                 do_lower_case: bool = True):
        from tokenizers.processors import TemplateProcessing
        from transformers import BertTokenizerFast

        self.vocab_file = _resolve_vocab_file(vocab_file)
        tokenizer = BertTokenizerFast(
            vocab_file=self.vocab_file,
            do_lower_case=do_lower_case,
            clean_up_tokenization_spaces=True)
        # The file's own entries: transformers appends missing special
        # tokens as "added" tokens, which must not count as present.
        vocab = tokenizer.backend_tokenizer.get_vocab(with_added_tokens=False)
        missing = [t for t in SPECIAL_TOKENS if t not in vocab]
        if missing:
            raise ValueError(
                f'MPLUG2Tokenizer: vocabulary {self.vocab_file!r} lacks the '
                f'special tokens {missing}.')
        if vocab_size is not None and tokenizer.vocab_size != vocab_size:
            raise ValueError(
                f'MPLUG2Tokenizer: vocabulary {self.vocab_file!r} has '
                f'{tokenizer.vocab_size} tokens but vocab_size={vocab_size} '
                'was expected (is it the right, complete vocab.txt? pass '
                'vocab_size=None to skip this check).')
        cls_id, sep_id = vocab['[CLS]'], vocab['[SEP]']
        # Official convention: "[CLS] x" without a trailing [SEP].
        tokenizer.backend_tokenizer.post_processor = TemplateProcessing(
            single='[CLS] $A',
            pair='[CLS] $A [SEP] $B:1 [SEP]:1',
            special_tokens=[('[CLS]', cls_id), ('[SEP]', sep_id)])
        self.tokenizer = tokenizer
        # cause -> [times, texts cut, tokens dropped] (see _warn_position_limit).
        self._position_truncations: Dict[tuple, List[int]] = {}

    # ------------------------------------------------------------------ ids
    @property
    def vocab_size(self) -> int:
        return self.tokenizer.vocab_size

    @property
    def cls_token_id(self) -> int:
        return self.tokenizer.cls_token_id

    @property
    def sep_token_id(self) -> int:
        return self.tokenizer.sep_token_id

    @property
    def pad_token_id(self) -> int:
        return self.tokenizer.pad_token_id

    @property
    def mask_token_id(self) -> int:
        return self.tokenizer.mask_token_id

    @property
    def unk_token_id(self) -> int:
        return self.tokenizer.unk_token_id

    def __len__(self) -> int:
        return len(self.tokenizer)

    def __repr__(self) -> str:
        return (f'{type(self).__name__}(vocab_file={self.vocab_file!r}, '
                f'vocab_size={self.vocab_size})')

    # ------------------------------------------------------------- encoding
    def __call__(self,
                 texts: Union[str, Sequence[str]],
                 max_length: Optional[int] = None,
                 padding: Union[bool, str] = 'longest',
                 truncation: bool = True,
                 add_special_tokens: bool = True,
                 position_limit: Optional[int] = None,
                 limit_source: str = 'the position table') -> Dict[str, Tensor]:
        """Encode a batch of texts.

        Args:
            texts: a string or a sequence of strings.
            max_length: maximum number of tokens, ``[CLS]`` included; with
                ``truncation`` longer texts are cut on the right. ``None``:
                no limit.
            padding: ``'longest'`` (default), ``'max_length'`` (pad to
                ``max_length``, at most ``position_limit``) or ``False`` (all
                texts must then have the same length).
            truncation: cut to ``max_length`` (only used when
                ``max_length`` is given).
            add_special_tokens: prepend ``[CLS]``.
            position_limit: hard limit on the tokens of a text (the rows of
                the position table the ids are embedded with). Texts longer
                than it are cut to it even with ``max_length=None``, a larger
                ``max_length`` or ``truncation=False``, and a warning says how
                many tokens were dropped and why. ``None``: no hard limit.
            limit_source: what ``position_limit`` is, for the warning (e.g.
                ``"the text_encoder's position table
                (max_position_embeddings=512)"``).

        Returns:
            :class:`TokenizerOutput` (a ``dict``) with ``input_ids`` and
            ``attention_mask``, both ``LongTensor (B, L)``, right-padded
            with ``pad_token_id``.
        """
        if isinstance(texts, str):
            texts = [texts]
        texts = list(texts)
        if padding == 'max_length' and max_length is None:
            raise ValueError("padding='max_length' needs max_length")
        if position_limit is not None:
            if not isinstance(position_limit, int) or position_limit < 1:
                raise ValueError(f'position_limit must be a positive int, got {position_limit!r}')
            capped = (not truncation or max_length is None or max_length > position_limit)
            if capped:
                self._check_position_limit(texts, max_length if truncation else None,
                                           position_limit, limit_source, add_special_tokens)
                max_length = position_limit if max_length is None else min(max_length,
                                                                            position_limit)
                truncation = True
        encoded = self.tokenizer(
            texts,
            max_length=max_length,
            padding=padding,
            truncation=bool(truncation) and max_length is not None,
            add_special_tokens=add_special_tokens,
            return_token_type_ids=False,
            return_attention_mask=True,
            return_tensors='pt')
        return TokenizerOutput(
            input_ids=encoded['input_ids'].long(),
            attention_mask=encoded['attention_mask'].long())

    def _check_position_limit(self, texts: List[str], max_length: Optional[int], limit: int,
                              source: str, add_special_tokens: bool) -> None:
        """Warn about the texts longer than ``limit`` tokens (they are about to be cut)."""
        lengths = [len(ids) for ids in self.tokenizer(
            texts, add_special_tokens=add_special_tokens, truncation=False, padding=False,
            return_attention_mask=False, return_token_type_ids=False)['input_ids']]
        over = [length for length in lengths if length > limit]
        if not over:
            return
        cause = (limit, source, max_length)
        # (``__dict__``: a tokenizer pickled before this counter existed has none)
        record = self.__dict__.setdefault('_position_truncations', {}).setdefault(
            cause, [0, 0, 0])
        record[0] += 1
        record[1] += len(over)
        record[2] += sum(length - limit for length in over)
        times = record[0]
        if str(times).rstrip('0') != '1':  # report the 1st, 10th, 100th ... time only
            return
        if max_length is None:
            why = (f'no max_length was asked for, but {source} has {limit} positions and a '
                   'longer text cannot be embedded; shorten the text (e.g. with the max_words '
                   'of CleanQuestion / CleanCaption)')
        else:
            why = (f'max_length={max_length} is more than the {limit} positions of {source}; '
                   f'set the max_length (e.g. max_question_tokens) to at most {limit}')
        message = (f'{type(self).__name__}: {len(over)} of {len(texts)} texts had more than '
                   f'{limit} tokens ([CLS] included; the longest {max(over)}): truncated to '
                   f'{limit} tokens, {sum(length - limit for length in over)} tokens dropped. '
                   f'Cause: {why}')
        if times > 1:
            message += (f' (this happened {times} times so far: {record[1]} texts cut, '
                        f'{record[2]} tokens dropped; next report at {times * 10} times)')
        print_log(message, logger='current', level=logging.WARNING)

    # --------------------------------------------------------- pair encoding
    def encode_pairs(self,
                     texts_a: Union[str, Sequence[str]],
                     texts_b: Union[None, str, Sequence[str]] = None,
                     max_length: Optional[int] = None,
                     padding: str = 'longest',
                     position_limit: Optional[int] = None,
                     limit_source: str = 'the position table') -> Dict[str, Tensor]:
        """BERT's input for sentence and sentence-pair classification (GLUE).

        * a pair: ``[CLS] a [SEP] b [SEP]``, ``token_type_ids`` 0 up to and including the
          first ``[SEP]``, 1 for ``b`` and its ``[SEP]``;
        * a single sentence (``texts_b=None``): ``[CLS] a [SEP]``, ``token_type_ids`` all 0
          (BERT's classification input; unlike :meth:`__call__`, which follows mPLUG-2's
          ``[CLS] x`` convention for generation and retrieval).

        Truncation to ``max_length`` tokens (special tokens included) is BERT's
        (``_truncate_seq_pair`` of ``run_classifier.py``): one word piece at a time is
        dropped from the end of the longer of ``a`` and ``b`` (from ``b`` on a tie), so the
        special tokens are never cut. ``position_limit`` caps the length like in
        :meth:`__call__` (a warning counts the dropped word pieces).

        Args:
            texts_a: the first sentences (or one string).
            texts_b: the second sentences, as many as ``texts_a``; None: single sentences.
            max_length: at most this many tokens per row, special tokens included; None:
                no limit.
            padding: ``'longest'`` (default) or ``'max_length'``.
            position_limit, limit_source: see :meth:`__call__`.

        Returns:
            :class:`TokenizerOutput` with ``input_ids``, ``attention_mask`` and
            ``token_type_ids``, ``LongTensor (B, L)``, right-padded (padding: id
            ``pad_token_id``, mask 0, type 0).
        """
        import torch
        texts_a = [texts_a] if isinstance(texts_a, str) else list(texts_a)
        if texts_b is not None:
            texts_b = [texts_b] if isinstance(texts_b, str) else list(texts_b)
            if len(texts_b) != len(texts_a):
                raise ValueError(f'encode_pairs: {len(texts_a)} first sentences but '
                                 f'{len(texts_b)} second sentences')
        if padding not in ('longest', 'max_length'):
            raise ValueError(f"padding must be 'longest' or 'max_length', got {padding!r}")
        if padding == 'max_length' and max_length is None:
            raise ValueError("padding='max_length' needs max_length")
        num_special = 2 if texts_b is None else 3
        if max_length is not None and max_length < num_special + 1:
            raise ValueError(f'max_length={max_length} leaves no room for the text: '
                             f'{num_special} special tokens per row')
        if position_limit is not None and (not isinstance(position_limit, int)
                                           or position_limit < num_special + 1):
            raise ValueError(f'position_limit must be an int of at least {num_special + 1}, '
                             f'got {position_limit!r}')
        pieces_a = self._word_piece_ids(texts_a)
        pieces_b = self._word_piece_ids(texts_b) if texts_b is not None else None
        limit = max_length
        if position_limit is not None and (limit is None or limit > position_limit):
            self._warn_pair_position_limit(pieces_a, pieces_b, num_special, max_length,
                                           position_limit, limit_source)
            limit = position_limit
        rows, types = [], []
        cls_id, sep_id = self.cls_token_id, self.sep_token_id
        for index, a in enumerate(pieces_a):
            b = pieces_b[index] if pieces_b is not None else None
            if limit is not None:
                a, b = truncate_pair(a, b, limit - num_special)
            ids = [cls_id] + a + [sep_id]
            type_ids = [0] * len(ids)
            if b is not None:
                ids += b + [sep_id]
                type_ids += [1] * (len(b) + 1)
            rows.append(ids)
            types.append(type_ids)
        width = max(len(row) for row in rows) if rows else 0
        if padding == 'max_length':
            width = max_length if limit is None else min(max_length, limit)
        pad_id = self.pad_token_id
        input_ids = torch.tensor([row + [pad_id] * (width - len(row)) for row in rows],
                                 dtype=torch.long).view(len(rows), width)
        attention_mask = torch.tensor([[1] * len(row) + [0] * (width - len(row)) for row in rows],
                                      dtype=torch.long).view(len(rows), width)
        token_type_ids = torch.tensor([t + [0] * (width - len(t)) for t in types],
                                      dtype=torch.long).view(len(rows), width)
        return TokenizerOutput(input_ids=input_ids, attention_mask=attention_mask,
                               token_type_ids=token_type_ids)

    def _word_piece_ids(self, texts: List[str]) -> List[List[int]]:
        """Word-piece ids of every text, without special tokens."""
        if not texts:
            return []
        return [list(ids) for ids in self.tokenizer(
            texts, add_special_tokens=False, truncation=False, padding=False,
            return_attention_mask=False, return_token_type_ids=False)['input_ids']]

    def _warn_pair_position_limit(self, pieces_a, pieces_b, num_special: int,
                                  max_length: Optional[int], limit: int, source: str) -> None:
        """Warn about the rows longer than ``limit`` tokens (:meth:`encode_pairs` is about to
        cut them), counted like :meth:`_check_position_limit`'s warnings."""
        lengths = [len(a) + num_special + (len(pieces_b[i]) if pieces_b is not None else 0)
                   for i, a in enumerate(pieces_a)]
        over = [length for length in lengths if length > limit]
        if not over:
            return
        cause = ('pairs', limit, source, max_length)
        record = self.__dict__.setdefault('_position_truncations', {}).setdefault(
            cause, [0, 0, 0])
        record[0] += 1
        record[1] += len(over)
        record[2] += sum(length - limit for length in over)
        times = record[0]
        if str(times).rstrip('0') != '1':  # report the 1st, 10th, 100th ... time only
            return
        asked = ('no max_length was asked for' if max_length is None else
                 f'max_length={max_length} is more than the {limit} positions')
        message = (f'{type(self).__name__}.encode_pairs: {len(over)} of {len(lengths)} rows had '
                   f'more than {limit} tokens (special tokens included; the longest {max(over)}): '
                   f'truncated to {limit} tokens, {sum(length - limit for length in over)} word '
                   f'pieces dropped. Cause: {asked}, and {source} has {limit} positions')
        if times > 1:
            message += (f' (this happened {times} times so far: {record[1]} rows cut, '
                        f'{record[2]} word pieces dropped)')
        print_log(message, logger='current', level=logging.WARNING)

    def tokenize(self, text: str) -> List[str]:
        """Word pieces of ``text`` (no ``[CLS]``)."""
        return self.tokenizer.tokenize(text)

    def convert_tokens_to_ids(self, tokens):
        return self.tokenizer.convert_tokens_to_ids(tokens)

    def convert_ids_to_tokens(self, ids):
        return self.tokenizer.convert_ids_to_tokens(ids)

    # ------------------------------------------------------------- decoding
    def decode(self, ids: Union[Tensor, Sequence[int]]) -> str:
        """Official decoding: decode all tokens, then delete the
        ``[SEP]``/``[CLS]``/``[PAD]`` strings and strip the ends."""
        if isinstance(ids, Tensor):
            ids = ids.tolist()
        text = self.tokenizer.decode(list(ids), skip_special_tokens=False)
        for token in _DECODE_STRIP:
            text = text.replace(token, '')
        return text.strip()

    def batch_decode(
            self, ids: Union[Tensor, Sequence[Sequence[int]]]) -> List[str]:
        """:meth:`decode` of every row."""
        if isinstance(ids, Tensor):
            ids = ids.tolist()
        return [self.decode(row) for row in ids]
