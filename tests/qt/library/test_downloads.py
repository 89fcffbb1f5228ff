"""The Downloads page: a failure's reason in its row, one message at a time, cleared when
its download is gone."""

from __future__ import annotations

from typing import Any

from tests.hubserver import TINY_FILES, TINY_REPO


def test_offline_download_fails_at_once_with_the_reason_in_its_row(
    qtbot: Any, library: Any, refused_hub: list[object]
) -> None:
    library.show_notice("an earlier notice")
    library.start_download(TINY_REPO, TINY_FILES[0], revision=None, display_name="Tiny",
                           licence=None, expected_sha256=None)
    qtbot.waitUntil(lambda: library.download_rows.rows
                    and library.download_rows.rows[0].state == "failed")
    record = library.download_rows.rows[0]
    assert record.attempts == 0 and len(refused_hub) == 1  # no retry
    details = [c.header for c in library.download_rows.columns].index("Details")
    cell = library.download_rows.data(library.download_rows.index(0, details))
    assert "refused" in cell
    # One message area: the failure replaced the notice instead of stacking under it.
    qtbot.waitUntil(lambda: library.banner.isVisibleTo(library))
    assert "refused" in library.banner.text()
    assert not library.notice.isVisibleTo(library)
    # Its cause gone (the download cancelled), the message goes too.
    library.select_row(library.downloads_view, library.downloads_proxy, 0)
    library.cancel_button.click()
    qtbot.waitUntil(lambda: not library.banner.isVisibleTo(library))
