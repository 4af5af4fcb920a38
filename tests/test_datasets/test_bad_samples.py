import itertools
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
from mplug2.structures import DataSample

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
    _count = itertools.count()

    def __init__(self):
        # a logger per runner: its handler writes to the sys.stdout of this test's capsys
        name = f'bad_sample_hook_test_{next(self._count)}'
        self.message_hub = MessageHub.get_instance(name)
        self.logger = MMLogger.get_instance(name)
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
    # ds[1] walked past samples 1 and 2, ds[2] past sample 2: two bad samples, once each
    assert runner.message_hub.get_info('bad_samples/train_epoch') == 2
    assert runner.message_hub.get_info('bad_samples/train_total') == 2
    files = runner.message_hub.get_info('bad_samples/train_files')
    assert sorted(f.rsplit('/', 1)[-1] for f in files) == ['shapes_train_00001.mp4',
                                                           'shapes_train_00002.mp4']
    assert 'WARNING - BadSampleReportHook: 2 bad sample(s) skipped during train epoch 1' in logged
    assert 'shapes_train_00002.mp4 (x1)' in logged and 'shapes_train_00001.mp4 (x1)' in logged
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
    assert hub.get_info('bad_samples/train_epoch') == 2  # samples 1 and 2, once each
    assert hub.get_info('bad_samples/val_epoch') == 2
    assert hub.get_scalar('val/bad_samples').current() == 2
    log = next((tmp_path / 'work').rglob('*.log')).read_text()
    assert 'Epoch(train) [1]' in log and 'Epoch(val) [1]' in log
    assert 'BadSampleReportHook: 2 bad sample(s) skipped during train epoch 1 ' in log
    assert 'BadSampleReportHook: 2 bad sample(s) skipped during val epoch 1 ' in log
    assert 'shapes_train_00001.mp4' in log and 'bad_samples: 2' in log
    # val: the bad samples are placeholders with their own questions (the toy model answers
    # 'circle' to everything)
    assert 'videoqa/acc: 100.0000' in log


# --------------------------------------------------------------------- a bad video, 5 questions
@pytest.fixture
def five_question_bad_video(shapes_dir, tmp_path):
    """9 QA samples over 3 videos: video 0 (2 questions, good), video 1 (5 questions,
    corrupt: samples 2..6), video 2 (2 questions, good: samples 7, 8)."""
    videos = tmp_path / 'videos'
    videos.mkdir()
    for i in (0, 2):
        shutil.copy(shapes_dir / 'videos' / f'shapes_train_0000{i}.mp4', videos)
    (videos / 'shapes_train_00001.mp4').write_bytes(b'\x00' * 2048)
    questions = [(0, 2), (1, 5), (2, 2)]
    ann = tmp_path / 'qa.jsonl'
    ann.write_text(''.join(
        json.dumps(dict(video_id=f'shapes_train_0000{v}', question=f'question {v} {q}?',
                        answer=f'answer{v}{q}')) + '\n'
        for v, n in questions for q in range(n)))
    return str(ann), str(videos)


BAD = [2, 3, 4, 5, 6]


def test_train_replacement_unchanged_and_bad_samples_loaded_once(five_question_bad_video):
    ann, videos = five_question_bad_video
    ds = VideoQADataset(ann, data_prefix=dict(video=videos), pipeline=PIPELINE, on_error='skip')
    calls = []
    prepare = ds._prepare

    def counting_prepare(idx):
        calls.append(idx)
        return prepare(idx)

    ds._prepare = counting_prepare
    for i in range(len(ds)):
        sample = ds[i]['data_samples']
        # the replacement is the next good index, whatever is already known to be bad
        assert sample.sample_idx == (7 if i in BAD else i)
        if i in BAD:
            assert [s['index'] for s in sample.skipped_samples] == list(range(i, 7))
    # each bad index loaded once (not 1 + 2 + ... + 5 times); 7 loaded for every replacement
    assert sorted(c for c in calls if c in BAD) == BAD
    assert calls.count(7) == 6
    assert ds.num_skipped == 5
    assert ds[4]['data_samples'].sample_idx == 7  # the second epoch walks the same way


def test_test_mode_placeholder_keeps_identity(five_question_bad_video):
    ann, videos = five_question_bad_video
    ds = VideoQADataset(ann, data_prefix=dict(video=videos), pipeline=PIPELINE,
                        on_error='skip', test_mode=True)
    good = ds[7]
    data = ds[3]
    sample = data['data_samples']
    assert sample.missing is True and sample.sample_idx == 3
    assert sample.question_id == 3 and sample.question == 'question 1 1?'
    assert sample.video_id == 'shapes_train_00001'
    assert sample.filename.endswith('shapes_train_00001.mp4')
    assert 'frame_inds' not in sample  # nothing loading produces
    assert data['inputs'].shape == good['inputs'].shape == (3, 4, 32, 32)
    assert data['inputs'].dtype == torch.uint8 and not data['inputs'].any()
    assert [s['index'] for s in sample.skipped_samples] == [3, 4, 5, 6]
    assert 'missing' not in good['data_samples']


def _qa_runner(ann, videos, work_dir, max_epochs, num_workers=0):
    from mmengine.runner import Runner

    def loader(test_mode):
        return dict(dataset=VideoQADataset(ann, data_prefix=dict(video=videos), pipeline=PIPELINE,
                                           on_error='skip', test_mode=test_mode),
                    batch_size=4, num_workers=num_workers,
                    sampler=dict(type='DefaultSampler', shuffle=False),
                    collate_fn=dict(type='pseudo_collate'))

    return Runner(
        model=_ToyModel(), work_dir=work_dir,
        train_dataloader=loader(False), val_dataloader=loader(True),
        val_evaluator=dict(type='mplug2.VideoQAAccuracy'),
        train_cfg=dict(by_epoch=True, max_epochs=max_epochs, val_interval=1), val_cfg=dict(),
        optim_wrapper=dict(optimizer=dict(type='SGD', lr=0.01)),
        custom_hooks=[dict(type='mplug2.BadSampleReportHook')],
        default_hooks=dict(checkpoint=None, logger=dict(type='LoggerHook', interval=1)),
        default_scope='mplug2', experiment_name=f'bad_sample_epochs_{max_epochs}')


def test_bad_video_with_five_questions_counted_once_per_epoch(five_question_bad_video, tmp_path):
    ann, videos = five_question_bad_video
    runner = _qa_runner(ann, videos, str(tmp_path / 'work'), max_epochs=2)
    runner.train()
    hub = runner.message_hub
    assert hub.get_info('bad_samples/train_epoch') == 5  # not 5 + 4 + 3 + 2 + 1
    assert hub.get_info('bad_samples/train_total') == 10  # 2 epochs
    assert hub.get_info('bad_samples/val_epoch') == 5
    assert hub.get_info('bad_samples/val_total') == 10
    assert list(hub.get_info('bad_samples/train_files').values()) == [5]
    log = next((tmp_path / 'work').rglob('*.log')).read_text()
    for epoch in (1, 2):
        assert f'Epoch(train) [{epoch}]' in log and f'Epoch(val) [{epoch}]' in log
        assert f'5 bad sample(s) skipped during train epoch {epoch} ' in log
        assert f'5 bad sample(s) skipped during val epoch {epoch} ' in log
    assert 'train epoch 0' not in log and 'train epoch 3' not in log
    assert 'shapes_train_00001.mp4 (x5)' in log and '10 in train since the start' in log


def test_hook_api_counts_each_bad_sample_once(five_question_bad_video, capsys):
    ann, videos = five_question_bad_video
    ds = VideoQADataset(ann, data_prefix=dict(video=videos), pipeline=PIPELINE, on_error='skip')
    runner, hook = _FakeRunner(), BadSampleReportHook()
    for epoch in range(2):
        runner.epoch = epoch
        hook.before_train_epoch(runner)
        for start in (0, 4, 8):  # batches of 4
            batch = dict(inputs=[], data_samples=[ds[i]['data_samples']
                                                  for i in range(start, min(start + 4, 9))])
            hook.after_train_iter(runner, start // 4, batch)
        capsys.readouterr()
        hook.after_train_epoch(runner)
        assert runner.message_hub.get_info('bad_samples/train_epoch') == 5
        assert f'5 bad sample(s) skipped during train epoch {epoch + 1} ' in capsys.readouterr().out
    assert runner.message_hub.get_info('bad_samples/train_total') == 10


def test_counting_across_ranks_deduplicates(monkeypatch):
    from mplug2.engine.hooks import bad_sample_hook
    from mplug2.engine.hooks.bad_sample_hook import unique_skipped_samples

    def record(index, name='bad.mp4'):
        return dict(index=index, filename=name, reason='corrupt')

    # rank 0 met 2 (walking from 2 to 4) and 3, rank 1 met 3 (from 3) and, through the
    # sampler's padding, 2 again; 7 of another file is another sample
    rank0 = [record(2), record(3), record(3)]
    rank1 = [record(3), record(2), record(7, 'other.mp4')]
    unique = unique_skipped_samples([rank0, rank1])
    assert [(r['index'], r['filename']) for r in unique] == [(2, 'bad.mp4'), (3, 'bad.mp4'),
                                                             (7, 'other.mp4')]
    assert unique_skipped_samples([[], []]) == []

    monkeypatch.setattr(bad_sample_hook, 'all_gather_object',
                        lambda local: [local, rank1 if local else []])
    runner, hook = _FakeRunner(), BadSampleReportHook()
    hook.before_test_epoch(runner)
    hook.after_test_iter(runner, 0, dict(inputs=[], data_samples=[
        DataSample(skipped_samples=rank0[:2]), DataSample(skipped_samples=rank0[2:])]))
    assert hook._report(runner, 'test') == 3
    assert runner.message_hub.get_info('bad_samples/test_files') == {'bad.mp4': 2, 'other.mp4': 1}
    assert runner.message_hub.get_scalar('test/bad_samples').current() == 3
    # modes are separate: nothing in train
    hook.before_train_epoch(runner)
    assert hook._report(runner, 'train') == 0
