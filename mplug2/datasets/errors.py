"""Exceptions of the data pipeline: every message names the file and the reason."""
from typing import Optional

__all__ = ['AnnotationError', 'SampleLoadError', 'VideoLoadError']


class AnnotationError(ValueError):
    """A malformed annotation.

    ``where`` is ``'file:LINE'`` (jsonl, csv; 1-based) or ``'file[INDEX]'`` (json list;
    0-based) or just ``'file'``; the message is ``'<where>: <reason>'``.
    """

    def __init__(self, where: str, reason: str) -> None:
        self.where = str(where)
        self.reason = reason
        super().__init__(f'{self.where}: {reason}')


class SampleLoadError(RuntimeError):
    """A sample whose media could not be loaded.

    Datasets built with ``on_error='skip'`` catch this family of errors (and only it) and
    replace the sample; any other exception is a bug and propagates.
    """

    def __init__(self, filename: Optional[str], reason: str) -> None:
        self.filename = str(filename) if filename is not None else '<unknown>'
        self.reason = reason
        super().__init__(f'cannot load {self.filename!r}: {reason}')


class VideoLoadError(SampleLoadError):
    """A missing, unreadable, corrupt or empty video (or GIF) file."""
