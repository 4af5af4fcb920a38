"""Converting official mPLUG-2 checkpoints: key rules, lossless mapping, file formats, CLI, numerics.

The synthetic official state dicts below are written by hand from the official key layout
(docs/converting_official_checkpoints.md, reference section 8), independently of the converter:
every key carries what it must become for the QA and for the caption model (a target key of
ours, or the drop rule that must remove it).
"""
import argparse
import importlib.util
import os
import subprocess
import sys
from collections import OrderedDict

import pytest
import torch
import torch.nn.functional as F

from mplug2.checkpoints.official import (DROP_RULES, OfficialCheckpointError, build_target_layout,
                                         convert_official_state_dict, plan_official_conversion,
                                         read_official_checkpoint)
from mplug2.registry import MODELS
from mplug2.utils.checkpoint import UnsafeCheckpointError, load_checkpoint_file
from tests.conftest import TINY_VOCAB, tiny_mplug2, write_vocab

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SCRIPT = os.path.join(ROOT, 'tools', 'model_converters', 'mplug2_official_to_mmengine.py')
QA_CONFIG = os.path.join(ROOT, 'tests', 'data', 'configs', 'tiny_mplug2_videoqa.py')
CAPTION_CONFIG = os.path.join(ROOT, 'tests', 'data', 'configs', 'tiny_mplug2_videocaption.py')

# The tiny official model: text N = 3 layers (S = 2 universal: layers 1, 2; latents in layer 1),
# fusion 3 layers stored / 1 run (layer 2), decoder 2 layers, 2 vision blocks, hidden 32.
D, FFN, VOCAB, MAX_POS, QUERIES = 32, 64, len(TINY_VOCAB), 64, 4
N_TEXT, N_UNI, FUSION_TOTAL, FUSION_USED, N_DEC, N_BLOCKS = 3, 2, 3, 1, 2, 2
PATCH, IMG = 4, 16
TINY = dict(d=D, ffn=FFN, vocab=VOCAB, max_pos=MAX_POS, queries=QUERIES, n_text=N_TEXT, n_uni=N_UNI,
            fusion_total=FUSION_TOTAL, fusion_used=FUSION_USED, n_dec=N_DEC, n_blocks=N_BLOCKS, patch=PATCH,
            img=IMG, vision_width=D, clip_proj=16, text_tower=dict(width=16, layers=1, context=8, vocab=50))
# The released large model (reference section 8): ViT-L/14 video encoder + CLIP ViT-L/14 text tower,
# BERT-large text encoder 24 (last 2 universal), fusion 24 stored / 6 run, decoder 12.
LARGE = dict(d=1024, ffn=4096, vocab=30522, max_pos=512, queries=50, n_text=24, n_uni=2, fusion_total=24,
             fusion_used=6, n_dec=12, n_blocks=24, patch=14, img=224, vision_width=1024, clip_proj=768,
             text_tower=dict(width=768, layers=12, context=77, vocab=49408))
SAME = object()


def drop(rule):
    assert rule in DROP_RULES
    return ('drop', rule)


class OfficialStateDict:
    """An official-layout state dict plus, per key, the expected QA and caption outcome."""

    def __init__(self, arch, pretrain_names=False, seed=0, meta=False):
        self.sd = OrderedDict()
        self.expect = {}  # source key -> (qa outcome, caption outcome)
        self.arch = arch
        self.pretrain_names = pretrain_names
        self.meta = meta
        self.generator = torch.Generator().manual_seed(seed)

    def source_name(self, key):
        if self.pretrain_names:  # pre-training naming (official fine-tune loader's inverse)
            for module, inner in (('text_encoder.', 'bert.'), ('fusion_encoder.', 'fusion.')):
                if key.startswith(module) and not key.startswith(module + 'cls.'):
                    return module + inner + key[len(module):]
        return key

    def add(self, key, shape, qa, caption=SAME, tensor=None):
        key = self.source_name(key)
        if tensor is None:
            if self.meta:
                tensor = torch.empty(shape, device='meta')
            else:
                tensor = torch.randn(shape, generator=self.generator) * 0.2
        assert key not in self.sd, key
        self.sd[key] = tensor
        self.expect[key] = (qa, qa if caption is SAME else caption)
        return tensor

    def bert_layer(self, prefix, target, cross, vision_ffn=False, caption=SAME):
        """One official BertLayer; ``target`` is our layer prefix (or a drop outcome)."""
        d, ffn = self.arch['d'], self.arch['ffn']

        def outcome(name):
            return target if isinstance(target, tuple) else f'{target}.{name}'

        def cap(name):
            if caption is SAME:
                return SAME
            return caption if isinstance(caption, tuple) else f'{caption}.{name}'

        blocks = ['attention'] + (['crossattention'] if cross else [])
        for block in blocks:
            for proj in ('query', 'key', 'value'):
                self.add(f'{prefix}.{block}.self.{proj}.weight', (d, d), outcome(f'{block}.self.{proj}.weight'),
                         cap(f'{block}.self.{proj}.weight'))
                self.add(f'{prefix}.{block}.self.{proj}.bias', (d,), outcome(f'{block}.self.{proj}.bias'),
                         cap(f'{block}.self.{proj}.bias'))
            for name, shape in (('dense.weight', (d, d)), ('dense.bias', (d,)), ('LayerNorm.weight', (d,)),
                                ('LayerNorm.bias', (d,))):
                self.add(f'{prefix}.{block}.output.{name}', shape, outcome(f'{block}.output.{name}'),
                         cap(f'{block}.output.{name}'))
        for name, shape in (('intermediate.dense.weight', (ffn, d)), ('intermediate.dense.bias', (ffn,)),
                            ('output.dense.weight', (d, ffn)), ('output.dense.bias', (d,)),
                            ('output.LayerNorm.weight', (d,)), ('output.LayerNorm.bias', (d,))):
            self.add(f'{prefix}.{name}', shape, outcome(name), cap(name))
        if vision_ffn:  # created, never used
            for name, shape in (('intermediate_vision.dense.weight', (ffn, d)),
                                ('intermediate_vision.dense.bias', (ffn,)),
                                ('output_vision.dense.weight', (d, ffn)), ('output_vision.dense.bias', (d,)),
                                ('output_vision.LayerNorm.weight', (d,)), ('output_vision.LayerNorm.bias', (d,))):
                self.add(f'{prefix}.{name}', shape, drop('unused_vision_ffn'))

    def embeddings(self, prefix, target, caption=SAME):
        d = self.arch['d']
        for name, shape in (('word_embeddings.weight', (self.arch['vocab'], d)),
                            ('position_embeddings.weight', (self.arch['max_pos'], d)),
                            ('token_type_embeddings.weight', (2, d)), ('LayerNorm.weight', (d,)),
                            ('LayerNorm.bias', (d,))):
            qa = target if isinstance(target, tuple) else f'{target}.{name}'
            cap = caption if caption is SAME or isinstance(caption, tuple) else f'{caption}.{name}'
            self.add(f'{prefix}.{name}', shape, qa, cap)
        ids = torch.arange(self.arch['max_pos'])[None]
        self.add(f'{prefix}.position_ids', None, drop('position_ids'), tensor=ids.to('meta') if self.meta else ids)


def build_official(vision_width=D, momentum=True, pretrain_names=False, seed=0, arch=None, meta=False):
    arch = dict(arch or TINY, **({} if arch else {'vision_width': vision_width}))
    off = OfficialStateDict(arch, pretrain_names, seed, meta)
    d, vw = arch['d'], arch['vision_width']
    lt, patch = vw // 2, arch['patch']
    grid = (arch['img'] // patch) ** 2
    n_text, n_uni, n_dec = arch['n_text'], arch['n_uni'], arch['n_dec']

    # ---- visual_encoder.visual (the video encoder): a pure prefix rename
    v, o = 'visual_encoder.visual.', 'vision_encoder.'
    off.add(v + 'class_embedding', (vw,), o + 'class_embedding')
    off.add(v + 'positional_embedding', (1 + grid, vw), o + 'positional_embedding')
    off.add(v + 'proj', (vw, arch['clip_proj']), drop('clip_visual_proj'))
    off.add(v + 'conv1.weight', (vw, 3, 1, patch, patch), o + 'conv1.weight')
    for ln in ('ln_pre', 'ln_post'):
        off.add(f'{v}{ln}.weight', (vw,), f'{o}{ln}.weight')
        off.add(f'{v}{ln}.bias', (vw,), f'{o}{ln}.bias')
    for i in range(arch['n_blocks']):
        b, t = f'{v}transformer.resblocks.{i}.', f'{o}transformer.resblocks.{i}.'
        shapes = {'attn.in_proj_weight': (3 * vw, vw), 'attn.in_proj_bias': (3 * vw,),
                  'attn.out_proj.weight': (vw, vw), 'attn.out_proj.bias': (vw,),
                  'ln_1.weight': (vw,), 'ln_1.bias': (vw,), 'ln_2.weight': (vw,), 'ln_2.bias': (vw,),
                  'mlp.c_fc.weight': (4 * vw, vw), 'mlp.c_fc.bias': (4 * vw,),
                  'mlp.c_proj.weight': (vw, 4 * vw), 'mlp.c_proj.bias': (vw,)}
        for lt_name in ('lmhra1', 'lmhra2'):
            shapes.update({f'{lt_name}.ln.weight': (vw,), f'{lt_name}.ln.bias': (vw,),
                           f'{lt_name}.down_proj.weight': (lt, vw, 1, 1, 1), f'{lt_name}.down_proj.bias': (lt,),
                           f'{lt_name}.conv.weight': (lt, 1, 3, 1, 1), f'{lt_name}.conv.bias': (lt,),
                           f'{lt_name}.up_proj.weight': (vw, lt, 1, 1, 1), f'{lt_name}.up_proj.bias': (vw,)})
        for name, shape in shapes.items():
            off.add(b + name, shape, t + name)
    # ---- CLIP's text tower, kept by XCLIP but never run
    tower, tt = drop('clip_text_tower'), arch['text_tower']
    w = tt['width']
    off.add('visual_encoder.positional_embedding', (tt['context'], w), tower)
    off.add('visual_encoder.token_embedding.weight', (tt['vocab'], w), tower)
    for i in range(tt['layers']):
        for name, shape in (('attn.in_proj_weight', (3 * w, w)), ('attn.in_proj_bias', (3 * w,)),
                            ('attn.out_proj.weight', (w, w)), ('attn.out_proj.bias', (w,)),
                            ('ln_1.weight', (w,)), ('ln_1.bias', (w,)), ('mlp.c_fc.weight', (4 * w, w)),
                            ('mlp.c_fc.bias', (4 * w,)), ('mlp.c_proj.weight', (w, 4 * w)), ('mlp.c_proj.bias', (w,)),
                            ('ln_2.weight', (w,)), ('ln_2.bias', (w,))):
            off.add(f'visual_encoder.transformer.resblocks.{i}.{name}', shape, tower)
    for name, shape in (('ln_final.weight', (w,)), ('ln_final.bias', (w,)), ('text_projection', (w, w)),
                        ('logit_scale', ())):
        off.add('visual_encoder.' + name, shape, tower)
    # ---- visn_fc (only when the widths differ) and visn_emb_norm
    if vw != d:
        off.add('visn_fc.weight', (d, vw), 'visual_projection.0.weight')
        off.add('visn_fc.bias', (d,), 'visual_projection.0.bias')
        off.add('visn_layer_norm.weight', (d,), 'visual_projection.1.weight')
        off.add('visn_layer_norm.bias', (d,), 'visual_projection.1.bias')
    off.add('visn_emb_norm.weight', (d,), 'universal_layers.visual_norm.weight')
    off.add('visn_emb_norm.bias', (d,), 'universal_layers.visual_norm.bias')

    # ---- text encoder: layers < N-S text only; the last S universal (latents in the first of them)
    unused_text = drop('caption_unused_text_encoder')
    first_uni = n_text - n_uni
    off.embeddings('text_encoder.embeddings', 'text_encoder.embeddings', caption=unused_text)
    for i in range(n_text):
        if i < first_uni:
            off.bert_layer(f'text_encoder.encoder.layer.{i}', f'text_encoder.layers.{i}', cross=False,
                           caption=unused_text)
        else:
            off.bert_layer(f'text_encoder.encoder.layer.{i}', f'universal_layers.layers.{i - first_uni}',
                           cross=True, vision_ffn=True)
    off.add(f'text_encoder.encoder.layer.{first_uni}.latents', (arch['queries'], d), 'universal_layers.latents')

    # ---- fusion encoder: all layers stored, the last fusion_used run
    unused_fusion = drop('caption_unused_fusion')
    start = arch['fusion_total'] - arch['fusion_used']
    off.embeddings('fusion_encoder.embeddings', drop('fusion_embeddings'), caption=drop('fusion_embeddings'))
    for i in range(arch['fusion_total']):
        target = drop('fusion_below_start') if i < start else f'fusion.layers.{i - start}'
        off.bert_layer(f'fusion_encoder.encoder.layer.{i}', target, cross=True, caption=unused_fusion)

    # ---- text decoder (BertLMHeadModel): bert.* + cls.*; the last S layers carry the unused extras
    off.embeddings('text_decoder.bert.embeddings', 'text_decoder.embeddings')
    for i in range(n_dec):
        off.bert_layer(f'text_decoder.bert.encoder.layer.{i}', f'text_decoder.layers.{i}', cross=True,
                       vision_ffn=i >= n_dec - n_uni)
    off.add(f'text_decoder.bert.encoder.layer.{n_dec - n_uni}.latents', (arch['queries'], d), drop('unused_latents'))
    c = 'text_decoder.cls.predictions.'
    bias = off.add(c + 'bias', (arch['vocab'],), c + 'bias')
    for name, shape in (('transform.dense.weight', (d, d)), ('transform.dense.bias', (d,)),
                        ('transform.LayerNorm.weight', (d,)), ('transform.LayerNorm.bias', (d,))):
        off.add(c + name, shape, c + name)
    word = off.sd['text_decoder.bert.embeddings.word_embeddings.weight']
    off.add(c + 'decoder.weight', None, c + 'decoder.weight', tensor=word)  # tied (same tensor)
    off.add(c + 'decoder.bias', None, drop('duplicate_decoder_bias'), tensor=bias)  # same tensor as bias

    if pretrain_names:  # MLM heads of the pre-training text and fusion encoders
        for module in ('text_encoder', 'fusion_encoder'):
            for name, shape in (('bias', (arch['vocab'],)), ('transform.dense.weight', (d, d)),
                                ('transform.LayerNorm.weight', (d,)), ('decoder.weight', (arch['vocab'], d))):
                off.add(f'{module}.cls.predictions.{name}', shape, drop('mlm_heads'))

    if momentum:  # distill=True: *_m copies of the modules
        for key in list(off.sd):
            module, rest = key.split('.', 1)
            off.add(f'{module}_m.{rest}', None, drop('momentum_copies'), tensor=off.sd[key].clone())
    return off


def expected_outcome(off, task):
    index = 0 if task == 'qa' else 1
    mapping, dropped = {}, {}
    for key, outcomes in off.expect.items():
        outcome = outcomes[index]
        if isinstance(outcome, tuple):
            dropped.setdefault(outcome[1], []).append(key)
        else:
            mapping[outcome] = key
    return mapping, {rule: sorted(keys) for rule, keys in dropped.items()}


def build_tiny(kind, vocab, vision_width=D):
    overrides = {}
    if kind == 'MPLUG2Captioner':
        overrides.update(text_encoder=None, fusion=None)
    if vision_width != D:
        overrides['vision_encoder'] = dict(type='DualVisionEncoder', img_size=IMG,
                                           arch=dict(width=vision_width, layers=N_BLOCKS, heads=2, patch_size=PATCH))
    cfg = tiny_mplug2(kind, vocab, **overrides)
    cfg['universal_layers']['num_queries'] = QUERIES
    model = MODELS.build(cfg)
    return model.eval()


def assert_lossless(off, task, converted, dropped):
    mapping, want_dropped = expected_outcome(off, task)
    assert set(converted) == set(mapping)
    for target, source in mapping.items():
        assert converted[target] is off.sd[source], target  # the very tensor: no copy, cast or transpose
    assert dropped == want_dropped


# --------------------------------------------------------------------------- #
# key rules, lossless mapping, strict loading
# --------------------------------------------------------------------------- #
@pytest.mark.parametrize('kind,task', [('MPLUG2QA', 'qa'), ('MPLUG2Captioner', 'caption')])
def test_convert_is_lossless_and_loads_strictly(tiny_vocab, kind, task):
    off = build_official()
    converted, dropped = convert_official_state_dict(off.sd, num_fusion_layers=FUSION_USED, task=task)
    assert_lossless(off, task, converted, dropped)

    model = build_tiny(kind, tiny_vocab)
    assert set(converted) == set(model.state_dict())
    model.load_state_dict(converted, strict=True)
    for key, tensor in model.state_dict().items():
        assert torch.equal(tensor, converted[key]), key
    decoder = model.text_decoder
    assert decoder.cls.predictions.decoder.weight is decoder.embeddings.word_embeddings.weight  # still tied


def test_layer_counts_are_derived_from_keys():
    plan = plan_official_conversion(build_official().sd, num_fusion_layers=FUSION_USED)
    assert plan.layer_counts == dict(num_text_layers=N_TEXT, num_universal_layers=N_UNI,
                                     num_fusion_layers_total=FUSION_TOTAL, num_fusion_layers=FUSION_USED,
                                     num_decoder_layers=N_DEC, num_vision_blocks=N_BLOCKS)


def test_num_fusion_layers_must_be_given_for_a_non_release_width():
    with pytest.raises(OfficialCheckpointError, match='num_fusion_layers'):
        convert_official_state_dict(build_official().sd, task='qa')
    # the caption model does not need it
    convert_official_state_dict(build_official().sd, task='caption')


def test_overrides_change_the_split():
    """Two fusion layers run instead of one: official layers 1, 2 -> ours 0, 1."""
    off = build_official(momentum=False)
    converted, dropped = convert_official_state_dict(off.sd, num_fusion_layers=2)
    for ours, official in ((0, 1), (1, 2)):
        assert converted[f'fusion.layers.{ours}.output.dense.weight'] is \
            off.sd[f'fusion_encoder.encoder.layer.{official}.output.dense.weight']
    assert all('layer.0.' in key for key in dropped['fusion_below_start'])


def test_pretraining_names_are_normalised():
    off = build_official(pretrain_names=True)
    assert 'text_encoder.bert.encoder.layer.0.attention.self.query.weight' in off.sd
    assert 'fusion_encoder.fusion.encoder.layer.2.crossattention.self.key.bias' in off.sd
    for task in ('qa', 'caption'):
        converted, dropped = convert_official_state_dict(off.sd, num_fusion_layers=FUSION_USED, task=task)
        assert_lossless(off, task, converted, dropped)
        assert len(dropped['mlm_heads']) == 8


def test_visual_projection_when_widths_differ(tiny_vocab):
    off = build_official(vision_width=48, momentum=False)
    converted, dropped = convert_official_state_dict(off.sd, num_fusion_layers=FUSION_USED)
    assert_lossless(off, 'qa', converted, dropped)
    model = build_tiny('MPLUG2QA', tiny_vocab, vision_width=48)
    model.load_state_dict(converted, strict=True)
    assert torch.equal(model.visual_projection[0].weight, off.sd['visn_fc.weight'])


@pytest.mark.parametrize('kind,task,vision_width', [('MPLUG2QA', 'qa', D), ('MPLUG2Captioner', 'caption', D),
                                                    ('MPLUG2QA', 'qa', 48)])
def test_default_target_layout_is_the_built_models(tiny_vocab, kind, task, vision_width):
    """Without ``expected`` the targets are the state dict of our modules built on the meta device in
    the sizes of the checkpoint: the same keys and shapes as the task model built from its config."""
    off = build_official(vision_width=vision_width, momentum=False)
    layout = build_target_layout(off.sd, task, num_fusion_layers=FUSION_USED)
    assert all(t.is_meta for t in layout.state_dict().values())
    model = build_tiny(kind, tiny_vocab, vision_width=vision_width)
    assert {k: tuple(v.shape) for k, v in layout.state_dict().items()} == \
        {k: tuple(v.shape) for k, v in model.state_dict().items()}


def test_module_prefix_is_stripped():
    off = build_official(momentum=False)
    wrapped = OrderedDict(('module.' + key, value) for key, value in off.sd.items())
    converted, _ = convert_official_state_dict(wrapped, num_fusion_layers=FUSION_USED)
    assert converted['vision_encoder.conv1.weight'] is off.sd['visual_encoder.visual.conv1.weight']


def test_unexpected_key_is_an_error_naming_it():
    off = build_official()
    off.sd['text_encoder.encoder.layer.0.attention.self.bogus.weight'] = torch.zeros(D, D)
    with pytest.raises(OfficialCheckpointError, match=r'text_encoder\.encoder\.layer\.0\.attention\.self\.bogus'):
        convert_official_state_dict(off.sd, num_fusion_layers=FUSION_USED)


def test_unknown_key_is_an_error_unless_ignored():
    off = build_official()
    off.sd['itm_head.weight'] = torch.zeros(2, D)
    with pytest.raises(OfficialCheckpointError, match=r'itm_head\.weight'):
        convert_official_state_dict(off.sd, num_fusion_layers=FUSION_USED)
    _, dropped = convert_official_state_dict(off.sd, num_fusion_layers=FUSION_USED, ignore_keys=[r'^itm_head\.'])
    assert dropped['ignored_by_user'] == ['itm_head.weight']


def test_text_layer_beyond_the_count_is_an_error():
    off = build_official()
    with pytest.raises(OfficialCheckpointError, match=r'text_encoder\.encoder\.layer\.2\.'):
        convert_official_state_dict(off.sd, num_text_layers=2, num_universal_layers=1, num_fusion_layers=1)


@pytest.mark.parametrize('source,target', [
    ('fusion_encoder.encoder.layer.2.crossattention.self.key.bias', 'fusion.layers.0.crossattention.self.key.bias'),
    ('visual_encoder.visual.transformer.resblocks.0.lmhra2.conv.weight',
     'vision_encoder.transformer.resblocks.0.lmhra2.conv.weight'),
    ('text_encoder.encoder.layer.1.latents', 'universal_layers.latents'),
    ('visn_emb_norm.bias', 'universal_layers.visual_norm.bias'),
])
def test_missing_key_is_an_error_naming_the_target(source, target):
    off = build_official()
    del off.sd[source]
    with pytest.raises(OfficialCheckpointError, match=target.replace('.', r'\.')):
        convert_official_state_dict(off.sd, num_fusion_layers=FUSION_USED)


def test_expected_model_keys_and_shapes_are_checked(tiny_vocab):
    model = build_tiny('MPLUG2QA', tiny_vocab)
    off = build_official()
    # a model with one more decoder layer: its keys receive nothing
    expected = dict(model.state_dict())
    expected['text_decoder.layers.2.output.dense.bias'] = torch.zeros(D)
    with pytest.raises(OfficialCheckpointError, match=r'text_decoder\.layers\.2\.output\.dense\.bias'):
        convert_official_state_dict(off.sd, num_fusion_layers=FUSION_USED, expected=expected)
    # wrong shape
    off.sd['text_decoder.bert.encoder.layer.1.output.dense.weight'] = torch.zeros(FFN, D)
    with pytest.raises(OfficialCheckpointError, match='shape of text_decoder.bert.encoder.layer.1.output.dense'):
        convert_official_state_dict(off.sd, num_fusion_layers=FUSION_USED, expected=model.state_dict())


def test_tied_and_duplicate_tensors_must_agree():
    off = build_official(momentum=False)
    off.sd['text_decoder.cls.predictions.decoder.bias'] = off.sd['text_decoder.cls.predictions.bias'] + 1
    with pytest.raises(OfficialCheckpointError, match='decoder.bias differs'):
        convert_official_state_dict(off.sd, num_fusion_layers=FUSION_USED)
    off = build_official(momentum=False)
    off.sd['text_decoder.cls.predictions.decoder.weight'] = torch.zeros(VOCAB, D)
    with pytest.raises(OfficialCheckpointError, match='decoder.weight differs'):
        convert_official_state_dict(off.sd, num_fusion_layers=FUSION_USED)
    # a head saved without its tied weight reads the word embeddings
    off = build_official(momentum=False)
    del off.sd['text_decoder.cls.predictions.decoder.weight']
    converted, _ = convert_official_state_dict(off.sd, num_fusion_layers=FUSION_USED)
    assert converted['text_decoder.cls.predictions.decoder.weight'] is \
        off.sd['text_decoder.bert.embeddings.word_embeddings.weight']


# --------------------------------------------------------------------------- #
# reading official files
# --------------------------------------------------------------------------- #
def official_file(tmp_path, fmt, off):
    path = tmp_path / f'official_{fmt}.pth'
    if fmt == 'finetuned':  # video_qa_mplug2.py's save_obj; config as argparse.Namespace
        config = argparse.Namespace(text_encoder='bert-large-uncased', lr=2e-5, distill=True,
                                    optimizer={'opt': 'adamW', 'lr1': 2e-5}, image_res=224)
        first = next(iter(off.sd.values()))
        obj = {'model': off.sd,
               'optimizer': {'state': {0: {'step': torch.tensor(3.), 'exp_avg': torch.zeros_like(first)}},
                             'param_groups': [{'lr': 2e-5, 'betas': (0.9, 0.999), 'params': [0]}]},
               'lr_scheduler': {'t_initial': 10, 'lr_min': 1e-6, 'base_values': [2e-5], 'noise_range_t': None},
               'config': config, 'epoch': 3}
    elif fmt == 'yaml_config':
        obj = {'model': off.sd, 'config': {'bert_config': 'configs/config_bert_large_text.json'}, 'epoch': 9}
    elif fmt == 'deepspeed':
        obj = {'module': off.sd, 'global_steps': 100}
    else:
        obj = off.sd
    torch.save(obj, path)
    return path


@pytest.mark.parametrize('fmt,format_name,epoch', [('finetuned', 'model', 3), ('yaml_config', 'model', 9),
                                                   ('deepspeed', 'module', None), ('raw', 'raw', None)])
def test_read_official_checkpoint_formats(tmp_path, fmt, format_name, epoch):
    off = build_official(momentum=False)
    state_dict, info = read_official_checkpoint(official_file(tmp_path, fmt, off))
    assert info['format'] == format_name and info['epoch'] == epoch
    assert list(state_dict) == list(off.sd)
    assert all(torch.equal(state_dict[k], off.sd[k]) for k in off.sd)
    if fmt == 'finetuned':
        assert info['config']['text_encoder'] == 'bert-large-uncased'  # Namespace -> plain dict
        assert info['top_level_keys'] == ['config', 'epoch', 'lr_scheduler', 'model', 'optimizer']


def test_plain_weights_only_load_refuses_namespace_but_reader_allows_only_it(tmp_path):
    off = build_official(momentum=False)
    path = official_file(tmp_path, 'finetuned', off)
    with pytest.raises(UnsafeCheckpointError, match='argparse.Namespace'):
        load_checkpoint_file(path)  # the generic loader does not know the official config type
    read_official_checkpoint(path)
    # anything else is still refused
    torch.save({'model': off.sd, 'config': OrderedDictSubclass(a=1)}, tmp_path / 'other.pth')
    with pytest.raises(UnsafeCheckpointError, match='OrderedDictSubclass'):
        read_official_checkpoint(tmp_path / 'other.pth')


class OrderedDictSubclass(OrderedDict):
    pass


def test_read_rejects_files_without_a_state_dict(tmp_path):
    torch.save({'epoch': 1, 'config': {}}, tmp_path / 'x.pth')
    with pytest.raises(OfficialCheckpointError, match='top-level keys'):
        read_official_checkpoint(tmp_path / 'x.pth')


# --------------------------------------------------------------------------- #
# the command line tool
# --------------------------------------------------------------------------- #
@pytest.fixture(scope='module')
def cli():
    spec = importlib.util.spec_from_file_location('mplug2_official_to_mmengine', SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize('fmt,pretrain_names,config,kind', [
    ('finetuned', False, QA_CONFIG, 'MPLUG2QA'),
    ('deepspeed', False, CAPTION_CONFIG, 'MPLUG2Captioner'),
    ('deepspeed', True, QA_CONFIG, 'MPLUG2QA'),
])
def test_cli_end_to_end(tmp_path, tiny_vocab, cli, capsys, fmt, pretrain_names, config, kind):
    off = build_official(pretrain_names=pretrain_names)
    src, dst = official_file(tmp_path, fmt, off), tmp_path / 'out' / 'converted.pth'
    cli.main([str(src), str(dst), '--config', config, '--cfg-options', f'model.tokenizer.vocab_file={tiny_vocab}'])
    printed = capsys.readouterr().out
    assert 'loaded into' in printed and 'dropped' in printed and 'momentum_copies' in printed

    checkpoint = load_checkpoint_file(dst)  # weights-only loadable
    task = 'qa' if kind == 'MPLUG2QA' else 'caption'
    mapping, dropped = expected_outcome(off, task)
    assert set(checkpoint['state_dict']) == set(mapping)
    for target, source in mapping.items():
        assert torch.equal(checkpoint['state_dict'][target], off.sd[source]), target
    meta = checkpoint['meta']
    assert meta['task'] == task and meta['num_mapped'] == len(mapping)
    assert meta['dropped'] == {rule: len(keys) for rule, keys in dropped.items()}
    assert meta['source_epoch'] == (3 if fmt == 'finetuned' else None)

    model = build_tiny(kind, tiny_vocab)
    model.load_state_dict(checkpoint['state_dict'], strict=True)


def test_cli_without_config(tmp_path, tiny_vocab, cli):
    off = build_official()
    src, dst = official_file(tmp_path, 'raw', off), tmp_path / 'converted.pth'
    cli.main([str(src), str(dst), '--task', 'caption'])
    model = build_tiny('MPLUG2Captioner', tiny_vocab)
    model.load_state_dict(load_checkpoint_file(dst)['state_dict'], strict=True)


def test_cli_reports_keys_the_config_lacks(tmp_path, tiny_vocab, cli):
    off = build_official()
    src = official_file(tmp_path, 'raw', off)
    vocab = f'model.tokenizer.vocab_file={tiny_vocab}'
    with pytest.raises(SystemExit, match=r'text_decoder\.layers\.2\.'):
        cli.main([str(src), str(tmp_path / 'o.pth'), '--config', QA_CONFIG, '--cfg-options', vocab,
                  'model.text_decoder.num_layers=3'])
    with pytest.raises(SystemExit, match='vocab_file'):
        cli.main([str(src), str(tmp_path / 'o.pth'), '--config', QA_CONFIG])
    with pytest.raises(SystemExit, match='--task qa but'):
        cli.main([str(src), str(tmp_path / 'o.pth'), '--config', CAPTION_CONFIG, '--task', 'qa',
                  '--cfg-options', vocab])
    assert not (tmp_path / 'o.pth').exists()


def test_cli_runs_as_a_script(tmp_path):
    off = build_official(momentum=False)
    src, dst = official_file(tmp_path, 'finetuned', off), tmp_path / 'converted.pth'
    env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get('PYTHONPATH', ''))
    result = subprocess.run([sys.executable, SCRIPT, str(src), str(dst), '--num-fusion-layers', '1'],
                            cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    assert 'mapped:' in result.stdout and dst.is_file()


# --------------------------------------------------------------------------- #
# numerical parity with the official equations
# --------------------------------------------------------------------------- #
def quick_gelu(x):
    return x * torch.sigmoid(1.702 * x)


def official_lt(sd, p, x, h, w, n, t):
    """LocalTemporal on patch tokens (HW, N*T, C) in the official (N, C, T, H, W) conv layout."""
    c = x.shape[-1]
    y = x.view(h, w, n, t, c).permute(2, 4, 3, 0, 1)  # (N, C, T, H, W)
    y = F.layer_norm(y.permute(0, 2, 3, 4, 1), (c,), sd[p + 'ln.weight'], sd[p + 'ln.bias'], 1e-5)
    y = y.permute(0, 4, 1, 2, 3)
    y = F.conv3d(y, sd[p + 'down_proj.weight'], sd[p + 'down_proj.bias'])
    hidden = y.shape[1]
    y = F.conv3d(y, sd[p + 'conv.weight'], sd[p + 'conv.bias'], padding=(1, 0, 0), groups=hidden)
    y = F.conv3d(quick_gelu(y), sd[p + 'up_proj.weight'], sd[p + 'up_proj.bias'])
    return y.permute(3, 4, 0, 2, 1).reshape(h * w, n * t, c)


def official_video_encoder(sd, video, heads=2):
    """VideoFormer.forward written from the official equations, sequence-first, fused in_proj."""
    v = 'visual_encoder.visual.'
    n, _, t, _, _ = video.shape
    x = F.conv3d(video, sd[v + 'conv1.weight'], stride=(1, PATCH, PATCH))  # (N, C, T, h, w)
    c, h, w = x.shape[1], x.shape[3], x.shape[4]
    x = x.permute(0, 2, 3, 4, 1).reshape(n * t, h * w, c)  # (b t) (h w) c
    x = torch.cat([sd[v + 'class_embedding'].expand(n * t, 1, c), x], dim=1) + sd[v + 'positional_embedding']
    x = F.layer_norm(x, (c,), sd[v + 'ln_pre.weight'], sd[v + 'ln_pre.bias'], 1e-5).permute(1, 0, 2)
    for i in range(N_BLOCKS):
        b = f'{v}transformer.resblocks.{i}.'
        x = torch.cat([x[:1], x[1:] + official_lt(sd, b + 'lmhra1.', x[1:], h, w, n, t)])
        y = F.layer_norm(x, (c,), sd[b + 'ln_1.weight'], sd[b + 'ln_1.bias'], 1e-5)
        attn, _ = F.multi_head_attention_forward(
            y, y, y, c, heads, sd[b + 'attn.in_proj_weight'], sd[b + 'attn.in_proj_bias'], None, None, False,
            0.0, sd[b + 'attn.out_proj.weight'], sd[b + 'attn.out_proj.bias'], training=False, need_weights=False)
        x = x + attn
        x = torch.cat([x[:1], x[1:] + official_lt(sd, b + 'lmhra2.', x[1:], h, w, n, t)])
        y = F.layer_norm(x, (c,), sd[b + 'ln_2.weight'], sd[b + 'ln_2.bias'], 1e-5)
        y = F.linear(quick_gelu(F.linear(y, sd[b + 'mlp.c_fc.weight'], sd[b + 'mlp.c_fc.bias'])),
                     sd[b + 'mlp.c_proj.weight'], sd[b + 'mlp.c_proj.bias'])
        x = x + y
    x = x.permute(1, 0, 2).reshape(n, t, 1 + h * w, c)
    x = torch.cat([x[:, :, 0].mean(dim=1, keepdim=True), x[:, :, 1:].reshape(n, t * h * w, c)], dim=1)
    return F.layer_norm(x, (c,), sd[v + 'ln_post.weight'], sd[v + 'ln_post.bias'], 1e-5)


def official_bert_layer(sd, p, x, self_mask, memory=None):
    """Post-LN BertLayer (HF names); masks additive, scores QK^T / sqrt(head_dim)."""
    def attention(block, q_in, kv_in, mask):
        def heads(t):
            return t.view(t.shape[0], t.shape[1], 2, -1).transpose(1, 2)
        q = heads(F.linear(q_in, sd[f'{p}.{block}.self.query.weight'], sd[f'{p}.{block}.self.query.bias']))
        k = heads(F.linear(kv_in, sd[f'{p}.{block}.self.key.weight'], sd[f'{p}.{block}.self.key.bias']))
        v = heads(F.linear(kv_in, sd[f'{p}.{block}.self.value.weight'], sd[f'{p}.{block}.self.value.bias']))
        scores = q @ k.transpose(-1, -2) / (q.shape[-1] ** 0.5)
        if mask is not None:
            scores = scores + mask
        ctx = (scores.softmax(-1) @ v).transpose(1, 2).reshape(q_in.shape)
        out = F.linear(ctx, sd[f'{p}.{block}.output.dense.weight'], sd[f'{p}.{block}.output.dense.bias'])
        return F.layer_norm(out + q_in, (D,), sd[f'{p}.{block}.output.LayerNorm.weight'],
                            sd[f'{p}.{block}.output.LayerNorm.bias'], 1e-12)
    x = attention('attention', x, x, self_mask)
    if memory is not None:
        x = attention('crossattention', x, memory, None)
    y = F.gelu(F.linear(x, sd[f'{p}.intermediate.dense.weight'], sd[f'{p}.intermediate.dense.bias']))
    y = F.linear(y, sd[f'{p}.output.dense.weight'], sd[f'{p}.output.dense.bias'])
    return F.layer_norm(y + x, (D,), sd[f'{p}.output.LayerNorm.weight'], sd[f'{p}.output.LayerNorm.bias'], 1e-12)


def official_decoder_logits(sd, ids, memory):
    e = 'text_decoder.bert.embeddings.'
    length = ids.shape[1]
    x = (sd[e + 'word_embeddings.weight'][ids] + sd[e + 'position_embeddings.weight'][:length]
         + sd[e + 'token_type_embeddings.weight'][0])
    x = F.layer_norm(x, (D,), sd[e + 'LayerNorm.weight'], sd[e + 'LayerNorm.bias'], 1e-12)
    causal = (1.0 - torch.ones(length, length).tril()) * -10000.0
    for i in range(N_DEC):
        x = official_bert_layer(sd, f'text_decoder.bert.encoder.layer.{i}', x, causal, memory)
    c = 'text_decoder.cls.predictions.'
    x = F.gelu(F.linear(x, sd[c + 'transform.dense.weight'], sd[c + 'transform.dense.bias']))
    x = F.layer_norm(x, (D,), sd[c + 'transform.LayerNorm.weight'], sd[c + 'transform.LayerNorm.bias'], 1e-12)
    return F.linear(x, sd[c + 'decoder.weight'], sd[c + 'decoder.bias'])


def test_converted_vision_encoder_matches_the_official_equations(tiny_vocab):
    off = build_official(momentum=False, seed=1)
    converted, _ = convert_official_state_dict(off.sd, task='caption')
    model = build_tiny('MPLUG2Captioner', tiny_vocab)
    model.load_state_dict(converted, strict=True)
    video = torch.randn(2, 3, 3, IMG, IMG, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        ours = model.vision_encoder(video)
        expected = official_video_encoder(off.sd, video)
    assert ours.shape == (2, 1 + 3 * (IMG // PATCH) ** 2, D)
    torch.testing.assert_close(ours, expected, rtol=1e-4, atol=1e-4)


def test_converted_decoder_matches_the_official_equations(tiny_vocab):
    off = build_official(momentum=False, seed=3)
    converted, _ = convert_official_state_dict(off.sd, num_fusion_layers=FUSION_USED)
    model = build_tiny('MPLUG2QA', tiny_vocab)
    model.load_state_dict(converted, strict=True)
    generator = torch.Generator().manual_seed(4)
    ids = torch.randint(5, VOCAB, (2, 6), generator=generator)
    memory = torch.randn(2, 7, D, generator=generator)
    with torch.no_grad():
        ours = model.text_decoder(ids, None, memory, None)
        expected = official_decoder_logits(off.sd, ids, memory)
    torch.testing.assert_close(ours, expected, rtol=1e-4, atol=1e-4)


# --------------------------------------------------------------------------- #
# the released large layout, against the large configs (meta device: shapes only)
# --------------------------------------------------------------------------- #
@pytest.mark.parametrize('config,task', [('configs/mplug2/mplug2-large_videoqa_model.py', 'qa'),
                                         ('configs/mplug2/mplug2-large_videocaption_model.py', 'caption')])
def test_large_official_layout_fits_the_large_configs(tmp_path, config, task):
    from mmengine.config import Config
    off = build_official(arch=LARGE, meta=True, momentum=False)
    # reference section 8: the caption checkpoint has 2,223 keys and 1.555 B parameters (state-dict
    # tensors counted one by one, the tied LM-head weight included)
    assert len(off.sd) == 2223
    assert abs(sum(t.numel() for t in off.sd.values()) / 1.555e9 - 1) < 0.001
    with_momentum = build_official(arch=LARGE, meta=True)
    assert len(with_momentum.sd) == 4446  # the QA checkpoint: every key plus its *_m copy

    vocab = write_vocab(tmp_path / 'vocab.txt', TINY_VOCAB + [f'tok{i}' for i in range(30522 - len(TINY_VOCAB))])
    cfg = Config.fromfile(os.path.join(ROOT, config))
    cfg.model.tokenizer.vocab_file = vocab
    # The data preprocessor holds no state-dict entries (non-persistent buffers); it is left out so that
    # this test only depends on the modules whose weights are converted.
    cfg.model.pop('data_preprocessor', None)
    with torch.device('meta'):
        model = MODELS.build(cfg.model)
    plan = plan_official_conversion(with_momentum.sd, task=task, expected=model.state_dict())
    counts = plan.layer_counts
    assert (counts['num_text_layers'], counts['num_universal_layers'], counts['num_fusion_layers_total'],
            counts['num_decoder_layers'], counts['num_vision_blocks']) == (24, 2, 24, 12, 24)
    if task == 'qa':
        assert counts['num_fusion_layers'] == 6  # the release's fusion_layers for hidden size 1024
        assert plan.mapping['fusion.layers.0.output.dense.weight'] == \
            'fusion_encoder.encoder.layer.18.output.dense.weight'
        assert plan.mapping['text_encoder.layers.21.output.dense.weight'] == \
            'text_encoder.encoder.layer.21.output.dense.weight'
    assert plan.mapping['universal_layers.latents'] == 'text_encoder.encoder.layer.22.latents'
    assert plan.mapping['universal_layers.layers.1.crossattention.self.key.weight'] == \
        'text_encoder.encoder.layer.23.crossattention.self.key.weight'
    assert plan.dropped['unused_latents'] == ['text_decoder.bert.encoder.layer.10.latents']
    mapping, dropped = expected_outcome(with_momentum, task)
    assert plan.mapping == mapping and plan.dropped == dropped
    converted = {target: with_momentum.sd[source] for target, source in plan.mapping.items()}
    model.load_state_dict(converted, strict=True, assign=True)
    used = sum(t.numel() for k, t in converted.items() if k != 'text_decoder.cls.predictions.decoder.weight')
    # reference section 8: about 1.03 B used parameters for QA, 0.62 B for captioning
    assert abs(used / (1.03e9 if task == 'qa' else 0.62e9) - 1) < 0.02
