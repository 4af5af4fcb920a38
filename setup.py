"""mplug2: mPLUG-2 as an OpenMMLab plugin.

The supported install is ``bash tools/install.sh`` (it pairs torch/torchvision and
builds mmcv with its ops); ``pip install -e .[all]`` works once those two are present.
"""
import os.path as osp

from setuptools import find_packages, setup

HERE = osp.dirname(osp.abspath(__file__))


def read_requirements(name: str) -> list[str]:
    """Requirement lines of ``requirements/<name>.txt`` (comments and includes dropped)."""
    with open(osp.join(HERE, 'requirements', f'{name}.txt'), encoding='utf-8') as f:
        lines = (line.split('#', 1)[0].strip() for line in f)
        return [line for line in lines if line and not line.startswith('-')]


def read_version() -> str:
    scope: dict = {}
    with open(osp.join(HERE, 'mplug2', 'version.py'), encoding='utf-8') as f:
        exec(f.read(), scope)
    return scope['__version__']


with open(osp.join(HERE, 'README.md'), encoding='utf-8') as f:
    long_description = f.read()

extras = {
    'torch': read_requirements('torch'),
    'mmcv': read_requirements('mmcv'),
    'tests': read_requirements('tests'),
}
extras['all'] = sorted({req for reqs in extras.values() for req in reqs})

setup(
    name='mplug2',
    version=read_version(),
    description='mPLUG-2: a modularized multi-modal foundation model across text, image and video, '
    'as an OpenMMLab plugin',
    long_description=long_description,
    long_description_content_type='text/markdown',
    license='Apache-2.0',
    python_requires='>=3.10',
    packages=find_packages(include=['mplug2', 'mplug2.*']),
    include_package_data=True,
    install_requires=read_requirements('runtime'),
    extras_require=extras,
    classifiers=[
        'Programming Language :: Python :: 3',
        'Topic :: Scientific/Engineering :: Artificial Intelligence',
    ],
)
