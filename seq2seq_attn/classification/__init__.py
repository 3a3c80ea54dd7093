"""Attention-weighted document classification: the attention classifier of Sun & Lu (2020), HAN (Yang et
al., 2016) and a Transformer encoder classifier, their data path, metrics and attention explanations."""

from .config import ClassificationConfig, DataConfig, ModelConfig
from .models import HAN, AttentionClassifier, ClassifierOutput, TransformerClassifier, build_model
from .task import ClassificationData, ClassificationTask

__all__ = [
    "HAN", "AttentionClassifier", "ClassificationConfig", "ClassificationData", "ClassificationTask",
    "ClassifierOutput", "DataConfig", "ModelConfig", "TransformerClassifier", "build_model",
]
