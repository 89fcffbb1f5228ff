"""One training request from start to finish, for every face (``slmdesk train``, the Train
view): check, train (prompt, head and/or LoRA), measure against zero-shot on the test split,
keep both runs in the data set's evaluation history, and only then register the result.

A labelled data set becomes classifier NAME; a chat data set becomes model NAME (the base
model with a LoRA adapter). ``run_training`` reports through ``emit`` (one dict per event,
the `--events` contract) and returns the report; a cancelled run raises
``TrainingCancelled`` and registers nothing (a LoRA job keeps its checkpoints).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import sqlite_utils

from slmdesk.catalog.registry import check_model_present, load_registered, resolve_model
from slmdesk.classify.classifier import Classifier
from slmdesk.classify.evaluate import EvalReport, evaluate, mcnemar_exact
from slmdesk.classify.spec import ClassifierSpec, Label
from slmdesk.datasets.evaluation import record_eval
from slmdesk.engine.llama_engine import Cancelled, LlamaEngine
from slmdesk.errors import InvalidInputError
from slmdesk.settings import load_params_for
from slmdesk.store.classifiers import ClassifierRepository
from slmdesk.store.datasets import Dataset, DatasetRepository
from slmdesk.store.models import ModelRecord, ModelRepository
from slmdesk.training.data import Example, TrainingData, load_training_data
from slmdesk.training.lora import (
    create_chat_job,
    create_classification_job,
    require_trainer,
    trainer_unavailable_reason,
)
from slmdesk.training.lora_runs import (
    EventSink,
    TrainingCancelled,
    TrainRequest,
    chat_conversations,
    find_resumable,
    follow_job,
)
from slmdesk.training.trainer import FitResult, TrainingMethodError, fit_classifier

RUN_METHODS = ("auto", "prompt", "head", "lora")
METHOD_NAMES = {"lora": "LoRA"}  # in messages
# auto tries LoRA from this many labelled train texts (fewer: prompt and head do as well).
LORA_MIN_TRAIN = 100
# A LoRA epoch's time per train text, from shared/design/lora-on-cpu.md (1,000 reviews of
# ~40 tokens, 8 minutes on 2 cores), plus loading and converting: auto skips LoRA when this
# does not fit in what is left of --max-minutes.
LORA_SECONDS_PER_EXAMPLE = 0.5
LORA_OVERHEAD_S = 90.0
MAX_LORA_HELD_OUT = 200


@dataclass
class _Context:
    """The run's shared state: database, request, events, cancel and its clock."""

    db: sqlite_utils.Database
    request: TrainRequest
    emit: EventSink
    cancel: threading.Event
    started: float
    skipped: dict[str, str] = field(default_factory=dict)  # method -> why it was not tried

    def skip(self, method: str, reason: str) -> None:
        """``method`` is not tried: say why now (a stage) and in the report (``skipped``)."""
        self.skipped[method] = reason
        self.stage(method, f"skipping {METHOD_NAMES.get(method, method)}: {reason}")

    def stage(self, stage: str, message: str) -> None:
        self.emit({"event": "stage", "stage": stage, "message": message})

    def evaluated(self, method: str, split: str, report: EvalReport) -> None:
        self.emit({"event": "evaluated", "method": method, "split": split,
                   "accuracy": report.accuracy, "macro_f1": report.macro_f1, "loss": None})

    def seconds(self) -> float:
        return time.perf_counter() - self.started

    def seconds_left(self) -> float:
        return self.request.max_minutes * 60.0 - self.seconds()


def run_training(db: sqlite_utils.Database, request: TrainRequest, emit: EventSink,
                 cancel: threading.Event | None = None) -> dict[str, Any]:
    """Train ``request.name`` on ``request.dataset``; the report (see the module)."""
    ctx = _Context(db, request, emit, cancel or threading.Event(), time.perf_counter())
    if request.method not in RUN_METHODS:
        raise TrainingMethodError(
            f"Unknown training method '{request.method}' (use {', '.join(RUN_METHODS)})."
        )
    if not " ".join(request.name.split()):
        raise InvalidInputError("The trained result needs a name.")
    if request.max_minutes <= 0:
        raise InvalidInputError("--max-minutes must be positive.")
    ctx.stage("checking", f"checking the data set '{request.dataset}'")
    dataset = DatasetRepository(db).get(request.dataset)
    try:
        if dataset.kind == "chat":
            return _train_chat(ctx, dataset)
        return _train_classifier(ctx, dataset)
    except Cancelled:  # the engine stopped scoring: the same as any cancel
        raise TrainingCancelled() from None


def _base_model(ctx: _Context) -> ModelRecord:
    model = resolve_model(ctx.db, ctx.request.model)
    check_model_present(model)
    if model.adapter is not None:
        raise InvalidInputError(
            f"'{model.name}' is itself a fine-tune; train on a base model (-m MODEL)."
        )
    return model


def _load(ctx: _Context, engine: LlamaEngine, model: ModelRecord,
          adapter: str | None = None) -> None:
    if adapter is None:
        ctx.stage("loading", f"loading {model.name}")
        load_registered(engine, model, ctx.db, explicit=True, retry="",
                        threads=ctx.request.threads)
        return
    ctx.stage("loading", f"loading {model.name} with the trained adapter")
    params = replace(load_params_for(ctx.db, model.id), lora_path=adapter, lora_scale=1.0)
    if ctx.request.threads:
        params = replace(params, n_threads=ctx.request.threads)
    engine.load(model.path, params)


# -- classifiers -----------------------------------------------------------------------------


@dataclass
class _Trained:
    """One trained classifier ready to save: method, spec, validation and test results."""

    method: str
    spec: ClassifierSpec
    methods: dict[str, Any]  # method -> validation metrics
    test: EvalReport
    test_predictions: list[str | None]
    adapter: str | None = None
    job: str | None = None
    lora_result: dict[str, Any] | None = None
    notes: list[str] = field(default_factory=list)  # what a person should know of the choice


def _train_classifier(ctx: _Context, dataset: Dataset) -> dict[str, Any]:
    request = ctx.request
    data = load_training_data(ctx.db, dataset)
    model = _base_model(ctx)
    wants_lora = request.method == "lora" or (
        request.method == "auto" and _auto_tries_lora(ctx, data))
    if request.method == "lora":
        require_trainer()
    engine = LlamaEngine()
    try:
        _load(ctx, engine, model)
        base = ClassifierSpec(labels=tuple(Label(n) for n in data.labels))
        cheap = None if request.method == "lora" else _fit_cheap(ctx, engine, dataset)
        baseline = (cheap.baseline_predictions if cheap is not None
                    else _predict(ctx, engine, base.with_changes(calibration="auto"), data.test,
                                  "zero_shot"))
        options = [] if cheap is None else [_from_fit(cheap)]
        if wants_lora and _lora_fits(ctx, data):
            options.append(_train_lora_classifier(ctx, engine, model, base, data))
        chosen = max(options, key=_validation_f1)
        for option in options:
            if option is not chosen:
                chosen.methods.update(
                    {k: v for k, v in option.methods.items() if k not in chosen.methods})
                chosen.notes += option.notes
        gold = [g for _, g in data.test]
        zero_test = evaluate(gold, baseline, list(data.labels))
        ctx.evaluated("zero_shot", "test", zero_test)
        ctx.evaluated(chosen.method, "test", chosen.test)
        mcnemar = mcnemar_exact(gold, chosen.test_predictions, baseline)
    finally:
        engine.unload()
    ctx.stage("saving", f"saving the classifier {request.name}")
    return _save_classifier(ctx, dataset, model, data, chosen, zero_test, mcnemar)


def _auto_tries_lora(ctx: _Context, data: TrainingData) -> bool:
    """Whether ``auto`` tries LoRA: enough texts and a trainer here (the add-on of a packaged
    app, or ``slmdesk[train]``); when not, it is skipped with the reason."""
    if len(data.train) < LORA_MIN_TRAIN:
        ctx.skip("lora", f"{len(data.train)} training texts; auto tries LoRA from "
                 f"{LORA_MIN_TRAIN}")
        return False
    reason = trainer_unavailable_reason()
    if reason is not None:
        ctx.skip("lora", reason)
    return reason is None


def _fit_cheap(ctx: _Context, engine: LlamaEngine, dataset: Dataset) -> FitResult:
    """Prompt search and/or the head (``fit_classifier``), with its events."""
    request = ctx.request
    method = "auto" if request.method == "lora" else request.method
    ctx.stage("zero_shot", "scoring the train and validation texts with the zero-shot prompt")
    shown = {"test": False}
    fitting = "head" if method == "head" else "prompt"

    def progress(stage: str, done: int, total: int) -> None:
        if stage == "test" and not shown["test"]:
            shown["test"] = True
            ctx.stage("testing", "classifying the test texts")
        ctx.emit({"event": "progress", "method": fitting if stage != "test" else "test",
                  "done": done, "total": total})

    if method != "head":
        ctx.stage("prompt", "searching prompts and calibrations on validation")
    if method in ("auto", "head"):
        ctx.stage("head", "fitting a linear head on the model's features")
    budget = request.max_minutes / 2 if method == "auto" else request.max_minutes
    fit = fit_classifier(ctx.db, engine, dataset.name, request.name, method=method,
                         max_minutes=budget, progress=progress, cancel=ctx.cancel)
    for name, metrics in fit.report.methods_json().items():
        ctx.emit({"event": "evaluated", "method": name, "split": "validation",
                  "accuracy": metrics["accuracy"], "macro_f1": metrics["macro_f1"],
                  "loss": None})
    return fit


def _from_fit(fit: FitResult) -> _Trained:
    return _Trained(method=fit.report.method, spec=fit.spec,
                    methods=fit.report.methods_json(), test=fit.report.test,
                    test_predictions=fit.test_predictions, notes=list(fit.report.notes))


def _validation_f1(trained: _Trained) -> float:
    return float((trained.methods.get(trained.method) or {}).get("macro_f1", 0.0))


def _lora_fits(ctx: _Context, data: TrainingData) -> bool:
    if ctx.request.method == "lora":
        return True
    epochs = ctx.request.epochs or 1.0
    needed = LORA_OVERHEAD_S + LORA_SECONDS_PER_EXAMPLE * len(data.train) * epochs
    if needed > ctx.seconds_left():
        ctx.skip("lora", f"about {needed / 60:.0f} min needed, "
                 f"{max(ctx.seconds_left(), 0) / 60:.0f} min left of --max-minutes")
        return False
    return True


def _predict(ctx: _Context, engine: LlamaEngine, spec: ClassifierSpec,
             examples: Sequence[Example], method: str) -> list[str | None]:
    def progress(done: int, total: int) -> None:
        ctx.emit({"event": "progress", "method": method, "done": done, "total": total})

    preds = Classifier(engine, spec).classify_many(
        [t for t, _ in examples], cancel=ctx.cancel, on_progress=progress)
    if len(preds) < len(examples):
        raise TrainingCancelled()
    return [p.label for p in preds]


def _train_lora_classifier(ctx: _Context, engine: LlamaEngine, model: ModelRecord,
                           base: ClassifierSpec, data: TrainingData) -> _Trained:
    """Fine-tune on the classifier's prompt, then classify with the adapter loaded."""
    request = ctx.request
    spec = base.with_changes(calibration="none", method="lora")
    ctx.stage("lora", "fine-tuning the model with LoRA")
    if request.resume:
        job = find_resumable(ctx.db, request.name, data.dataset)
    else:
        job = create_classification_job(
            request.name, model.path, base.with_changes(calibration="none"), data.train,
            data.validation[:MAX_LORA_HELD_OUT], request.lora_settings(),
            extra={"dataset": data.dataset, "model_id": model.id})
    engine.unload()  # the trainer process needs the memory more
    result = follow_job(job, ctx.emit, ctx.cancel)
    adapter = str(result["adapter"])
    _load(ctx, engine, model, adapter)
    gold = [g for _, g in data.validation]
    validation = evaluate(gold, _predict(ctx, engine, spec, data.validation, "lora"),
                          list(data.labels))
    ctx.evaluated("lora", "validation", validation)
    ctx.stage("testing", "classifying the test texts with the adapter")
    test_predictions = _predict(ctx, engine, spec, data.test, "lora")
    test = evaluate([g for _, g in data.test], test_predictions, list(data.labels))
    metrics = {"method": "lora", "name": "LoRA fine-tune, label scoring",
               "accuracy": validation.accuracy, "macro_f1": validation.macro_f1,
               "held_out_loss_before": result.get("held_out_loss_before"),
               "held_out_loss_after": result.get("held_out_loss_after"),
               "steps": result.get("steps")}
    return _Trained(method="lora", spec=spec, methods={"lora": metrics}, test=test,
                    test_predictions=test_predictions, adapter=adapter, job=job.id,
                    lora_result=result)


def _save_classifier(ctx: _Context, dataset: Dataset, model: ModelRecord, data: TrainingData,
                     chosen: _Trained, zero_test: EvalReport, mcnemar: dict[str, float]
                     ) -> dict[str, Any]:
    """Register the classifier (and its fine-tune, for LoRA), record both test runs."""
    with ctx.db.atomic():  # all of it or nothing: a kill -9 here leaves it to --resume
        return _register_classifier(ctx, dataset, model, data, chosen, zero_test, mcnemar)


def _register_classifier(ctx: _Context, dataset: Dataset, model: ModelRecord,
                         data: TrainingData, chosen: _Trained, zero_test: EvalReport,
                         mcnemar: dict[str, float]) -> dict[str, Any]:
    name = " ".join(ctx.request.name.split())
    use_model = model
    adapter_record = None
    if chosen.adapter is not None:
        use_model = ModelRepository(ctx.db).add_fine_tune(
            name=f"{name} (LoRA classifier, {model.name})", base=model,
            adapter_path=chosen.adapter, metadata={"trained_for": name})
        adapter_record = {"path": chosen.adapter, "scale": 1.0, "model_id": use_model.id,
                          "job": chosen.job}
    training = {
        **chosen.spec.training, "dataset": dataset.name, "model": model.name,
        "method": chosen.method, "methods": chosen.methods,
        "test": {"accuracy": chosen.test.accuracy, "macro_f1": chosen.test.macro_f1,
                 "n": chosen.test.n},
        "zero_shot_test": {"accuracy": zero_test.accuracy, "macro_f1": zero_test.macro_f1},
        "mcnemar_p": mcnemar["p_value"], "counts": data.counts(), "notes": chosen.notes,
        **({"adapter": adapter_record} if adapter_record else {}),
    }
    spec = chosen.spec.with_changes(training=training)
    ClassifierRepository(ctx.db).save(name, spec.to_json(), model_id=use_model.id)
    base_run = record_eval(ctx.db, dataset, model_name=model.name, model_id=model.id,
                           classifier_spec=ClassifierSpec(labels=spec.labels),
                           report=zero_test, split="test",
                           extra={"training": name, "role": "zero_shot"})
    trained_run = record_eval(ctx.db, dataset, model_name=use_model.name,
                              model_id=use_model.id, classifier_spec=spec,
                              report=chosen.test, split="test", classifier_name=name,
                              extra={"training": name, "role": "trained", "mcnemar": mcnemar,
                                     "compared_with": base_run.id})
    return {
        "name": name, "kind": "classifier", "dataset": dataset.name, "model": model.name,
        "method": chosen.method, "methods": chosen.methods,
        "test": chosen.test.to_json(), "zero_shot_test": zero_test.to_json(),
        "mcnemar": mcnemar, "adapter": chosen.adapter, "job": chosen.job,
        "model_id": use_model.id, "counts": data.counts(), "split_made": data.split_made,
        "evaluations": [base_run.id, trained_run.id], "skipped": dict(ctx.skipped),
        "notes": chosen.notes, "seconds": ctx.seconds(),
    }


# -- chat fine-tunes -------------------------------------------------------------------------


def _train_chat(ctx: _Context, dataset: Dataset) -> dict[str, Any]:
    """A chat data set: LoRA on its conversations, registered as model NAME."""
    request = ctx.request
    if request.method not in ("auto", "lora"):
        raise TrainingMethodError(
            f"'{dataset.name}' holds chat examples: only LoRA fine-tuning trains on them "
            "(--method lora or auto); prompt and head train classifiers on labelled texts."
        )
    require_trainer()
    name = " ".join(request.name.split())
    repo = ModelRepository(ctx.db)
    if any(m.name.casefold() == name.casefold() for m in repo.list()):
        raise InvalidInputError(f"A model named '{name}' exists already; choose another name.")
    model = _base_model(ctx)
    if request.resume:
        job = find_resumable(ctx.db, name, dataset.name)
    else:
        train, held_out = chat_conversations(ctx.db, dataset)
        ctx.stage("lora", f"fine-tuning {model.name} on {len(train)} conversations")
        job = create_chat_job(name, model.path, train, held_out, request.lora_settings(),
                              extra={"dataset": dataset.name, "model_id": model.id})
    result = follow_job(job, ctx.emit, ctx.cancel)
    before, after = result.get("held_out_loss_before"), result.get("held_out_loss_after")
    ctx.stage("saving", f"registering the model {name}")
    record = repo.add_fine_tune(name=name, base=model, adapter_path=str(result["adapter"]),
                                metadata={"trained_on": dataset.name, "job": job.id})
    loss = {"held_out_loss_before": before, "held_out_loss_after": after,
            "reduction": (1 - after / before) if before and after is not None else None}
    return {
        "name": name, "kind": "model", "dataset": dataset.name, "model": model.name,
        "model_id": record.id, "method": "lora",
        "methods": {"lora": {**loss, "steps": result.get("steps"),
                             "tokens_per_s": result.get("tokens_per_s")}},
        "test": loss, "zero_shot_test": None, "mcnemar": None,
        "adapter": str(result["adapter"]), "job": job.id, "skipped": {},
        "seconds": ctx.seconds(),
    }


__all__ = ["RUN_METHODS", "TrainRequest", "TrainingCancelled", "run_training"]
