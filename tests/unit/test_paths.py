"""Every directory comes from one home."""

from __future__ import annotations

from pathlib import Path

from slmdesk.paths import get_paths


def test_home_roots_every_directory(tmp_path: Path) -> None:
    paths = get_paths(tmp_path / "h")
    for d in (paths.data_dir, paths.config_dir, paths.cache_dir, paths.log_dir):
        assert tmp_path / "h" in d.parents
    assert paths.database.parent == paths.data_dir


def test_env_home_is_used(slmdesk_home: Path) -> None:
    assert get_paths().data_dir == slmdesk_home.resolve() / "data"
