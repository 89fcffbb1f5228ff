"""Training: classifiers from labelled data sets (prompt search with learned calibration, a
linear head on the model's hidden state) and LoRA fine-tuning jobs (slmdesk.training.lora, run
in their own process). Plain Python; faces run it off the GUI thread."""

from slmdesk.training.data import MIN_PER_LABEL, TrainingData, TrainingDataError
from slmdesk.training.trainer import (
    METHODS,
    TrainingMethodError,
    TrainReport,
    train_classifier,
)

__all__ = [
    "METHODS",
    "MIN_PER_LABEL",
    "TrainReport",
    "TrainingData",
    "TrainingDataError",
    "TrainingMethodError",
    "train_classifier",
]
