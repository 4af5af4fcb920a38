"""Tests of the mPLUG-2 dual-vision encoder and its CLIP loader (tiny, CPU)."""
import copy
from unittest import mock

import pytest
import torch
from torch import nn

from mplug2.checkpoints.clip import load_clip_weights
from mplug2.models.backbones import (DualVisionEncoder, LocalTemporal,
                                     resize_pos_embed)
from mplug2.models.backbones import dual_vision_encoder as dve
from mplug2.registry import MODELS

TINY = dict(width=32, layers=2, heads=2, patch_size=4)
D, N = 32, 16  # width, patches per 16x16 frame


def build(**kwargs) -> DualVisionEncoder:
    torch.manual_seed(0)
    kwargs.setdefault('img_size', 16)
    return DualVisionEncoder(arch=TINY, **kwargs).eval()


def perturb_lt(model: DualVisionEncoder) -> None:
    """Make every LT module non-zero (as after training)."""
    torch.manual_seed(1)
    for module in model.modules():
        if isinstance(module, LocalTemporal):
            nn.init.normal_(module.up_proj.weight, std=0.3)
            nn.init.normal_(module.up_proj.bias, std=0.1)


def tokens_before_ln_post(model: DualVisionEncoder, x: torch.Tensor) -> torch.Tensor:
    captured = []
    handle = model.ln_post.register_forward_hook(
        lambda module, args, out: captured.append(args[0]))
    model(x)
    handle.remove()
    return captured[0]


def per_frame_tokens(model: DualVisionEncoder, video: torch.Tensor) -> torch.Tensor:
    """Frames encoded as independent images: (B, T, 1+N, D), before ln_post."""
    b, c, t, h, w = video.shape
    frames = video.transpose(1, 2).reshape(b * t, c, h, w)
    return tokens_before_ln_post(model, frames).view(b, t, -1, D)


def pool_frames(tokens: torch.Tensor) -> torch.Tensor:
    """Official layout by construction: [mean_t CLS_t, frame 0 .. frame T-1]."""
    b, t = tokens.shape[:2]
    return torch.cat([tokens[:, :, :1].mean(1), tokens[:, :, 1:].reshape(b, -1, D)], 1)


# ----------------------------------------------------------------- shapes, presets
def test_image_and_video_shapes():
    model = build()
    assert model(torch.randn(2, 3, 16, 16)).shape == (2, 1 + N, D)
    assert model(torch.randn(2, 3, 5, 16, 16)).shape == (2, 1 + 5 * N, D)
    with pytest.raises(ValueError, match=r'expected NCHW or NCTHW input, got \(3, 16, 16\)'):
        model(torch.randn(3, 16, 16))


@pytest.mark.parametrize('arch,hf_kwargs,num_positions', [
    ('b/16', dict(patch_size=16), 197),
    ('l/14', dict(hidden_size=1024, intermediate_size=4096, num_hidden_layers=24,
                  num_attention_heads=16, patch_size=14), 257),
])
def test_presets_match_clip_parameter_count(arch, hf_kwargs, num_positions):
    transformers = pytest.importorskip('transformers')
    with torch.device('meta'):
        model = DualVisionEncoder(arch=arch)
        clip = transformers.CLIPVisionModel(transformers.CLIPVisionConfig(**hf_kwargs))
    spatial = sum(p.numel() for n, p in model.named_parameters() if 'lmhra' not in n)
    temporal = sum(p.numel() for n, p in model.named_parameters() if 'lmhra' in n)
    assert spatial == sum(p.numel() for p in clip.parameters())
    width, layers = model.width, model.layers
    # Per LT: LN 2D + down (D*D/2 + D/2) + depthwise (3*D/2 + D/2) + up (D/2*D + D).
    half = width // 2
    per_lt = 2 * width + (width * half + half) + (3 * half + half) + (half * width + width)
    assert temporal == 2 * layers * per_lt
    assert model.positional_embedding.shape == (num_positions, width)
    assert model.conv1.weight.shape == (width, 3, 1, model.patch_size, model.patch_size)
    if arch == 'b/16':  # OpenAI ViT-B/16 visual (86,192,640) minus proj (768 x 512)
        assert (spatial, temporal) == (86_192_640 - 768 * 512, 14_257_152)


def test_registry_build_and_official_key_names():
    model = MODELS.build(dict(type='DualVisionEncoder', arch=TINY, img_size=16))
    shapes = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    assert shapes['conv1.weight'] == (D, 3, 1, 4, 4)
    assert shapes['positional_embedding'] == (1 + N, D)
    assert shapes['transformer.resblocks.1.attn.in_proj_weight'] == (3 * D, D)
    assert shapes['transformer.resblocks.1.mlp.c_fc.weight'] == (4 * D, D)
    assert shapes['transformer.resblocks.0.lmhra1.down_proj.weight'] == (D // 2, D, 1, 1, 1)
    assert shapes['transformer.resblocks.0.lmhra2.conv.weight'] == (D // 2, 1, 3, 1, 1)
    assert shapes['transformer.resblocks.0.lmhra2.up_proj.weight'] == (D, D // 2, 1, 1, 1)
    assert 'conv1.bias' not in shapes and 'proj' not in shapes


# --------------------------------------------------------------- local temporal
def test_lt_is_exactly_zero_at_init():
    model = build()
    lts = [m for m in model.modules() if isinstance(m, LocalTemporal)]
    assert len(lts) == 2 * TINY['layers']
    for lt in lts:
        assert torch.equal(lt(torch.randn(2, 3, N, D)), torch.zeros(2, 3, N, D))


def test_video_at_init_equals_blocks_without_lt():
    model, video = build(), torch.randn(2, 3, 4, 16, 16)
    with mock.patch.object(dve.ResidualAttentionBlock, 'local_temporal',
                           lambda self, lt, x, num_frames: x):
        without_lt = model(video)
    assert torch.equal(model(video), without_lt)


def test_lt_matches_official_conv3d_formulation():
    """The channels-last fast path equals LN -> Conv3d stack on (B, C, T, H, W)."""
    torch.manual_seed(0)
    lt = LocalTemporal(D, bottleneck_ratio=0.5)
    nn.init.normal_(lt.up_proj.weight, std=0.3)
    nn.init.normal_(lt.ln.weight, mean=1, std=0.1)
    x = torch.randn(2, 5, 6, D)  # (B, T, N = 2x3, C)
    ref = lt.ln(x).view(2, 5, 2, 3, D).permute(0, 4, 1, 2, 3)  # (B, C, T, H, W)
    ref = lt.up_proj(lt.act(lt.conv(lt.down_proj(ref))))
    ref = ref.permute(0, 2, 3, 4, 1).reshape(2, 5, 6, D)
    torch.testing.assert_close(lt(x), ref, atol=1e-6, rtol=1e-5)
    assert lt.conv.groups == D // 2 and lt.down_proj.out_channels == D // 2
    assert LocalTemporal(D, bottleneck_ratio=0.25).down_proj.out_channels == D // 4


def official_temporal_block(block, x: torch.Tensor, num_frames: int) -> torch.Tensor:
    """The official ``TemporalBlock`` written out (reference section 2.3 and 2.4) in its own
    layout: tokens ``(1 + HW, N*T, C)`` (frames the minor batch index), LT on ``(N, C, T, H, W)``
    through the Conv3d modules, attention as ``nn.MultiheadAttention`` computes it."""
    import torch.nn.functional as F

    def layer_norm(module, t):
        return F.layer_norm(t, (t.shape[-1], ), module.weight, module.bias, 1e-5)

    def quick_gelu(t):
        return t * torch.sigmoid(1.702 * t)

    def local_temporal(lt, p):  # p: (N, C, T, H, W) -> residual of the same shape
        p = layer_norm(lt.ln, p.permute(0, 2, 3, 4, 1)).permute(0, 4, 1, 2, 3)
        return lt.up_proj(quick_gelu(lt.conv(lt.down_proj(p))))

    x = x.transpose(0, 1)  # (1 + HW, N*T, C)
    length, batch, width = x.shape
    h = w = int(round((length - 1) ** 0.5))
    n, t = batch // num_frames, num_frames

    def with_lt(lt, x):
        p = x[1:].reshape(h, w, n, t, width).permute(2, 4, 3, 0, 1)  # (N, C, T, H, W)
        p = p + local_temporal(lt, p)
        p = p.permute(3, 4, 0, 2, 1).reshape(h * w, n * t, width)
        return torch.cat([x[:1], p])

    x = with_lt(block.lmhra1, x)
    y = layer_norm(block.ln_1, x)
    x = x + F.multi_head_attention_forward(
        y, y, y, width, block.attn.heads, block.attn.in_proj_weight, block.attn.in_proj_bias,
        None, None, False, 0.0, block.attn.out_proj.weight, block.attn.out_proj.bias,
        training=False, need_weights=False)[0]
    x = with_lt(block.lmhra2, x)
    y = layer_norm(block.ln_2, x)
    x = x + F.linear(quick_gelu(F.linear(y, block.mlp.c_fc.weight, block.mlp.c_fc.bias)),
                     block.mlp.c_proj.weight, block.mlp.c_proj.bias)
    return x.transpose(0, 1)


def test_block_equals_the_official_temporal_block_equations():
    """Each block with live (non-zero, non-default) LT modules is LT1 -> SA(ln_1) -> LT2 ->
    MLP(ln_2) with both LT residuals added in full, CLS untouched by LT."""
    model = build()
    perturb_lt(model)
    torch.manual_seed(2)
    with torch.no_grad():
        for name, param in model.named_parameters():
            if '.lmhra' in name and ('.ln.' in name or 'conv.bias' in name or 'down_proj.bias' in name):
                param.add_(0.2 * torch.randn_like(param))
    x = torch.randn(2 * 3, 1 + N, D)  # 2 videos of 3 frames, per-frame tokens
    for block in model.transformer.resblocks:
        with torch.no_grad():
            ours = block(x, num_frames=3)
            official = official_temporal_block(block, x, 3)
            torch.testing.assert_close(ours, official, atol=1e-5, rtol=1e-5)
            # both LT residuals matter at this scale (the check above sees either missing or halved)
            for lt in (block.lmhra1, block.lmhra2):
                with mock.patch.object(lt, 'forward', lambda video: torch.zeros_like(video)):
                    assert (block(x, num_frames=3) - official).abs().max() > 1e-2
        x = official


# ------------------------------------------------------- token layout and sharing
def test_video_token_layout_and_per_frame_equivalence_at_init():
    model, video = build(), torch.randn(2, 3, 3, 16, 16)
    frames = per_frame_tokens(model, video)  # (B, T, 1+N, D)
    pre_ln = tokens_before_ln_post(model, video)  # (B, 1+T*N, D)
    torch.testing.assert_close(pre_ln[:, 0], frames[:, :, 0].mean(1), atol=1e-6, rtol=0)
    for t in range(3):  # patches in (t, n) order
        torch.testing.assert_close(pre_ln[:, 1 + t * N:1 + (t + 1) * N], frames[:, t, 1:],
                                   atol=1e-6, rtol=0)
    torch.testing.assert_close(model(video), model.ln_post(pool_frames(frames)),
                               atol=1e-5, rtol=0)


def test_images_and_videos_share_spatial_modules():
    model, image = build(), torch.randn(2, 3, 16, 16)
    # One-frame clip with identity LTs == image.
    torch.testing.assert_close(model(image.unsqueeze(2)), model(image), atol=1e-6, rtol=0)

    called = {'image': set(), 'video': set()}
    current = called['image']
    for name, module in model.named_modules():
        module.register_forward_hook(lambda m, a, o, name=name: current.add(name))
    model(image)
    current = called['video']
    model(torch.randn(2, 3, 2, 16, 16))
    spatial = called['image'] - {''}
    assert {'conv1', 'ln_pre', 'ln_post', 'transformer.resblocks.0.attn',
            'transformer.resblocks.1.mlp.c_fc'} <= spatial
    assert not any('lmhra' in name for name in spatial)  # images skip LT
    assert spatial <= called['video']  # the very same module objects
    assert all('lmhra' in name for name in called['video'] - called['image'])
    assert {'transformer.resblocks.0.lmhra1', 'transformer.resblocks.1.lmhra2'} <= called['video']
    params = list(model.parameters())
    assert len({id(p) for p in params}) == len(params) == len(model.state_dict())


def test_temporal_modelling_is_live_after_training_lt():
    model, video = build(), torch.randn(1, 3, 3, 16, 16)
    perturb_lt(model)
    per_frame = model.ln_post(pool_frames(per_frame_tokens(model, video)))
    assert (model(video) - per_frame).abs().max() > 1e-2


@pytest.mark.parametrize('live', [False, True])
def test_frames_mix_only_through_lt(live):
    model = build()
    if live:
        perturb_lt(model)
    video = torch.randn(2, 3, 3, 16, 16)
    out = model(video)
    patches = out[:, 1:].view(2, 3, N, D)

    # Permuting frames permutes the patch tokens and keeps the CLS token,
    # unless LT mixes time.
    perm = [2, 0, 1]
    out_perm = model(video[:, :, perm])
    permuted = torch.allclose(out_perm[:, 1:].view(2, 3, N, D), patches[:, perm], atol=1e-5)
    assert permuted != live
    if not live:
        torch.testing.assert_close(out_perm[:, 0], out[:, 0], atol=1e-5, rtol=0)

    # Changing frame 0 reaches frames 1 and 2 only through LT.
    edited = video.clone()
    edited[:, :, 0] += torch.randn_like(edited[:, :, 0])
    others = model(edited)[:, 1:].view(2, 3, N, D)[:, 1:]
    assert torch.allclose(others, patches[:, 1:], atol=1e-6) != live


# ------------------------------------------------------------ position embedding
def test_resize_pos_embed():
    table = torch.randn(1 + 16, 8)
    assert resize_pos_embed(table, (4, 4), (4, 4)) is table
    for mode in ('bicubic', 'bilinear'):
        resized = resize_pos_embed(table, (4, 4), (6, 5), mode=mode)
        assert resized.shape == (1 + 30, 8)
        assert torch.equal(resized[0], table[0])
    constant = torch.cat([torch.zeros(1, 8), torch.ones(16, 8)])
    torch.testing.assert_close(resize_pos_embed(constant, (4, 4), (7, 7))[1:],
                               torch.ones(49, 8))
    with pytest.raises(ValueError, match=r'position table of 17 rows does not match a CLS token '
                       r'plus a \(3, 3\) patch grid'):
        resize_pos_embed(table, (3, 3), (4, 4))


def test_forward_at_another_resolution():
    model = build()
    image, video = torch.randn(2, 3, 24, 24), torch.randn(2, 3, 2, 24, 24)
    assert model(image).shape == (2, 1 + 36, D)
    assert model(video).shape == (2, 1 + 2 * 36, D)
    # Same as an encoder built at 24 whose table was resized once.
    native = DualVisionEncoder(arch=TINY, img_size=24).eval()
    state = model.state_dict()
    state['positional_embedding'] = resize_pos_embed(
        state['positional_embedding'], (4, 4), (6, 6))
    native.load_state_dict(state)
    torch.testing.assert_close(native(image), model(image))


# ---------------------------------------------------------------- feature maps
def test_out_indices_feature_maps():
    reference = build()
    model = build(out_indices=(0, -1))
    image, video = torch.randn(2, 3, 16, 16), torch.randn(2, 3, 3, 16, 16)
    maps = model(image)
    assert isinstance(maps, tuple) and [m.shape for m in maps] == [(2, D, 4, 4)] * 2
    last = tokens_before_ln_post(reference, image)[:, 1:]
    torch.testing.assert_close(maps[-1], last.transpose(1, 2).reshape(2, D, 4, 4))
    assert [m.shape for m in model(video)] == [(2, D, 3, 4, 4)] * 2
    assert [m.shape for m in build(out_indices=[0])(torch.randn(1, 3, 32, 32))] == [(1, D, 8, 8)]

    early = build(out_indices=(0, ))
    ran = []
    early.transformer.resblocks[1].register_forward_hook(lambda *args: ran.append(1))
    early(image)
    assert not ran  # blocks after the last requested index are skipped


# ---------------------------------------------------- checkpointing, drop path, bf16
def test_gradient_checkpointing_gives_same_gradients():
    model = build().train()
    perturb_lt(model)
    model_cp = copy.deepcopy(model)
    model_cp.with_cp = True
    video = torch.randn(2, 3, 3, 16, 16)
    grads = []
    for m in (model, model_cp):
        x = video.clone().requires_grad_()
        with mock.patch.object(dve, 'checkpoint', wraps=dve.checkpoint) as spy:
            m(x).square().mean().backward()
        grads.append((spy.call_count, x.grad, [p.grad for p in m.parameters()]))
    (calls, x_grad, p_grads), (calls_cp, x_grad_cp, p_grads_cp) = grads
    assert (calls, calls_cp) == (0, TINY['layers'])
    torch.testing.assert_close(x_grad_cp, x_grad)
    for grad, grad_cp in zip(p_grads, p_grads_cp):
        torch.testing.assert_close(grad_cp, grad)
    assert all(g is not None for g in p_grads)


def test_drop_path_is_linear_over_depth():
    model = build(drop_path_rate=0.2)
    blocks = model.transformer.resblocks
    assert isinstance(blocks[0].drop_path, nn.Identity)
    assert blocks[1].drop_path.drop_prob == pytest.approx(0.2)
    image = torch.randn(2, 3, 16, 16)
    torch.testing.assert_close(model(image), build()(image))  # inactive in eval


def test_bf16_forward_close_to_fp32():
    model = build()
    perturb_lt(model)
    for x in (torch.randn(2, 3, 16, 16), torch.randn(2, 3, 3, 16, 16)):
        ref = model(x)
        with torch.autocast('cpu', dtype=torch.bfloat16):
            autocast_out = model(x)
        half_out = copy.deepcopy(model).bfloat16()(x.bfloat16())
        assert half_out.dtype == torch.bfloat16
        for out in (autocast_out, half_out):
            assert torch.isfinite(out).all()
            assert (out.float() - ref).abs().max() < 0.1
            assert (out.float() - ref).abs().mean() < 0.02


# ---------------------------------------------------------------- CLIP loading
HF_VISION = dict(hidden_size=32, intermediate_size=128, num_hidden_layers=2,
                 num_attention_heads=2, image_size=16, patch_size=4,
                 hidden_act='quick_gelu')


@pytest.fixture(scope='module')
def hf_clip(tmp_path_factory):
    transformers = pytest.importorskip('transformers')
    torch.manual_seed(0)
    model = transformers.CLIPVisionModel(transformers.CLIPVisionConfig(**HF_VISION)).eval()
    with torch.no_grad():  # non-trivial LayerNorms
        for name, param in model.named_parameters():
            if 'norm' in name:
                param.add_(0.1 * torch.randn_like(param))
    directory = tmp_path_factory.mktemp('hf_clip')
    model.save_pretrained(directory)
    return model, str(directory)


def load(path, **kwargs) -> DualVisionEncoder:
    model = DualVisionEncoder(arch=TINY, img_size=kwargs.pop('img_size', 16),
                              init_cfg=dict(type='mplug2.PretrainedCLIP', checkpoint=path),
                              **kwargs)
    model.init_weights()
    return model.eval()


def test_hf_clip_parity(hf_clip):
    hf, directory = hf_clip
    model = load(directory)
    image = torch.randn(2, 3, 16, 16)
    with torch.no_grad():
        expected = hf.vision_model.post_layernorm(hf(pixel_values=image).last_hidden_state)
        torch.testing.assert_close(model(image), expected, atol=1e-5, rtol=1e-5)
    source = hf.vision_model.embeddings.position_embedding.weight
    assert model.positional_embedding.abs().sum() > 0
    assert torch.equal(model.positional_embedding, source)
    for module in model.modules():  # LT modules keep their identity init
        if isinstance(module, LocalTemporal):
            assert not module.up_proj.weight.any() and not module.up_proj.bias.any()


def test_hf_clip_model_directory_and_wrong_activation(tmp_path):
    transformers = pytest.importorskip('transformers')
    text = dict(hidden_size=32, intermediate_size=64, num_hidden_layers=1,
                num_attention_heads=2, vocab_size=99, max_position_embeddings=16)
    clip = transformers.CLIPModel(transformers.CLIPConfig(
        text_config=text, vision_config=HF_VISION, projection_dim=16))
    clip.save_pretrained(tmp_path / 'full')
    model = load(str(tmp_path / 'full'))
    torch.testing.assert_close(model.ln_post.weight, clip.vision_model.post_layernorm.weight)
    q, k, v = model.transformer.resblocks[1].attn.in_proj_weight.chunk(3)
    torch.testing.assert_close(k, clip.vision_model.encoder.layers[1].self_attn.k_proj.weight)

    gelu = transformers.CLIPVisionModel(
        transformers.CLIPVisionConfig(**dict(HF_VISION, hidden_act='gelu')))
    gelu.save_pretrained(tmp_path / 'gelu')
    with pytest.raises(ValueError, match='quick_gelu'):
        load(str(tmp_path / 'gelu'))


def test_hf_clip_at_another_resolution(hf_clip):
    hf, directory = hf_clip
    model = load(directory, img_size=24)
    source = hf.vision_model.embeddings.position_embedding.weight
    assert model.positional_embedding.shape == (1 + 36, D)
    torch.testing.assert_close(model.positional_embedding,
                               resize_pos_embed(source, (4, 4), (6, 6)))
    assert model(torch.randn(1, 3, 24, 24)).shape == (1, 37, D)


def openai_state_dict(encoder: DualVisionEncoder) -> dict:
    """OpenAI CLIP layout of ``encoder``'s spatial weights, plus a text tower."""
    state = {f'visual.{k}': v.clone() for k, v in encoder.state_dict().items()
             if 'lmhra' not in k}
    state['visual.conv1.weight'] = state['visual.conv1.weight'].squeeze(2)
    state['visual.proj'] = torch.randn(D, 16)
    state.update({
        'positional_embedding': torch.randn(8, 24),
        'token_embedding.weight': torch.randn(99, 24),
        'transformer.resblocks.0.attn.in_proj_weight': torch.randn(72, 24),
        'ln_final.weight': torch.ones(24),
        'text_projection': torch.randn(24, 16),
        'logit_scale': torch.tensor(4.6),
    })
    return state


class _Node(nn.Module):

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x


def script_archive(state: dict) -> torch.jit.ScriptModule:
    """A TorchScript module whose state_dict() is ``state`` (nested modules)."""
    root = _Node()
    for key, value in state.items():
        *path, leaf = key.split('.')
        module = root
        for part in path:
            if part not in module._modules:
                module.add_module(part, _Node())
            module = module._modules[part]
        module.register_parameter(leaf, nn.Parameter(value))
    return torch.jit.script(root)


def test_openai_checkpoints_plain_and_torchscript(hf_clip, tmp_path):
    hf, directory = hf_clip
    reference = load(directory)
    state = openai_state_dict(reference)
    assert state['visual.conv1.weight'].shape == (D, 3, 4, 4)
    torch.save(state, tmp_path / 'plain.pt')
    torch.jit.save(script_archive(state), str(tmp_path / 'jit.pt'))

    source = hf.vision_model.embeddings.position_embedding.weight
    for name, is_script in (('plain.pt', False), ('jit.pt', True)):
        with mock.patch.object(torch.jit, 'load', wraps=torch.jit.load) as jit_load:
            model = load(str(tmp_path / name))
        assert jit_load.called == is_script
        for key, value in reference.state_dict().items():
            if 'lmhra' not in key:  # LT modules are not in CLIP checkpoints
                assert torch.equal(model.state_dict()[key], value), (name, key)
        assert model.positional_embedding.abs().sum() > 0
        assert torch.equal(model.positional_embedding, source)


@pytest.mark.parametrize('edit,match', [
    (lambda s: s.update({'visual.extra_token': torch.zeros(D)}), 'visual.extra_token'),
    (lambda s: s.update({'not_clip': torch.zeros(1)}), 'not_clip'),
    (lambda s: s.update({'visual.transformer.resblocks.7.ln_1.weight': torch.ones(D)}),
     'transformer.resblocks.7.ln_1.weight'),
    (lambda s: s.pop('visual.ln_post.weight'), 'ln_post.weight'),
    (lambda s: s.pop('visual.positional_embedding'), 'positional_embedding'),
])
def test_openai_checkpoint_strictness(edit, match, tmp_path):
    state = openai_state_dict(build())
    edit(state)
    torch.save(state, tmp_path / 'bad.pt')
    with pytest.raises(KeyError, match=match):
        load_clip_weights(build(), str(tmp_path / 'bad.pt'))


def test_openai_checkpoint_shape_mismatch(tmp_path):
    state = openai_state_dict(build())
    state['visual.conv1.weight'] = torch.randn(D, 3, 8, 8)  # another patch size
    torch.save(state, tmp_path / 'bad.pt')
    with pytest.raises(ValueError, match='conv1.weight'):
        load_clip_weights(build(), str(tmp_path / 'bad.pt'))


def test_default_init():
    model = build()
    model.init_weights()  # no init_cfg: keeps the random CLIP-style init
    assert model.positional_embedding.std() > 0.05 and model.class_embedding.std() > 0.05
    assert torch.equal(model.ln_pre.weight, torch.ones(D))
    assert not model.transformer.resblocks[0].attn.in_proj_bias.any()


def test_init_cfg_types_resolve_in_our_scope_and_from_host_scopes(hf_clip):
    """``type='PretrainedCLIP'`` in the mplug2 scope (the registry imports mplug2.checkpoints),
    ``type='mplug2.PretrainedCLIP'`` from a host library's scope."""
    from mmengine.registry import DefaultScope
    from mmengine.registry import WEIGHT_INITIALIZERS as ROOT
    _, directory = hf_clip
    reference = load(directory)
    for scope, name in (('mplug2', 'PretrainedCLIP'), ('mmaction', 'mplug2.PretrainedCLIP')):
        with DefaultScope.overwrite_default_scope(scope):
            model = DualVisionEncoder(arch=TINY, img_size=16,
                                      init_cfg=dict(type=name, checkpoint=directory))
            model.init_weights()
        for key, value in reference.state_dict().items():
            if 'lmhra' not in key:  # LT modules are not in CLIP checkpoints
                assert torch.equal(model.state_dict()[key], value), (scope, key)
    for name in ('PretrainedCLIP', 'PretrainedBERT', 'PretrainedMPLUG2'):
        assert ROOT.get(f'mplug2.{name}') is not None
