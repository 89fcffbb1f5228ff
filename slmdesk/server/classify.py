"""/v1/classify: calibrated label probabilities per text, with the same classifier as the CLI."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from slmdesk.classify.classifier import Classifier
from slmdesk.classify.spec import ClassifierSpec, Label
from slmdesk.engine.llama_engine import Cancelled, LlamaEngine
from slmdesk.errors import InvalidInputError, NotFoundError
from slmdesk.server.errors import bad_field, model_not_found
from slmdesk.server.models import ModelLibrary
from slmdesk.server.protocol import ClassifyRequest, parse_classify
from slmdesk.store.classifiers import ClassifierRepository
from slmdesk.store.models import ModelRecord

ClassifyWork = Callable[[LlamaEngine, threading.Event], list[dict[str, Any]]]


class ClassifyService:
    """Turns a /v1/classify body into engine work: a spec, the model, and the texts."""

    def __init__(self, library: ModelLibrary) -> None:
        self.library = library

    def prepare(self, body: Any, max_texts: int) -> tuple[ClassifyWork, ModelRecord]:
        """Check the request and read what it names (called off the event loop)."""
        req = parse_classify(body, max_texts)
        spec, model_ref = self._spec(req)
        if model_ref is None:
            raise bad_field("model", "'model' is required.")
        try:
            model = self.library.find(model_ref)
        except NotFoundError as exc:
            raise model_not_found(model_ref, exc.message) from exc
        texts = list(req.texts)

        def work(engine: LlamaEngine, cancel: threading.Event) -> list[dict[str, Any]]:
            classifier = Classifier(engine, spec)
            preds = classifier.classify_many(texts, cancel=cancel)
            if len(preds) < len(texts):
                raise Cancelled
            return [{"index": i, **pred.to_json()} for i, pred in enumerate(preds)]

        return work, model

    def _spec(self, req: ClassifyRequest) -> tuple[ClassifierSpec, str | None]:
        base: ClassifierSpec | None = None
        model_ref = req.model
        if req.classifier is not None:
            with self.library.connect() as db:
                try:
                    saved = ClassifierRepository(db).get(req.classifier)
                except NotFoundError as exc:
                    raise bad_field("classifier", exc.message) from exc
            base = ClassifierSpec.from_json(saved.spec)
            model_ref = model_ref or saved.model_id
        old = {label.name: label for label in base.labels} if base else {}
        labels = tuple(
            Label(name, description or (old[name].description if name in old else ""),
                  old[name].verbalizers if name in old else ())
            for name, description in req.labels
        ) if req.labels else (base.labels if base else ())
        try:
            if base is None:
                return ClassifierSpec(labels=labels, **req.options).validate(), model_ref
            return base.with_changes(labels=labels, **req.options), model_ref
        except InvalidInputError as exc:
            raise bad_field("labels" if "label" in exc.message.lower() else "classifier",
                            exc.message) from exc
