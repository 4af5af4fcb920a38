import importlib.util
import json
import os.path as osp

import pytest

import mplug2  # noqa: F401
from mplug2.datasets import (AnnotationError, VideoCaptionDataset, VideoQADataset,
                             VideoRetrievalDataset, load_answer_list)

ROOT = osp.abspath(osp.join(osp.dirname(__file__), '..', '..'))


def _tool(name):
    path = osp.join(ROOT, 'tools', 'dataset_converters', f'{name}.py')
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _msrvtt_files(tmp_path):
    videos = [dict(video_id='video0', split='train'), dict(video_id='video1', split='train'),
              dict(video_id='video2', split='validate'), dict(video_id='video3', split='test'),
              dict(video_id='video4', split='test')]
    sentences = [dict(video_id=f'video{i % 5}', caption=f'caption {i} of video{i % 5}', sen_id=i)
                 for i in range(10)]
    data = tmp_path / 'MSRVTT_data.json'
    data.write_text(json.dumps(dict(info={}, videos=videos, sentences=sentences)))
    test_csv = tmp_path / 'MSRVTT_JSFUSION_test.csv'
    test_csv.write_text(',key,vid_key,video_id,sentence\n'
                        '0,ret0,msr4,video4,a man talks\n1,ret1,msr3,video3,a dog barks\n')
    train_csv = tmp_path / 'MSRVTT_train.9k.csv'
    train_csv.write_text('video_id\nvideo0\nvideo2\n')
    return data, test_csv, train_csv


def test_convert_msrvtt(tmp_path):
    data, test_csv, train_csv = _msrvtt_files(tmp_path)
    files = _tool('convert_msrvtt').main(['--data-json', str(data), '--test-csv', str(test_csv),
                                          '--train-csv', str(train_csv),
                                          '--out-dir', str(tmp_path / 'out')])
    train = VideoCaptionDataset(files['caption_train'])
    assert len(train) == 4  # videos 0 and 1, two captions each
    test = VideoCaptionDataset(files['caption_test'], test_mode=True)
    assert [test.get_data_info(i)['video_id'] for i in range(len(test))] == ['video3', 'video4']
    assert test.get_data_info(0)['gt_caption'] == ['caption 3 of video3', 'caption 8 of video3']
    assert len(VideoCaptionDataset(files['caption_val'], test_mode=True)) == 1
    test1k = VideoCaptionDataset(files['caption_test1k'], test_mode=True)
    assert test1k.get_data_info(0)['video_id'] == 'video4'  # csv order
    ret = VideoRetrievalDataset(files['retrieval_test1k'], test_mode=True)
    assert ret.metainfo['texts'] == ['a man talks', 'a dog barks']
    ret_train = VideoRetrievalDataset(files['retrieval_train'])
    assert len(ret_train) == 4 and ret_train.num_videos == 2


def test_convert_msrvtt_errors(tmp_path):
    data, _, _ = _msrvtt_files(tmp_path)
    bad_csv = tmp_path / 'bad.csv'
    bad_csv.write_text('key,video_id,sentence\nret0,video9,hello\n')
    convert = _tool('convert_msrvtt').convert_msrvtt
    with pytest.raises(AnnotationError, match=r"bad\.csv:2: video 'video9' is not in"):
        convert(str(data), str(tmp_path / 'o'), test_csv=str(bad_csv))
    no_column = tmp_path / 'nocol.csv'
    no_column.write_text('key,sentence\nret0,hello\n')
    with pytest.raises(AnnotationError, match=r"nocol\.csv:1: missing column"):
        convert(str(data), str(tmp_path / 'o'), test_csv=str(no_column))
    broken = tmp_path / 'broken.json'
    broken.write_text(json.dumps(dict(videos=[dict(video_id='v0', split='dev')], sentences=[])))
    with pytest.raises(AnnotationError, match=r"broken\.json\[videos\]\[0\]: unknown split"):
        convert(str(broken), str(tmp_path / 'o'))


def test_convert_videoqa_formats(tmp_path):
    tool = _tool('convert_videoqa')
    src = tmp_path / 'train_qa.json'
    src.write_text(json.dumps([
        dict(id=5, video_id=12, question='what is a man doing?', answer='cook', category_id=3),
        dict(id=6, video_id=13, question='who is talking?', answer='man', category_id=1),
        dict(id=7, video_id=13, question='is it?', answer='man', category_id=1),
    ]))
    out = tmp_path / 'msrvtt_qa_train.jsonl'
    tool.main([str(src), str(out), '--format', 'msrvtt-qa', '--ans2label',
               str(tmp_path / 'ans2label.json')])
    ds = VideoQADataset(str(out))
    info = ds.get_data_info(0)
    assert (info['video_id'], info['question_id'], info['question_type']) == ('video12', 5, 'what')
    assert ds.get_data_info(2)['question_type'] == 'other'
    assert load_answer_list(str(tmp_path / 'ans2label.json')) == ['man', 'cook']

    mapping = tmp_path / 'youtube_mapping.txt'
    mapping.write_text('-4wsuPCjDBc_5_15 vid12\nabc_1_2 vid13\n')
    out = tmp_path / 'msvd.jsonl'
    tool.convert_videoqa(str(src), str(out), 'msvd-qa', mapping=str(mapping))
    assert VideoQADataset(str(out)).get_data_info(0)['video_id'] == '-4wsuPCjDBc_5_15'
    mapping.write_text('abc_1_2 vid13\n')
    with pytest.raises(AnnotationError, match=r'train_qa\.json\[0\]: vid12 is not in'):
        tool.convert_videoqa(str(src), str(out), 'msvd-qa', mapping=str(mapping))

    tsv = tmp_path / 'Test_frameqa_question.tsv'
    tsv.write_text('gif_name\tquestion\tanswer\tvid_id\tkey\ttype\n'
                   'tumblr_abc\twhat is the cat doing\tplay\tgif1\t1\t0\n'
                   'tumblr_def\thow many dogs\t\tgif2\t2\t1\n')
    with pytest.raises(AnnotationError,
                       match=r"frameqa_question\.tsv:3: empty value in column 'answer'"):
        tool.convert_videoqa(str(tsv), str(tmp_path / 'tgif.jsonl'), 'tgif-frameqa')
    tsv.write_text('gif_name\tquestion\tanswer\n tumblr_abc\twhat is the cat doing\tplay\n')
    tool.convert_videoqa(str(tsv), str(tmp_path / 'tgif.jsonl'), 'tgif-frameqa')
    info = VideoQADataset(str(tmp_path / 'tgif.jsonl')).get_data_info(0)
    assert info['video_id'] == 'tumblr_abc' and info['gt_answer'] == 'play'
