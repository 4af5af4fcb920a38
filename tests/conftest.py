"""Shared fixtures: tiny vocabularies and tiny mPLUG-2 configurations that run in seconds on CPU."""
import contextlib
import logging

import pytest

SPECIAL = ['[PAD]', '[UNK]', '[CLS]', '[SEP]', '[MASK]']
WORDS = ('a video of image photo the shape is moving left right up down red green blue yellow '
         'circle square triangle what which color direction it man dog cat runs plays ball '
         'and with on in ? .').split()
TINY_VOCAB = SPECIAL + WORDS + ['##s', '##ing', '##ed']


def write_vocab(path, tokens=TINY_VOCAB):
    path.write_text('\n'.join(tokens) + '\n')
    return str(path)


@pytest.fixture
def tiny_vocab(tmp_path):
    """A WordPiece vocabulary of ``len(TINY_VOCAB)`` tokens in a temporary file."""
    return write_vocab(tmp_path / 'vocab.txt')


def tiny_bert(vocab_size=len(TINY_VOCAB)):
    return dict(hidden_size=32, num_attention_heads=2, intermediate_size=64, vocab_size=vocab_size,
                max_position_embeddings=64)


def tiny_mplug2(model_type, vocab_file, **overrides):
    """A 2-layer ViT (width 32, patch 4, 16x16 input), 1+2 text layers, 1 fusion, 2 decoder layers."""
    bert = tiny_bert()
    cfg = dict(
        type=model_type,
        vision_encoder=dict(type='DualVisionEncoder', arch=dict(width=32, layers=2, heads=2, patch_size=4),
                            img_size=16),
        universal_layers=dict(type='UniversalLayers', arch=bert, num_layers=2, num_queries=4),
        text_encoder=dict(type='BertTextEncoder', arch=bert, num_layers=1),
        fusion=dict(type='FusionModule', arch=bert, num_layers=1),
        text_decoder=dict(type='TextDecoder', arch=bert, num_layers=2),
        tokenizer=dict(type='MPLUG2Tokenizer', vocab_file=vocab_file, vocab_size=len(TINY_VOCAB)),
    )
    cfg.update(overrides)
    return cfg


@contextlib.contextmanager
def logged_warnings():
    """The messages of the warnings logged with ``print_log(logger='current')`` meanwhile."""
    records = []

    class Collect(logging.Handler):

        def emit(self, record):
            records.append(record.getMessage())

    handler = Collect(logging.WARNING)
    from mmengine.logging import MMLogger
    logger = MMLogger.get_current_instance()
    logger.addHandler(handler)
    try:
        yield records
    finally:
        logger.removeHandler(handler)
