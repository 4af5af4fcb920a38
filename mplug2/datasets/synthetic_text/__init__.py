"""Synthetic text data for the text demos (classification, span QA, summarization)."""
from .classification import generate_pair_classification  # noqa: F401  RTE-format demo data
from .span_qa import generate_synthetic_span_qa, span_qa_baselines  # noqa: F401  SQuAD demo
