# Paper ablation (Table 16): ImageNet-1K fine-tuning with the universal layers
# of mPLUG-2 after the vision encoder (visual tokens -> universal layers ->
# Dropout(LN(V + U)) -> CLS token -> linear head). Same recipe as
# mplug2_vit-l14_32xb128_in1k-224px.py; both modules start from the same
# mPLUG-2 checkpoint (`vision_encoder.*` and `universal_layers.*`).
_base_ = ['./mplug2_vit-l14_32xb128_in1k-224px.py']

mplug2_checkpoint = 'checkpoints/mplug2_vit-l14_pretrain.pth'
model = dict(
    backbone=dict(
        universal_layers=dict(
            type='mplug2.UniversalLayers',
            arch='large',  # BERT-large width 1024 = ViT-L/14 width
            num_layers=2,
            num_queries=50,
            init_cfg=dict(
                type='Pretrained',
                checkpoint=mplug2_checkpoint,
                prefix='universal_layers.')),
        init_cfg=dict(checkpoint=mplug2_checkpoint)))
