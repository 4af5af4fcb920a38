import json
import shutil

import pytest
import torch
from mmengine.logging import MessageHub, MMLogger
from mmengine.model import BaseModel

import mplug2  # noqa: F401
import mplug2.engine.hooks  # noqa: F401  registers BadSampleReportHook
import mplug2.evaluation  # noqa: F401
from mplug2.datasets import SampleLoadError, VideoLoadError, VideoQADataset
from mplug2.engine.hooks import BadSampleReportHook
from mplug2.models.data_preprocessors import MPLUG2DataPreprocessor

PIPELINE = [
    dict(type='mplug2.LoadVideoFrames', num_frames=4, test_mode=True),
    dict(type='mplug2.PackMultimodalInputs'),
]


@pytest.fixture
def broken_qa(shapes_dir, tmp_path):
    """4 QA samples over 4 videos: #1 is missing, #2 is corrupt."""
    videos = tmp_path / 'videos'
    videos.mkdir()
    for i in (0, 3):
        shutil.copy(shapes_dir / 'videos' / f'shapes_train_0000{i}.mp4', videos)
    (videos / 'shapes_train_00002.mp4').write_bytes(b'\x00' * 2048)
    ann = tmp_path / 'qa.jsonl'
    ann.write_text(''.join(
        json.dumps(dict(video_id=f'shapes_train_0000{i}', question='what shape is it?',
                        answer='circle')) + '\n' for i in range(4)))
    return str(ann), str(videos)


def test_raise_by_default(broken_qa):
    ann, videos = broken_qa
    ds = VideoQADataset(ann, data_prefix=dict(video=videos), pipeline=PIPELINE)
    assert ds[0]['inputs'].shape == (3, 4, 32, 32)
    with pytest.raises(VideoLoadError, match=r'shapes_train_00001\.mp4.*file not found'):
        ds[1]
    with pytest.raises(VideoLoadError, match=r'shapes_train_00002\.mp4.*corrupt'):
        ds[2]


def test_skip_replaces_counts_and_records(broken_qa):
    ann, videos = broken_qa
    ds = VideoQADataset(ann, data_prefix=dict(video=videos), pipeline=PIPELINE, on_error='skip')
    data = ds[1]  # 1 missing, 2 corrupt -> replaced by 3
    sample = data['data_samples']
    assert sample.video_id == 'shapes_train_00003' and sample.sample_idx == 3
    skipped = sample.skipped_samples
    assert [s['index'] for s in skipped] == [1, 2]
    assert skipped[0]['filename'].endswith('shapes_train_00001.mp4')
    assert 'file not found' in skipped[0]['reason'] and 'corrupt' in skipped[1]['reason']
    assert ds.num_skipped == 2
    assert 'skipped_samples' not in ds[0]['data_samples']


def test_skip_gives_up_after_max_consecutive(tmp_path):
    ann = tmp_path / 'qa.jsonl'
    ann.write_text(''.join(json.dumps(dict(video_id=f'v{i}', question='q', answer='a')) + '\n'
                           for i in range(3)))
    ds = VideoQADataset(str(ann), data_prefix=dict(video=str(tmp_path)), pipeline=PIPELINE,
                        on_error='skip', max_consecutive_skips=5)
    with pytest.raises(SampleLoadError, match='6 consecutive samples'):
        ds[0]


class _FakeRunner:

    def __init__(self):
        self.message_hub = MessageHub.get_instance('bad_sample_hook_test')
        self.logger = MMLogger.get_instance('bad_sample_hook_test')
        self.epoch = 0


def test_hook_aggregates_from_batches(broken_qa, capsys):
    ann, videos = broken_qa
    ds = VideoQADataset(ann, data_prefix=dict(video=videos), pipeline=PIPELINE, on_error='skip')
    runner, hook = _FakeRunner(), BadSampleReportHook()
    hook.before_train_epoch(runner)
    batch = dict(inputs=[], data_samples=[ds[i]['data_samples'] for i in range(4)])
    hook.after_train_iter(runner, 0, batch)
    capsys.readouterr()
    hook.after_train_epoch(runner)
    logged = capsys.readouterr().out  # MMLogger writes to stdout
    # ds[1] replaced samples 1 and 2, ds[2] replaced sample 2
    assert runner.message_hub.get_info('bad_samples/train_epoch') == 3
    assert runner.message_hub.get_info('bad_samples/train_total') == 3
    files = runner.message_hub.get_info('bad_samples/train_files')
    assert sorted(f.rsplit('/', 1)[-1] for f in files) == ['shapes_train_00001.mp4',
                                                           'shapes_train_00002.mp4']
    assert 'WARNING - BadSampleReportHook: 3 bad sample(s)' in logged
    assert 'shapes_train_00002.mp4 (x2)' in logged and 'shapes_train_00001.mp4 (x1)' in logged
    hook.before_val_epoch(runner)
    hook.after_val_epoch(runner, {})
    assert runner.message_hub.get_info('bad_samples/val_epoch') == 0
    assert runner.message_hub.get_scalar('val/bad_samples').current() == 0


class _ToyModel(BaseModel):

    def __init__(self):
        super().__init__(data_preprocessor=MPLUG2DataPreprocessor())
        self.weight = torch.nn.Parameter(torch.ones(1))

    def forward(self, inputs, data_samples=None, mode='tensor'):
        if mode == 'loss':
            return dict(loss=(inputs.mean() * self.weight).abs())
        if mode == 'predict':
            for sample in data_samples:
                sample.set_field('circle', 'pred_answer')
            return data_samples
        return inputs


def test_hook_in_runner_with_workers(broken_qa, tmp_path):
    from mmengine.runner import Runner
    ann, videos = broken_qa

    def dataset(test_mode):
        return VideoQADataset(ann, data_prefix=dict(video=videos), pipeline=PIPELINE,
                              on_error='skip', test_mode=test_mode)

    def loader(test_mode):
        return dict(dataset=dataset(test_mode), batch_size=2, num_workers=1,
                    sampler=dict(type='DefaultSampler', shuffle=False),
                    collate_fn=dict(type='pseudo_collate'))

    runner = Runner(
        model=_ToyModel(), work_dir=str(tmp_path / 'work'),
        train_dataloader=loader(False), val_dataloader=loader(True),
        val_evaluator=dict(type='mplug2.VideoQAAccuracy'),
        train_cfg=dict(by_epoch=True, max_epochs=1, val_interval=1), val_cfg=dict(),
        optim_wrapper=dict(optimizer=dict(type='SGD', lr=0.01)),
        custom_hooks=[dict(type='mplug2.BadSampleReportHook')],
        default_hooks=dict(checkpoint=None), default_scope='mplug2',
        experiment_name='bad_sample_runner_test')
    runner.train()
    hub = runner.message_hub
    # dataloader workers are other processes: the counts come from the data samples
    assert hub.get_info('bad_samples/train_epoch') == 3  # samples 1, 2 and 2 again
    assert hub.get_info('bad_samples/val_epoch') == 3
    assert hub.get_scalar('val/bad_samples').current() == 3
    log = next((tmp_path / 'work').rglob('*.log')).read_text()
    assert 'BadSampleReportHook: 3 bad sample(s) were replaced during train epoch' in log
    assert 'shapes_train_00001.mp4' in log and 'bad_samples: 3' in log
    assert 'videoqa/acc: 100.0000' in log
