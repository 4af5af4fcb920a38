"""Samplers whose indices carry each sample's random seed, for exactly resumable training.

Random transforms (frame sampling, crops, flips, RandAugment) draw from numpy's and Python's
global random state. In dataloader workers that state runs on from sample to sample and, with
``persistent_workers``, from epoch to epoch; a resumed run starts new workers, seeded afresh,
so its samples differ from the uninterrupted run's. :class:`SeededSampler` gives every sample
its own seed, a function of the sampler's seed, the epoch and the sample index only, and
:class:`~mplug2.datasets.BaseVideoTextDataset` seeds the global random state with it before
the pipeline runs: each sample's randomness is the same whichever worker, process or run
loads it.
"""
from typing import Iterator

import numpy as np
from mmengine.dataset import DefaultSampler

from mplug2.registry import DATA_SAMPLERS

__all__ = ['SeededIndex', 'SeededSampler', 'sample_seed']


def sample_seed(seed: int, epoch: int, index: int) -> int:
    """The 32-bit seed of sample ``index`` in ``epoch`` of a run seeded with ``seed``."""
    return int(np.random.SeedSequence([int(seed) % 2**63, int(epoch), int(index)]).generate_state(1)[0])


class SeededIndex(int):
    """A dataset index (an ``int``: any dataset accepts it) that carries its sample's seed."""

    seed: int

    def __new__(cls, index: int, seed: int) -> 'SeededIndex':
        value = super().__new__(cls, index)
        value.seed = int(seed)
        return value

    def __getnewargs__(self):  # pickled to dataloader workers with its seed
        return int(self), self.seed

    def __repr__(self) -> str:
        return f'SeededIndex({int(self)}, seed={self.seed})'


@DATA_SAMPLERS.register_module()
class SeededSampler(DefaultSampler):
    """MMEngine's ``DefaultSampler`` (same order, same sharding across ranks) whose indices
    are :class:`SeededIndex` es with ``sample_seed(seed, epoch, index)``.

    ``seed`` is the run's seed (the Runner passes ``randomness.seed``) and ``epoch`` is set
    by ``DistSamplerSeedHook`` before every epoch, so a resumed run draws the same random
    frames and augmentations for every sample as the uninterrupted one.
    """

    def __iter__(self) -> Iterator[SeededIndex]:
        for index in super().__iter__():
            yield SeededIndex(index, sample_seed(self.seed, self.epoch, index))
