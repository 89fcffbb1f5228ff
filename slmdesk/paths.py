"""Every directory slmdesk uses, from platformdirs; ``SLMDESK_HOME`` roots all of them."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import platformdirs

from slmdesk import APP_NAME
from slmdesk.errors import UserFacingError

HOME_ENV = "SLMDESK_HOME"


@dataclass(frozen=True)
class Paths:
    """The directories and files of one slmdesk installation."""

    data_dir: Path
    config_dir: Path
    cache_dir: Path
    log_dir: Path

    @property
    def database(self) -> Path:
        return self.data_dir / "slmdesk.db"

    @property
    def default_models_dir(self) -> Path:
        return self.data_dir / "models"

    def ensure(self) -> Paths:
        """Create the directories; a path that cannot be a directory is a clear error."""
        for d in (self.data_dir, self.config_dir, self.cache_dir, self.log_dir):
            try:
                d.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise UserFacingError(
                    f"Cannot create the directory {d}: {exc.strerror or exc}"
                ) from exc
        return self


def get_paths(home: str | os.PathLike[str] | None = None) -> Paths:
    """Return the paths, rooted in ``home`` or ``$SLMDESK_HOME`` when either is set."""
    root = home if home is not None else os.environ.get(HOME_ENV)
    if root:
        base = Path(root).expanduser().resolve()
        return Paths(
            data_dir=base / "data",
            config_dir=base / "config",
            cache_dir=base / "cache",
            log_dir=base / "logs",
        )
    return Paths(
        data_dir=Path(platformdirs.user_data_dir(APP_NAME, appauthor=False)),
        config_dir=Path(platformdirs.user_config_dir(APP_NAME, appauthor=False)),
        cache_dir=Path(platformdirs.user_cache_dir(APP_NAME, appauthor=False)),
        log_dir=Path(platformdirs.user_log_dir(APP_NAME, appauthor=False)),
    )
