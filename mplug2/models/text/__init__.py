"""Text side of mPLUG-2: BERT building blocks, the text encoder, tokenizer."""
from .bert import (BERT_ARCHS, BertAttention, BertConfig, BertEmbeddings, BertIntermediate,
                   BertLayer, BertLMHead, BertLMPredictionHead, BertOutput,
                   BertPredictionHeadTransform, BertSelfAttention, BertSelfOutput,
                   init_bert_weights)
from .text_encoder import BertTextEncoder
from .tokenizer import MPLUG2Tokenizer, TokenizerOutput

__all__ = [
    'BERT_ARCHS', 'BertConfig', 'BertEmbeddings', 'BertSelfAttention', 'BertSelfOutput',
    'BertAttention', 'BertIntermediate', 'BertOutput', 'BertLayer',
    'BertPredictionHeadTransform', 'BertLMPredictionHead', 'BertLMHead', 'init_bert_weights',
    'BertTextEncoder', 'MPLUG2Tokenizer', 'TokenizerOutput',
]
