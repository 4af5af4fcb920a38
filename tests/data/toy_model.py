"""A toy regressor and dataset for engine tests (resume, distributed runs): not part of mplug2."""
import torch
import torch.distributed as dist
from mmengine.model import BaseModel
from torch.utils.data import Dataset

from mplug2.registry import DATASETS, MODELS


@DATASETS.register_module()
class ToyRegressionDataset(Dataset):
    """``length`` samples of y = x @ w + 0.1 noise, fixed by ``seed``."""

    def __init__(self, length: int = 32, dim: int = 8, seed: int = 0):
        generator = torch.Generator().manual_seed(seed)
        self.inputs = torch.randn(length, dim, generator=generator)
        weight = torch.randn(dim, 1, generator=generator)
        self.targets = self.inputs @ weight + 0.1 * torch.randn(length, 1, generator=generator)

    def __len__(self) -> int:
        return len(self.inputs)

    def __getitem__(self, index: int) -> dict:
        return dict(inputs=self.inputs[index], targets=self.targets[index])


@MODELS.register_module()
class ToyRegressor(BaseModel):
    """A 2-layer MLP with an MSE loss. ``global_mse`` logs the loss of the whole global batch."""

    def __init__(self, dim: int = 8, hidden: int = 16, init_cfg=None):
        super().__init__(init_cfg=init_cfg)
        generator = torch.Generator().manual_seed(0)
        self.mlp = torch.nn.Sequential(torch.nn.Linear(dim, hidden), torch.nn.Tanh(), torch.nn.Linear(hidden, 1))
        with torch.no_grad():
            for param in self.mlp.parameters():
                param.copy_(0.3 * torch.randn(param.shape, generator=generator))

    def forward(self, inputs, targets=None, mode: str = 'tensor'):
        outputs = self.mlp(inputs)
        if mode == 'loss':
            loss = torch.nn.functional.mse_loss(outputs, targets)
            global_mse = loss.detach().clone()
            if dist.is_available() and dist.is_initialized():
                dist.all_reduce(global_mse)
                global_mse /= dist.get_world_size()
            return dict(loss=loss, global_mse=global_mse)
        return outputs


from mmengine.evaluator import BaseMetric  # noqa: E402

from mplug2.registry import METRICS  # noqa: E402


@METRICS.register_module()
class ToyMSEMetric(BaseMetric):
    """Mean squared error of ``ToyRegressor`` predictions."""

    def process(self, data_batch, data_samples) -> None:
        for prediction, target in zip(data_samples, data_batch['targets']):
            self.results.append(float(((prediction - target) ** 2).mean()))

    def compute_metrics(self, results) -> dict:
        return dict(mse=sum(results) / len(results))
