"""Training: classifiers from labelled data sets (prompt search with learned calibration, a
linear head on the model's hidden state) and LoRA fine-tuning jobs (slmdesk.training.lora, run
in their own process). Plain Python; faces run it off the GUI thread."""

from slmdesk.training.data import MIN_PER_LABEL, TrainingData, TrainingDataError
from slmdesk.training.lora_runs import TrainingCancelled, TrainRequest
from slmdesk.training.trainer import (
    METHODS,
    TrainingMethodError,
    TrainReport,
    train_classifier,
)

# run_training (slmdesk.training.run) imports the catalog and the data sets' evaluation
# history; faces import it from its module.

__all__ = [
    "METHODS",
    "MIN_PER_LABEL",
    "TrainReport",
    "TrainRequest",
    "TrainingCancelled",
    "TrainingData",
    "TrainingDataError",
    "TrainingMethodError",
    "train_classifier",
]
