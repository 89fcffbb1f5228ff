"""The read-only row tables of the Server tab and the engines dialog, built one way."""

from __future__ import annotations

from PySide6.QtWidgets import QAbstractItemView, QHeaderView, QTableView, QWidget

from slmdesk.ui.common.table_model import RowTableModel


def row_table(parent: QWidget, model: RowTableModel, name: str, stretch_column: int
              ) -> QTableView:
    """A table over ``model`` that selects whole rows, without row numbers, whose
    ``stretch_column`` takes the width left."""
    view = QTableView(parent)
    view.setObjectName(name)
    view.setModel(model)
    view.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
    view.verticalHeader().hide()
    view.horizontalHeader().setSectionResizeMode(stretch_column, QHeaderView.ResizeMode.Stretch)
    return view
