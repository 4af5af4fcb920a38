# Stage 2 on Kinetics-600: 5 epochs from the Kinetics-710 model, same recipe
# as mplug2_vit-l14_k710-pre_u8_kinetics400-rgb.py.
_base_ = ['./mplug2_vit-l14_k710-pre_u8_kinetics400-rgb.py']

model = dict(cls_head=dict(num_classes=600))

data_root = 'data/kinetics600/videos_train'
data_root_val = 'data/kinetics600/videos_val'
ann_file_train = 'data/kinetics600/kinetics600_train_list_videos.txt'
ann_file_val = 'data/kinetics600/kinetics600_val_list_videos.txt'

train_dataloader = dict(
    dataset=dict(ann_file=ann_file_train, data_prefix=dict(video=data_root)))
val_dataloader = dict(
    dataset=dict(ann_file=ann_file_val, data_prefix=dict(video=data_root_val)))
test_dataloader = val_dataloader
