"""Text classification with small language models: label scoring, calibration, few-shot
prompts, batch runs and evaluation. Plain Python; the GUI runs it on the engine thread."""

from slmdesk.classify.classifier import Classifier, Prediction
from slmdesk.classify.evaluate import EvalReport, evaluate
from slmdesk.classify.spec import ClassifierSpec, Label

__all__ = ["Classifier", "ClassifierSpec", "EvalReport", "Label", "Prediction", "evaluate"]
