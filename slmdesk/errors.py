"""Expected failures that a person can act on, kept apart from bugs.

A ``UserFacingError`` carries text that is safe to show as it is: the GUI puts it where
the person is looking, the CLI prints it on one line and exits non-zero. Anything else that
escapes is a bug and is logged with its traceback.
"""

from __future__ import annotations


class UserFacingError(Exception):
    """An expected failure with a message a person can act on."""

    exit_code = 1

    @property
    def message(self) -> str:
        return str(self.args[0]) if self.args else self.__class__.__name__


class ModelFileError(UserFacingError):
    """A model file is missing, unreadable, malformed or unsupported."""


class ModelLoadCrashedError(ModelFileError):
    """A model's last load took the process down; it is not loaded again automatically."""


class DiskFullError(UserFacingError):
    """The disk (or the database's size limit) is full: nothing more could be written."""


class ModelNotLoadedError(UserFacingError):
    """An operation needs a loaded model and none is loaded."""


class ContextOverflowError(UserFacingError):
    """A message cannot fit the model's context window."""


class TemplateError(UserFacingError):
    """A chat template could not be rendered safely."""


class DatabaseError(UserFacingError):
    """The database cannot be opened or is from a newer slmdesk."""


class NotFoundError(UserFacingError):
    """A model, conversation or other record does not exist."""

    exit_code = 2


class InvalidInputError(UserFacingError):
    """A command line argument or other input is not valid."""

    exit_code = 2


class NetworkError(UserFacingError):
    """The Hugging Face Hub (or the network to it) could not answer as needed."""


class DownloadError(UserFacingError):
    """A model download cannot go on: disk full, checksum mismatch, refused by the hub."""


class NotEnoughMemoryError(UserFacingError):
    """A model's estimated memory is more than this machine has free (overridable)."""


class RemoteEngineError(UserFacingError):
    """A remote engine (an OpenAI-compatible server) refused, failed or could not be reached."""


class UnsupportedFeatureError(RemoteEngineError):
    """A remote engine lacks a feature the request needs; it is refused, never degraded."""

    exit_code = 2


class TrainerMissingError(UserFacingError):
    """The optional training packages (torch, transformers, peft, …) are not installed."""


class TrainingError(UserFacingError):
    """A training job cannot start or went wrong in a way a person can act on."""
