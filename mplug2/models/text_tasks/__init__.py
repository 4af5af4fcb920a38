"""Text-only task models (paper, Table 2): the text encoder and the universal layers, plus
the shared decoder for generation; no vision module runs. One file per task model."""
from .summarizer import *  # noqa: F401,F403  MPLUG2Summarizer (Gigaword)
from .classifier import *  # noqa: F401,F403  MPLUG2TextClassifier (GLUE)
from .span_qa import *  # noqa: F401,F403  MPLUG2SpanQA (SQuAD v1.1 / v2.0)
