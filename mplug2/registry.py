"""MMEngine registries of the ``mplug2`` scope.

Each registry is a child of the matching MMEngine root registry, so that modules
registered here are visible from the host libraries (``mplug2.X`` from an mmdet,
mmaction or mmpretrain scoped config) and host modules are visible from here
(``mmdet.X``). ``locations`` lets the registries import our modules lazily: a
config with ``default_scope='mplug2'`` needs no ``custom_imports``.

``Registry.switch_scope_and_registry`` imports ``f'{scope}.registry'``; keep the
module name.
"""
from mmengine.registry import DATA_SAMPLERS as MMENGINE_DATA_SAMPLERS
from mmengine.registry import DATASETS as MMENGINE_DATASETS
from mmengine.registry import EVALUATOR as MMENGINE_EVALUATOR
from mmengine.registry import FUNCTIONS as MMENGINE_FUNCTIONS
from mmengine.registry import HOOKS as MMENGINE_HOOKS
from mmengine.registry import LOG_PROCESSORS as MMENGINE_LOG_PROCESSORS
from mmengine.registry import LOOPS as MMENGINE_LOOPS
from mmengine.registry import METRICS as MMENGINE_METRICS
from mmengine.registry import MODEL_WRAPPERS as MMENGINE_MODEL_WRAPPERS
from mmengine.registry import MODELS as MMENGINE_MODELS
from mmengine.registry import \
    OPTIM_WRAPPER_CONSTRUCTORS as MMENGINE_OPTIM_WRAPPER_CONSTRUCTORS
from mmengine.registry import OPTIM_WRAPPERS as MMENGINE_OPTIM_WRAPPERS
from mmengine.registry import OPTIMIZERS as MMENGINE_OPTIMIZERS
from mmengine.registry import PARAM_SCHEDULERS as MMENGINE_PARAM_SCHEDULERS
from mmengine.registry import RUNNERS as MMENGINE_RUNNERS
from mmengine.registry import TASK_UTILS as MMENGINE_TASK_UTILS
from mmengine.registry import TRANSFORMS as MMENGINE_TRANSFORMS
from mmengine.registry import VISBACKENDS as MMENGINE_VISBACKENDS
from mmengine.registry import VISUALIZERS as MMENGINE_VISUALIZERS
from mmengine.registry import WEIGHT_INITIALIZERS as MMENGINE_WEIGHT_INITIALIZERS
from mmengine.registry import Registry

__all__ = [
    'RUNNERS', 'LOOPS', 'HOOKS', 'LOG_PROCESSORS', 'DATASETS', 'DATA_SAMPLERS',
    'TRANSFORMS', 'MODELS', 'MODEL_WRAPPERS', 'WEIGHT_INITIALIZERS',
    'TOKENIZERS', 'OPTIMIZERS', 'OPTIM_WRAPPERS', 'OPTIM_WRAPPER_CONSTRUCTORS',
    'PARAM_SCHEDULERS', 'METRICS', 'EVALUATOR', 'TASK_UTILS', 'VISUALIZERS',
    'VISBACKENDS', 'FUNCTIONS'
]

# Runtime: runners, loops, hooks and log processors.
RUNNERS = Registry('runner', parent=MMENGINE_RUNNERS, locations=['mplug2.engine'])
LOOPS = Registry('loop', parent=MMENGINE_LOOPS, locations=['mplug2.engine'])
HOOKS = Registry('hook', parent=MMENGINE_HOOKS, locations=['mplug2.engine'])
LOG_PROCESSORS = Registry(
    'log processor', parent=MMENGINE_LOG_PROCESSORS, locations=['mplug2.engine'])

# Data: datasets, samplers and transforms.
DATASETS = Registry('dataset', parent=MMENGINE_DATASETS, locations=['mplug2.datasets'])
DATA_SAMPLERS = Registry(
    'data sampler', parent=MMENGINE_DATA_SAMPLERS, locations=['mplug2.datasets'])
TRANSFORMS = Registry(
    'transform', parent=MMENGINE_TRANSFORMS, locations=['mplug2.datasets.transforms'])

# Models: every nn.Module of the project, its wrappers and initialisers.
MODELS = Registry('model', parent=MMENGINE_MODELS, locations=['mplug2.models'])
MODEL_WRAPPERS = Registry(
    'model_wrapper', parent=MMENGINE_MODEL_WRAPPERS, locations=['mplug2.models'])
WEIGHT_INITIALIZERS = Registry(
    'weight initializer', parent=MMENGINE_WEIGHT_INITIALIZERS,
    locations=['mplug2.models', 'mplug2.checkpoints'])
# Tokenizers have no MMEngine root.
TOKENIZERS = Registry('tokenizer', locations=['mplug2.models'])

# Optimisation.
OPTIMIZERS = Registry(
    'optimizer', parent=MMENGINE_OPTIMIZERS, locations=['mplug2.engine.optimizers'])
OPTIM_WRAPPERS = Registry(
    'optim_wrapper', parent=MMENGINE_OPTIM_WRAPPERS, locations=['mplug2.engine.optimizers'])
OPTIM_WRAPPER_CONSTRUCTORS = Registry(
    'optimizer wrapper constructor',
    parent=MMENGINE_OPTIM_WRAPPER_CONSTRUCTORS,
    locations=['mplug2.engine.optimizers'])
PARAM_SCHEDULERS = Registry(
    'parameter scheduler', parent=MMENGINE_PARAM_SCHEDULERS, locations=['mplug2.engine.optimizers'])

# Evaluation.
METRICS = Registry('metric', parent=MMENGINE_METRICS, locations=['mplug2.evaluation'])
EVALUATOR = Registry('evaluator', parent=MMENGINE_EVALUATOR, locations=['mplug2.evaluation'])

# Task utilities (assigners, coders...), visualisation, functions (collate).
TASK_UTILS = Registry('task util', parent=MMENGINE_TASK_UTILS, locations=['mplug2.models'])
# mplug2 adds no visualizers yet: the MMEngine ones are reached through the parents.
VISUALIZERS = Registry('visualizer', parent=MMENGINE_VISUALIZERS)
VISBACKENDS = Registry('vis_backend', parent=MMENGINE_VISBACKENDS)
FUNCTIONS = Registry('function', parent=MMENGINE_FUNCTIONS, locations=['mplug2.datasets'])
