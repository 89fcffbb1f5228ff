"""LoRA fine-tuning of a GGUF model on the CPU, in its own process, to a GGUF adapter.

The path (measured in shared/design/lora-on-cpu.md): transformers loads the GGUF
dequantized → peft adds LoRA to the attention and MLP projections → training on examples
tokenized by the engine's llama.cpp tokenizer, loss only on assistant or label tokens →
llama.cpp's convert_lora_to_gguf.py → an adapter ``LlamaEngine`` applies with a scale
(``LoadParams(lora_path=..., lora_scale=...)``).

Use: ``create_chat_job`` / ``create_classification_job`` (or ``LoraJob.create`` with
tokenized examples) check and write a job; ``job.start()`` runs the trainer process and
returns a ``TrainerProcess`` (``events()``, ``cancel()``, ``wait()``, ``outcome()``);
``start()`` again resumes from the last checkpoint; ``list_jobs()``, ``job.delete()``.
The trainer process is this Python's (``slmdesk[train]``) or, in the packaged app, the
trainer add-on's next to it (``addon.py``); ``trainer_unavailable_reason()`` says why
neither is there.
"""

from slmdesk.training.lora.addon import trainer_unavailable_reason
from slmdesk.training.lora.examples import (
    TokenizedExample,
    chat_examples,
    classification_examples,
    tokenizer_engine,
)
from slmdesk.training.lora.job import (
    LoraJob,
    TrainerProcess,
    create_chat_job,
    create_classification_job,
    jobs_folder,
    list_jobs,
)
from slmdesk.training.lora.preflight import missing_trainer_packages, require_trainer
from slmdesk.training.lora.settings import LoraSettings

__all__ = [
    "LoraJob",
    "LoraSettings",
    "TokenizedExample",
    "TrainerProcess",
    "chat_examples",
    "classification_examples",
    "create_chat_job",
    "create_classification_job",
    "jobs_folder",
    "list_jobs",
    "missing_trainer_packages",
    "require_trainer",
    "tokenizer_engine",
    "trainer_unavailable_reason",
]
