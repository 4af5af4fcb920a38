"""BERT building blocks shared by the text side of mPLUG-2.

mPLUG-2 (Xu et al., ICML 2023) builds four modules from the same post-LN BERT
layer: the text encoder, the universal layers, the fusion module and the shared
text decoder. This file holds that layer and its parts, written top to bottom
like a Hugging Face modeling file:

    BertConfig            sizes and dropout rates ('base' / 'large' presets)
    BertEmbeddings        word + absolute position + token type, LayerNorm, dropout
    BertSelfAttention     q/k/v projections + scaled_dot_product_attention
    BertSelfOutput        dense + dropout + residual LayerNorm
    BertAttention         the two above (self- or cross-attention)
    BertIntermediate      dense + exact (erf) GELU
    BertOutput            dense + dropout + residual LayerNorm
    BertLayer             self-attention, optional cross-attention, feed-forward
    BertLMHead            cls.predictions: transform + decoder (the word embeddings) + bias
    BertStack             base of the four modules: BERT random init, where their
                          weights are in a BERT checkpoint (``bert_weight_map``)

Parameter names inside a layer are the Hugging Face / official ones
(``attention.self.query``, ``crossattention.output.LayerNorm``,
``intermediate.dense``, ``output.dense`` ...), so that checkpoints map onto these
modules by prefix renames only.

Attention masks. Every mask is passed around as a boolean tensor broadcastable
to ``(B, 1, L_query, L_key)`` where ``True`` means "may attend". Right before
``scaled_dot_product_attention`` it becomes an additive float mask in the dtype
of the queries, with ``torch.finfo(dtype).min`` at masked positions. The
official code adds ``(1 - m) * -10000`` (self-attention) and ``-1e9`` (``-1e4``
in fp16) for cross-attention; for softmax all of these mean "weight exactly 0
up to float rounding", so the outputs agree. A large finite value (instead of
``-inf``) keeps rows whose keys are all masked finite instead of NaN, and
building the mask from booleans once (instead of summing several additive
masks) avoids ``min + min = -inf``.
"""
from dataclasses import asdict, dataclass, fields
from typing import List, Optional, Tuple, Union

import torch
import torch.nn.functional as F
from mmengine.model import BaseModule
from torch import nn
from torch.utils.checkpoint import checkpoint

# Sizes of the two BERT models mPLUG-2 uses (bert-base-uncased, bert-large-uncased).
BERT_ARCHS = {
    'base': dict(hidden_size=768, num_attention_heads=12, intermediate_size=3072),
    'large': dict(hidden_size=1024, num_attention_heads=16, intermediate_size=4096),
}


@dataclass
class BertConfig:
    """Sizes and regularisation of a BERT stack.

    Build one with :meth:`from_arch` from a preset name (``'base'``,
    ``'large'``), a dict of the fields below (optionally with ``arch='base'``
    to start from a preset and override some fields) or another config.
    """
    hidden_size: int
    num_attention_heads: int
    intermediate_size: int
    vocab_size: int = 30522
    max_position_embeddings: int = 512
    type_vocab_size: int = 2
    layer_norm_eps: float = 1e-12
    hidden_dropout_prob: float = 0.1
    attention_probs_dropout_prob: float = 0.1
    pad_token_id: int = 0
    initializer_range: float = 0.02

    def __post_init__(self):
        if self.hidden_size % self.num_attention_heads != 0:
            raise ValueError(
                f'hidden_size ({self.hidden_size}) must be a multiple of '
                f'num_attention_heads ({self.num_attention_heads})')

    @classmethod
    def from_arch(cls, arch: Union[str, dict, 'BertConfig']) -> 'BertConfig':
        if isinstance(arch, BertConfig):
            return cls(**asdict(arch))
        if isinstance(arch, str):
            if arch not in BERT_ARCHS:
                raise KeyError(f'unknown BERT arch {arch!r}; presets: {sorted(BERT_ARCHS)}')
            return cls(**BERT_ARCHS[arch])
        if isinstance(arch, dict):
            arch = dict(arch)
            preset = arch.pop('arch', None)
            values = dict(BERT_ARCHS[preset]) if preset is not None else {}
            values.update(arch)
            known = {f.name for f in fields(cls)}
            unknown = sorted(set(values) - known)
            if unknown:
                raise TypeError(f'unknown BertConfig fields: {unknown}')
            return cls(**values)
        raise TypeError(f'arch must be a str, a dict or a BertConfig, got {type(arch)}')

    @property
    def head_dim(self) -> int:
        return self.hidden_size // self.num_attention_heads


# --------------------------------------------------------------------------- #
# Masks
# --------------------------------------------------------------------------- #
def padding_mask(attention_mask: Optional[torch.Tensor]) -> Optional[torch.Tensor]:
    """(B, L_key) 0/1 mask -> boolean (B, 1, 1, L_key), True = may attend."""
    if attention_mask is None:
        return None
    return attention_mask[:, None, None, :].bool()


def causal_padding_mask(attention_mask: Optional[torch.Tensor], query_length: int,
                        past_length: int, device: torch.device) -> torch.Tensor:
    """Decoder self-attention mask: causal AND padding.

    Query ``i`` (absolute position ``past_length + i``) may attend to key ``j``
    iff ``j <= past_length + i`` and key ``j`` is not padding. ``attention_mask``
    covers the past and the current tokens: ``(B, past_length + query_length)``.
    Returns a boolean mask of shape (B or 1, 1, query_length, past_length + query_length).
    """
    key_length = past_length + query_length
    query_positions = torch.arange(past_length, key_length, device=device)
    key_positions = torch.arange(key_length, device=device)
    allowed = key_positions[None, :] <= query_positions[:, None]  # (Lq, Lk)
    allowed = allowed[None, None]
    if attention_mask is not None:
        if attention_mask.shape[-1] != key_length:
            raise ValueError(
                f'decoder attention_mask must cover past + current tokens '
                f'({key_length}), got shape {tuple(attention_mask.shape)}')
        allowed = allowed & padding_mask(attention_mask)
    return allowed


def additive_mask(mask: Optional[torch.Tensor], dtype: torch.dtype) -> Optional[torch.Tensor]:
    """Boolean "may attend" mask -> additive float mask in ``dtype``."""
    if mask is None:
        return None
    zeros = torch.zeros(mask.shape, dtype=dtype, device=mask.device)
    return zeros.masked_fill(~mask, torch.finfo(dtype).min)


# --------------------------------------------------------------------------- #
# Embeddings
# --------------------------------------------------------------------------- #
class BertEmbeddings(nn.Module):
    """Word + absolute position + token type embeddings, LayerNorm, dropout.

    ``position_ids`` are computed on the fly (no ``position_ids`` buffer), so
    that cached decoding can start them at the cache length.
    """

    def __init__(self, config: BertConfig):
        super().__init__()
        self.word_embeddings = nn.Embedding(
            config.vocab_size, config.hidden_size, padding_idx=config.pad_token_id)
        self.position_embeddings = nn.Embedding(config.max_position_embeddings, config.hidden_size)
        self.token_type_embeddings = nn.Embedding(config.type_vocab_size, config.hidden_size)
        self.LayerNorm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.dropout = nn.Dropout(config.hidden_dropout_prob)

    def forward(self, input_ids: torch.Tensor, token_type_ids: Optional[torch.Tensor] = None,
                past_length: int = 0) -> torch.Tensor:
        seq_length = input_ids.shape[1]
        position_ids = torch.arange(
            past_length, past_length + seq_length, device=input_ids.device)[None]
        if token_type_ids is None:
            token_type_ids = torch.zeros_like(input_ids)
        embeddings = (self.word_embeddings(input_ids)
                      + self.position_embeddings(position_ids)
                      + self.token_type_embeddings(token_type_ids))
        embeddings = self.LayerNorm(embeddings)
        return self.dropout(embeddings)


# --------------------------------------------------------------------------- #
# Attention
# --------------------------------------------------------------------------- #
class BertSelfAttention(nn.Module):
    """Multi-head attention core: q/k/v projections and SDPA (scale 1/sqrt(head_dim)).

    Self-attention: keys/values come from ``hidden_states``; with a cache the
    new keys/values are appended to ``past_key_value``.
    Cross-attention: keys/values come from ``key_value_states`` (width
    ``encoder_width``); with a cache they are read from ``past_key_value`` and
    the memory is not projected again.
    """

    def __init__(self, config: BertConfig, is_cross_attention: bool = False,
                 encoder_width: Optional[int] = None):
        super().__init__()
        self.is_cross_attention = is_cross_attention
        self.num_attention_heads = config.num_attention_heads
        self.head_dim = config.head_dim
        key_value_width = config.hidden_size
        if is_cross_attention and encoder_width is not None:
            key_value_width = encoder_width
        self.query = nn.Linear(config.hidden_size, config.hidden_size)
        self.key = nn.Linear(key_value_width, config.hidden_size)
        self.value = nn.Linear(key_value_width, config.hidden_size)
        self.attention_dropout = config.attention_probs_dropout_prob

    def split_heads(self, x: torch.Tensor) -> torch.Tensor:
        batch_size, length, _ = x.shape
        x = x.view(batch_size, length, self.num_attention_heads, self.head_dim)
        return x.transpose(1, 2)  # (B, heads, L, head_dim)

    def forward(
        self,
        hidden_states: torch.Tensor,
        attention_mask: Optional[torch.Tensor] = None,
        key_value_states: Optional[torch.Tensor] = None,
        past_key_value: Optional[Tuple[torch.Tensor, torch.Tensor]] = None,
        use_cache: bool = False,
    ) -> Tuple[torch.Tensor, Optional[Tuple[torch.Tensor, torch.Tensor]]]:
        batch_size, query_length, _ = hidden_states.shape
        query = self.split_heads(self.query(hidden_states))

        if self.is_cross_attention:
            if past_key_value is not None:
                key, value = past_key_value
            else:
                if key_value_states is None:
                    raise ValueError('cross-attention needs key_value_states or a cache')
                key = self.split_heads(self.key(key_value_states))
                value = self.split_heads(self.value(key_value_states))
        else:
            key = self.split_heads(self.key(hidden_states))
            value = self.split_heads(self.value(hidden_states))
            if past_key_value is not None:
                key = torch.cat([past_key_value[0].to(key.dtype), key], dim=2)
                value = torch.cat([past_key_value[1].to(value.dtype), value], dim=2)

        key_rows = key.shape[0]
        if self.is_cross_attention and key_rows != batch_size:
            # A memory shared by ``groups`` consecutive query rows (beam search: the beams of
            # one item): fold the groups into the query length instead of tiling the memory.
            # Every query row still attends to its own item's keys only.
            if batch_size % key_rows:
                raise ValueError(f'{batch_size} query rows cannot share a memory of '
                                 f'{key_rows} rows')
            groups = batch_size // key_rows
            query = query.reshape(key_rows, groups, self.num_attention_heads, query_length,
                                  self.head_dim).transpose(1, 2).reshape(
                                      key_rows, self.num_attention_heads,
                                      groups * query_length, self.head_dim)
            if attention_mask is not None and attention_mask.shape[0] not in (1, key_rows):
                raise ValueError('the memory mask must have one row per memory row')
        context = F.scaled_dot_product_attention(
            query, key.to(query.dtype), value.to(query.dtype),
            attn_mask=additive_mask(attention_mask, query.dtype),
            dropout_p=self.attention_dropout if self.training else 0.0)
        if context.shape[0] != batch_size:  # unfold the groups: (B, heads, g * Lq, d)
            context = context.view(key_rows, self.num_attention_heads, batch_size // key_rows,
                                   query_length, self.head_dim).permute(0, 2, 3, 1, 4)
        else:
            context = context.transpose(1, 2)
        context = context.reshape(batch_size, query_length, -1)
        present = (key, value) if use_cache else None
        return context, present


class BertSelfOutput(nn.Module):
    """Attention output projection + dropout + residual LayerNorm (post-LN)."""

    def __init__(self, config: BertConfig):
        super().__init__()
        self.dense = nn.Linear(config.hidden_size, config.hidden_size)
        self.LayerNorm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.dropout = nn.Dropout(config.hidden_dropout_prob)

    def forward(self, hidden_states: torch.Tensor, input_tensor: torch.Tensor) -> torch.Tensor:
        hidden_states = self.dropout(self.dense(hidden_states))
        return self.LayerNorm(hidden_states + input_tensor)


class BertAttention(nn.Module):
    """``LN(x + Dropout(Dense(Attention(x, kv))))``: a self- or cross-attention block."""

    def __init__(self, config: BertConfig, is_cross_attention: bool = False,
                 encoder_width: Optional[int] = None):
        super().__init__()
        self.self = BertSelfAttention(config, is_cross_attention, encoder_width)
        self.output = BertSelfOutput(config)

    def forward(self, hidden_states, attention_mask=None, key_value_states=None,
                past_key_value=None, use_cache=False):
        context, present = self.self(hidden_states, attention_mask, key_value_states,
                                     past_key_value, use_cache)
        return self.output(context, hidden_states), present


# --------------------------------------------------------------------------- #
# Feed-forward and layer
# --------------------------------------------------------------------------- #
class BertIntermediate(nn.Module):
    """First FFN projection with exact (erf) GELU."""

    def __init__(self, config: BertConfig):
        super().__init__()
        self.dense = nn.Linear(config.hidden_size, config.intermediate_size)

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        return F.gelu(self.dense(hidden_states))


class BertOutput(nn.Module):
    """Second FFN projection + dropout + residual LayerNorm (post-LN)."""

    def __init__(self, config: BertConfig):
        super().__init__()
        self.dense = nn.Linear(config.intermediate_size, config.hidden_size)
        self.LayerNorm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.dropout = nn.Dropout(config.hidden_dropout_prob)

    def forward(self, hidden_states: torch.Tensor, input_tensor: torch.Tensor) -> torch.Tensor:
        hidden_states = self.dropout(self.dense(hidden_states))
        return self.LayerNorm(hidden_states + input_tensor)


class BertLayer(nn.Module):
    """Post-LN BERT layer: self-attention -> [cross-attention] -> feed-forward.

    The cross-attention block exists when ``add_cross_attention`` is True and
    runs when ``encoder_hidden_states`` (or its cached keys/values) is given;
    otherwise the layer is a plain encoder layer.

    Returns ``(hidden_states, present_key_value)``; the second item is None
    unless ``use_cache``, else ``(self_k, self_v)`` or
    ``(self_k, self_v, cross_k, cross_v)``, each (B, heads, length, head_dim).
    """

    def __init__(self, config: BertConfig, add_cross_attention: bool = False,
                 encoder_width: Optional[int] = None):
        super().__init__()
        self.attention = BertAttention(config)
        self.has_cross_attention = add_cross_attention
        if add_cross_attention:
            self.crossattention = BertAttention(
                config, is_cross_attention=True, encoder_width=encoder_width)
        self.intermediate = BertIntermediate(config)
        self.output = BertOutput(config)

    def feed_forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        return self.output(self.intermediate(hidden_states), hidden_states)

    def forward(
        self,
        hidden_states: torch.Tensor,
        attention_mask: Optional[torch.Tensor] = None,
        encoder_hidden_states: Optional[torch.Tensor] = None,
        encoder_attention_mask: Optional[torch.Tensor] = None,
        past_key_value: Optional[tuple] = None,
        use_cache: bool = False,
    ):
        self_past = past_key_value[:2] if past_key_value is not None else None
        cross_past = None
        if past_key_value is not None and len(past_key_value) == 4:
            cross_past = past_key_value[2:]

        hidden_states, present = self.attention(
            hidden_states, attention_mask, past_key_value=self_past, use_cache=use_cache)

        if encoder_hidden_states is not None or cross_past is not None:
            if not self.has_cross_attention:
                raise ValueError('encoder_hidden_states given to a layer without cross-attention')
            hidden_states, cross_present = self.crossattention(
                hidden_states, encoder_attention_mask, key_value_states=encoder_hidden_states,
                past_key_value=cross_past, use_cache=use_cache)
            if use_cache:
                present = present + cross_present

        hidden_states = self.feed_forward(hidden_states)
        return hidden_states, present


# --------------------------------------------------------------------------- #
# Language-model head
# --------------------------------------------------------------------------- #
class BertPredictionHeadTransform(nn.Module):
    """dense -> GELU -> LayerNorm."""

    def __init__(self, config: BertConfig):
        super().__init__()
        self.dense = nn.Linear(config.hidden_size, config.hidden_size)
        self.LayerNorm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        return self.LayerNorm(F.gelu(self.dense(hidden_states)))


class BertLMPredictionHead(nn.Module):
    """Transform, then the vocabulary projection ``decoder`` plus a separate ``bias``.

    The projection is tied to the word embeddings by *sharing the module*:
    ``decoder`` is the very ``nn.Embedding`` passed in (the owner's
    ``embeddings.word_embeddings``), used as ``F.linear(h, decoder.weight)``.
    One Parameter lives in one module, so the tie holds through
    ``load_state_dict`` (also ``assign=True``), ``.to()``, ``.half()``,
    ``deepcopy`` and swapped tensors, and the state dict keeps both keys
    (``decoder.weight`` and the embedding's), as Hugging Face BERT's.

    Checkpoints may also hold ``decoder.bias``; in BERT it is the same tensor as
    ``bias`` (load it from ``cls.predictions.bias``).
    """

    def __init__(self, config: BertConfig, word_embeddings: nn.Embedding):
        super().__init__()
        if tuple(word_embeddings.weight.shape) != (config.vocab_size, config.hidden_size):
            raise ValueError(
                f'word embeddings of shape {tuple(word_embeddings.weight.shape)} cannot be the '
                f'vocabulary projection of a ({config.vocab_size}, {config.hidden_size}) head')
        self.transform = BertPredictionHeadTransform(config)
        self.decoder = word_embeddings
        self.bias = nn.Parameter(torch.zeros(config.vocab_size))

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        return F.linear(self.transform(hidden_states), self.decoder.weight) + self.bias


class BertLMHead(nn.Module):
    """The ``cls`` module of BERT LM models: holds ``predictions`` (whose vocabulary
    projection is ``word_embeddings``, see :class:`BertLMPredictionHead`)."""

    def __init__(self, config: BertConfig, word_embeddings: nn.Embedding):
        super().__init__()
        self.predictions = BertLMPredictionHead(config, word_embeddings)

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        return self.predictions(hidden_states)


# --------------------------------------------------------------------------- #
# Initialisation and gradient checkpointing
# --------------------------------------------------------------------------- #
@torch.no_grad()
def init_bert_weights(module: nn.Module, std: float = 0.02) -> None:
    """BERT random init: Linear/Embedding weights N(0, std), zero biases,
    LayerNorm weight 1 / bias 0, zero padding embedding row, zero LM bias.

    Raw ``nn.Parameter``s (e.g. latent queries) are not touched, as in BERT.
    The LM head's vocabulary projection is the word-embedding module itself, so
    it gets the embedding init (with its zero padding row), as a tied BERT does.
    """
    for m in module.modules():
        if isinstance(m, nn.Linear):
            m.weight.normal_(mean=0.0, std=std)
            if m.bias is not None:
                m.bias.zero_()
        elif isinstance(m, nn.LayerNorm):
            m.weight.fill_(1.0)
            m.bias.zero_()
        elif isinstance(m, BertLMPredictionHead):
            m.bias.zero_()
    for m in module.modules():
        if isinstance(m, nn.Embedding):
            m.weight.normal_(mean=0.0, std=std)
            if m.padding_idx is not None:
                m.weight[m.padding_idx].zero_()


def run_layer(layer: nn.Module, with_cp: bool, *args):
    """Call ``layer(*args)``, through activation checkpointing when ``with_cp``
    and gradients are being recorded (training only)."""
    if with_cp and layer.training and torch.is_grad_enabled():
        return checkpoint(layer, *args, use_reentrant=False)
    return layer(*args)


@dataclass
class BertWeightMap:
    """Where the weights of a :class:`BertStack` are in a transformers BERT checkpoint.

    Attributes:
        sources: ``(module_prefix, checkpoint_prefix)`` pairs: the module key
            ``module_prefix + rest`` is read from the checkpoint key
            ``checkpoint_prefix + rest`` (checkpoint keys without ``bert.``). A
            prefix without a trailing dot names one key.
        layers: the BERT layers taken, ``range(first, stop)``.
        skip_module_keys: module keys that are the same tensor as another
            loaded key (tied weights).
        alias_checkpoint_keys: checkpoint keys that duplicate another key (tied
            weights): neither read nor reported.
    """
    sources: List[Tuple[str, str]]
    layers: range
    skip_module_keys: Tuple[str, ...] = ()
    alias_checkpoint_keys: Tuple[str, ...] = ()


class BertStack(BaseModule):
    """Base of the modules built from BERT layers: text encoder, universal layers, fusion, decoder.

    Subclasses hold their BERT layers in ``self.layers``, run BERT's random init
    (:func:`init_bert_weights`) once, in their constructor, and say with
    :meth:`bert_weight_map` which weights of a transformers BERT checkpoint they
    take. ``init_weights`` is MMEngine's: it applies ``init_cfg``, e.g.
    ``dict(type='PretrainedBERT', checkpoint=DIR, layer_start=0)`` (a BERT
    checkpoint, through :meth:`bert_weight_map`) or ``dict(type='PretrainedMPLUG2',
    checkpoint=PATH, prefix=...)`` (this module's own layout); see
    :mod:`mplug2.checkpoints.initializers`.
    """

    @property
    def default_bert_layer_start(self) -> int:
        """The first BERT layer this module takes when ``PretrainedBERT`` names none: 0
        (the first layers); the universal layers and the fusion module take the last ones."""
        return 0

    def bert_layer_sources(self, layer_start: int) -> List[Tuple[str, str]]:
        """``layers.{i}.`` <- BERT ``encoder.layer.{layer_start + i}.``."""
        return [(f'layers.{i}.', f'encoder.layer.{layer_start + i}.')
                for i in range(len(self.layers))]

    def bert_weight_map(self, layer_start: int) -> BertWeightMap:
        """This module's weights in a BERT checkpoint, its layers taken from BERT
        layers ``[layer_start, layer_start + len(self.layers))``."""
        raise NotImplementedError


__all__ = [
    'BERT_ARCHS', 'BertConfig', 'BertEmbeddings', 'BertSelfAttention', 'BertSelfOutput',
    'BertAttention', 'BertIntermediate', 'BertOutput', 'BertLayer',
    'BertPredictionHeadTransform', 'BertLMPredictionHead', 'BertLMHead',
    'padding_mask', 'causal_padding_mask', 'additive_mask', 'init_bert_weights', 'run_layer',
    'BertStack', 'BertWeightMap',
]
