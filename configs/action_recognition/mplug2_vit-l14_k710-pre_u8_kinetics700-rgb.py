# Stage 2 on Kinetics-700: 5 epochs from the Kinetics-710 model, same recipe
# as mplug2_vit-l14_k710-pre_u8_kinetics400-rgb.py.
_base_ = ['./mplug2_vit-l14_k710-pre_u8_kinetics400-rgb.py']

model = dict(cls_head=dict(num_classes=700))

data_root = 'data/kinetics700/videos_train'
data_root_val = 'data/kinetics700/videos_val'
ann_file_train = 'data/kinetics700/kinetics700_train_list_videos.txt'
ann_file_val = 'data/kinetics700/kinetics700_val_list_videos.txt'

train_dataloader = dict(
    dataset=dict(ann_file=ann_file_train, data_prefix=dict(video=data_root)))
val_dataloader = dict(
    dataset=dict(ann_file=ann_file_val, data_prefix=dict(video=data_root_val)))
test_dataloader = val_dataloader
