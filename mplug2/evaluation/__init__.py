"""Evaluation of mplug2: metrics for VideoQA, captioning and retrieval."""
from .metrics import *  # noqa: F401,F403
