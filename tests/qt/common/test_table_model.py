"""RowTableModel's sort keys through a QSortFilterProxyModel (the Models tab's tables)."""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import QSortFilterProxyModel, Qt

from slmdesk.ui.common.table_model import SORT_ROLE, Column, RowTableModel

# Catalog sizes in bytes: two above 2**31 (a Python int PySide hands Qt as a 64-bit integer,
# the others as 32-bit ones). Qt could not order the two kinds against each other, so the
# Catalog sorted by Size came out as runs split at each large file.
SIZES = [1_930_000_000, 98_362_432, 3_290_000_000, 2_020_000_000, 145_000_000,
         3_420_000_000, 806_000_000]


def _sorted_sizes(qtbot: Any, order: Qt.SortOrder) -> list[int]:
    model = RowTableModel([Column("Size", str, sort=lambda n: n)])
    model.set_rows(SIZES)
    proxy = QSortFilterProxyModel()
    proxy.setSourceModel(model)
    proxy.setSortRole(SORT_ROLE)
    proxy.sort(0, order)
    return [int(proxy.index(r, 0).data()) for r in range(proxy.rowCount())]


def test_sizes_above_two_gigabytes_sort_with_the_others(qtbot: Any) -> None:
    assert _sorted_sizes(qtbot, Qt.SortOrder.AscendingOrder) == sorted(SIZES)
    assert _sorted_sizes(qtbot, Qt.SortOrder.DescendingOrder) == sorted(SIZES, reverse=True)
