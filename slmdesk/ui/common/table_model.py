"""A read-only Qt table over a list of plain rows, one ``Column`` each, and the number
formats the tables share (binary sizes, durations, percentages)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from PySide6.QtCore import QAbstractTableModel, QModelIndex, QObject, QPersistentModelIndex, Qt
from PySide6.QtGui import QColor

AnyIndex = QModelIndex | QPersistentModelIndex
SORT_ROLE = Qt.ItemDataRole.UserRole + 1


def sort_key(value: Any) -> Any:
    """A column's sort value as Qt can order it: integers go as floats (exact below 2**53),
    because PySide passes a Python int as a 32-bit or a 64-bit integer by its size and Qt's
    proxy cannot order the two kinds against each other (the Catalog's sizes above 2 GiB
    split the Size order into runs)."""
    if isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    return value
ROW_ROLE = Qt.ItemDataRole.UserRole + 2

def human_bytes(n: int | float | None) -> str:
    """Binary units, as the fit estimates and model details use (1 MiB = 1024 KiB)."""
    if n is None:
        return "?"
    value = float(n)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(value) < 1024 or unit == "TiB":
            return f"{value:.0f} {unit}" if unit in ("B", "KiB") else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} TiB"


def human_duration(seconds: float | None) -> str:
    if seconds is None or seconds != seconds or seconds < 0:
        return ""
    s = int(seconds + 0.5)
    if s < 60:
        return f"{s} s"
    if s < 3600:
        return f"{s // 60} min {s % 60:02d} s"
    return f"{s // 3600} h {s % 3600 // 60:02d} min"


def percent(p: float | None) -> str:
    """A probability as a percentage with one decimal; a dash where there is none."""
    return "—" if p is None else f"{100 * p:.1f} %"


@dataclass(frozen=True)
class Column:
    """One column: its header, the text of a row's cell, and optionally how it sorts,
    its tooltip and its colour."""

    header: str
    text: Callable[[Any], str]
    sort: Callable[[Any], Any] | None = None
    tooltip: Callable[[Any], str] | None = None
    colour: Callable[[Any], QColor | None] | None = None


class RowsModel(QAbstractTableModel):
    """A table over a list ``rows``, one row each."""

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.rows: list[Any] = []

    def row_for(self, index: AnyIndex) -> Any:
        """The row behind ``index``; None where it points at none."""
        if not index.isValid() or not 0 <= index.row() < len(self.rows):
            return None
        return self.rows[index.row()]

    def rowCount(self, parent: AnyIndex = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(self.rows)


class RowTableModel(RowsModel):
    """A read-only table over a list of plain rows (dataclasses), one ``Column`` each."""

    def __init__(self, columns: Sequence[Column], parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.columns = list(columns)

    def set_rows(self, rows: Sequence[Any]) -> None:
        self.beginResetModel()
        self.rows = list(rows)
        self.endResetModel()

    def replace_row(self, i: int, row: Any) -> None:
        self.rows[i] = row
        self.dataChanged.emit(self.index(i, 0), self.index(i, len(self.columns) - 1))

    def append_row(self, row: Any) -> None:
        n = len(self.rows)
        self.beginInsertRows(QModelIndex(), n, n)
        self.rows.append(row)
        self.endInsertRows()

    def row_at(self, i: int) -> Any:
        return self.rows[i]

    def columnCount(self, parent: AnyIndex = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(self.columns)

    def headerData(self, section: int, orientation: Qt.Orientation,
                   role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if (role == Qt.ItemDataRole.DisplayRole and orientation == Qt.Orientation.Horizontal
                and 0 <= section < len(self.columns)):
            return self.columns[section].header
        return None

    def data(self, index: AnyIndex, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        row = self.row_for(index)
        if row is None:
            return None
        col = self.columns[index.column()]
        if role == Qt.ItemDataRole.DisplayRole:
            return col.text(row)
        if role == SORT_ROLE:
            return sort_key(col.sort(row)) if col.sort is not None else col.text(row)
        if role == ROW_ROLE:
            return row
        if role == Qt.ItemDataRole.ToolTipRole and col.tooltip is not None:
            return col.tooltip(row) or None
        if role == Qt.ItemDataRole.ForegroundRole and col.colour is not None:
            return col.colour(row)
        return None


class HeaderedTableModel(RowsModel):
    """The plumbing of a read-only table whose subclass answers ``cell`` (or ``data``):
    ``rows``, one column per name of ``headers()``, and a vertical header of
    ``row_header(row)`` (the row's number from 1, unless overridden); its cells are enabled
    and selectable."""

    def headers(self) -> Sequence[str]:
        raise NotImplementedError

    def row_header(self, row: int) -> str:
        return str(row + 1)

    def data(self, index: AnyIndex, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        row = self.row_for(index)
        return None if row is None else self.cell(row, index.column(), role)

    def cell(self, row: Any, col: int, role: int) -> Any:
        """What column ``col`` of ``row`` shows for ``role`` (None: nothing)."""
        raise NotImplementedError

    def columnCount(self, parent: AnyIndex = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(self.headers())

    def headerData(self, section: int, orientation: Qt.Orientation,
                   role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if role != Qt.ItemDataRole.DisplayRole:
            return None
        if orientation == Qt.Orientation.Horizontal:
            headers = self.headers()
            return headers[section] if 0 <= section < len(headers) else None
        return self.row_header(section) if 0 <= section < len(self.rows) else None

    def flags(self, index: AnyIndex) -> Qt.ItemFlag:
        if not index.isValid():
            return Qt.ItemFlag.NoItemFlags
        return Qt.ItemFlag.ItemIsEnabled | Qt.ItemFlag.ItemIsSelectable

    def row_changed(self, row: int) -> None:
        """Tell the views that every cell of ``row`` changed."""
        self.dataChanged.emit(self.index(row, 0), self.index(row, self.columnCount() - 1))
