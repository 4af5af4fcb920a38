"""Classification / regression head on the text ``[CLS]`` state (GLUE and other text
classification tasks).

    logits = Linear(Dropout(h_cls))                                  (B, num_classes)
    loss   = cross-entropy(logits, label)        num_classes >= 2
           = MSE(logits[:, 0], score)            num_classes == 1 (regression, e.g. STS-B)

This is BERT's fine-tuning head without the pooler (the [CLS] state of the last universal
layer goes straight to the classifier), initialised as BERT: weights N(0, 0.02), bias 0.
"""
from typing import Optional, Tuple

import torch
import torch.nn.functional as F
from mmengine.model import BaseModule
from torch import Tensor, nn

from mplug2.registry import MODELS

__all__ = ['TextClsHead']


@MODELS.register_module()
class TextClsHead(BaseModule):
    """Dropout + linear layer on the ``[CLS]`` state.

    Args:
        hidden_size: width of the ``[CLS]`` state (set by the task model).
        num_classes: number of classes; 1 means regression with the mean squared error.
        dropout: dropout probability before the linear layer (BERT: 0.1).
        loss_weight: factor of the loss.
        label_smoothing: label smoothing of the cross-entropy (classification only).
        initializer_range: standard deviation of the normal init of the weights.
        init_cfg: MMEngine init config.
    """

    def __init__(self,
                 hidden_size: int,
                 num_classes: int,
                 dropout: float = 0.1,
                 loss_weight: float = 1.0,
                 label_smoothing: float = 0.0,
                 initializer_range: float = 0.02,
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(init_cfg=init_cfg)
        if not isinstance(num_classes, int) or num_classes < 1:
            raise ValueError(f'num_classes must be a positive int (1: regression), got {num_classes!r}')
        if num_classes == 1 and label_smoothing:
            raise ValueError('label_smoothing applies to classification only (num_classes >= 2)')
        self.num_classes = num_classes
        self.loss_weight = loss_weight
        self.label_smoothing = label_smoothing
        self.dropout = nn.Dropout(dropout)
        self.classifier = nn.Linear(hidden_size, num_classes)
        nn.init.normal_(self.classifier.weight, std=initializer_range)
        nn.init.zeros_(self.classifier.bias)

    @property
    def is_regression(self) -> bool:
        return self.num_classes == 1

    def forward(self, cls_states: Tensor) -> Tensor:
        """(B, D) ``[CLS]`` states -> (B, num_classes) logits (B, 1 for regression)."""
        return self.classifier(self.dropout(cls_states))

    def loss(self, logits: Tensor, targets: Tensor) -> Tensor:
        """Cross-entropy against (B,) class indices, or MSE against (B,) float scores."""
        if targets.shape != logits.shape[:1]:
            raise ValueError(f'{logits.shape[0]} predictions but targets of shape {tuple(targets.shape)}')
        if self.is_regression:
            loss = F.mse_loss(logits[:, 0].float(), targets.float())
        else:
            targets = targets.long()
            bad = (targets < 0) | (targets >= self.num_classes)
            if bad.any():
                raise ValueError(f'class indices must be in [0, {self.num_classes}), got '
                                 f'{targets[bad].tolist()}')
            loss = F.cross_entropy(logits.float(), targets, label_smoothing=self.label_smoothing)
        return self.loss_weight * loss

    @torch.no_grad()
    def predict(self, logits: Tensor) -> Tuple[Tensor, Optional[Tensor]]:
        """``(labels, probabilities)``: the argmax class (B,) and the softmax (B, C); for
        regression the predicted scores (B,) and None."""
        if self.is_regression:
            return logits[:, 0].float(), None
        probabilities = logits.float().softmax(dim=-1)
        return probabilities.argmax(dim=-1), probabilities
