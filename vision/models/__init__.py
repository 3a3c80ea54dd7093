"""Backbones for the vision attention modules: CIFAR ResNets, ResNet-18 (CIFAR stem) and a small MNIST ResNet;
the Vision Transformer on the shared Transformer layers."""

from .resnet import (
    ARCHS,
    CIFAR_DEPTHS,
    BasicBlock,
    PadShortcut,
    ResNet,
    build_resnet,
    mnist_resnet,
    resnet18,
    resnet20,
    resnet56,
    resnet110,
)
from .vit import VisionTransformer, attention_rollout

__all__ = [
    "ARCHS", "CIFAR_DEPTHS", "BasicBlock", "PadShortcut", "ResNet", "build_resnet", "mnist_resnet", "resnet18",
    "resnet20", "resnet56", "resnet110", "VisionTransformer", "attention_rollout",
]
