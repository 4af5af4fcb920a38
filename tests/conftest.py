"""Shared fixtures: tiny vocabularies and tiny mPLUG-2 configurations that run in seconds on CPU.

No silent skips in CI: where ``CI=true`` is set, a test (or a whole test file) skipped because a
dependency the project installs is missing fails instead (see :func:`missing_dependency`), so that
e.g. an mmcv-lite install cannot skip all of detection unnoticed. Locally such tests still skip.
"""
import contextlib
import glob
import logging
import os
import re

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

#: Prefix of the skip reasons that name a missing project dependency which ``importorskip``
#: cannot (a command such as Java, or a package found by other means): ``pytest.skip(MISSING +
#: 'Java ...')``. Skips for other reasons (an upstream fix made a workaround a no-op, a platform
#: feature) keep skipping in CI and must say why.
MISSING = 'missing project dependency: '

#: Import names of the distributions in requirements/ whose import name differs.
_IMPORT_NAMES = {'mmaction2': 'mmaction', 'scikit_learn': 'sklearn', 'opencv_python': 'cv2',
                 'pillow': 'PIL', 'pyyaml': 'yaml'}


def project_dependencies() -> set:
    """Top-level import names of every package pinned in requirements/*.txt (what
    tools/install.sh installs), plus OpenCV, which mmcv brings."""
    names = {'cv2'}
    for path in glob.glob(os.path.join(ROOT, 'requirements', '*.txt')):
        with open(path, encoding='utf-8') as f:
            for line in f:
                match = re.match(r'\s*([A-Za-z0-9][A-Za-z0-9._-]*)', line.split('#')[0])
                if match:
                    name = re.sub(r'[-.]', '_', match.group(1)).lower()
                    names.add(_IMPORT_NAMES.get(name, name))
    return names


def missing_dependency(reason: str):
    """The project dependency a skip reason says is missing, or None for any other skip:
    ``importorskip``'s "could not import 'mmcv.ops': ..." of a package of
    :func:`project_dependencies`, or a reason starting with :data:`MISSING`."""
    reason = str(reason)
    if reason.startswith(('Skipped: ', 'SKIP: ')):
        reason = reason.split(': ', 1)[1]
    if reason.startswith(MISSING):
        return reason[len(MISSING):]
    match = re.match(r"could not import '([^']+)'", reason)
    if match and match.group(1).split('.')[0] in project_dependencies():
        return match.group(1)
    return None


def _fail_skip_in_ci(report) -> None:
    """Turn ``report`` (a skip whose reason is a missing project dependency) into a failure
    when the CI environment variable is ``true``."""
    if os.environ.get('CI', '').lower() != 'true' or not report.skipped:
        return
    if hasattr(report, 'wasxfail'):  # an expected failure, not a skip
        return
    longrepr = report.longrepr
    reason = longrepr[2] if isinstance(longrepr, tuple) and len(longrepr) == 3 else str(longrepr)
    dependency = missing_dependency(reason)
    if dependency is None:
        return
    report.outcome = 'failed'
    report.longrepr = (f'CI=true: skipped for a missing project dependency ({dependency}); the '
                       f'project installs it (tools/install.sh, requirements/), so CI must have '
                       f'it. Skip reason: {reason}')


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    _fail_skip_in_ci(outcome.get_result())


@pytest.hookimpl(hookwrapper=True)
def pytest_make_collect_report(collector):
    """Module-level ``importorskip`` (the whole file skipped) too."""
    outcome = yield
    _fail_skip_in_ci(outcome.get_result())


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
