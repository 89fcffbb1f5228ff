"""Column sizing for the tables whose one long text column must stay readable: the other
columns take their contents' width up to a limit, and shrink together when the table is
narrow so that the text column keeps a fair share."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from PySide6.QtCore import QEvent, QObject, Qt, QTimer
from PySide6.QtWidgets import QHeaderView, QTableView

TEXT_SHARE = 0.5  # of the table's width, the least the text column keeps when it is narrow


class ColumnFitter(QObject):
    """Keeps ``table``'s columns sized: ``stretch_column`` takes what is left; every other
    column its contents' width (header included) up to its limit in ``max_widths``
    (``default_max`` for the rest), and not under its floor in ``min_widths`` when the table
    is narrow; a column in ``whole_titles`` never gets less than its title needs. It fits
    again when the table is resized or its rows change, and whenever ``fit()`` is called
    (after showing a hidden column)."""

    def __init__(self, table: QTableView, stretch_column: int, max_widths: Mapping[int, int],
                 *, default_max: int = 160, min_widths: Mapping[int, int] | None = None,
                 whole_titles: Iterable[int] = ()) -> None:
        super().__init__(table)
        self.table = table
        self.stretch_column = stretch_column
        self.max_widths = dict(max_widths)
        self.default_max = default_max
        self.min_widths = dict(min_widths or {})  # the key columns' floors when narrow
        self.whole_titles = frozenset(whole_titles)
        header = table.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.Interactive)
        header.setSectionResizeMode(stretch_column, QHeaderView.ResizeMode.Stretch)
        # A narrow column shows the start of its title, not a cut-out middle.
        header.setDefaultAlignment(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter)
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.setInterval(0)
        self._timer.timeout.connect(self.fit)
        table.viewport().installEventFilter(self)
        model = table.model()
        for signal in (model.modelReset, model.layoutChanged, model.rowsInserted,
                       model.rowsRemoved):
            signal.connect(self._timer.start)

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        if event.type() == QEvent.Type.Resize:
            self._timer.start()
        return False

    def wanted_width(self, column: int) -> int:
        """The column's width by its contents and header, within its limit."""
        header = self.table.horizontalHeader()
        title = header.sectionSizeHint(column)
        contents = max(self.table.sizeHintForColumn(column), title)
        limit = self.max_widths.get(column, self.default_max)
        return min(contents, max(limit, title) if column in self.whole_titles else limit)

    def fit(self) -> None:
        header = self.table.horizontalHeader()
        columns = [c for c in range(header.count())
                   if c != self.stretch_column and not self.table.isColumnHidden(c)]
        wanted = {c: self.wanted_width(c) for c in columns}
        room = self.table.viewport().width() * (1 - TEXT_SHARE)
        total = sum(wanted.values())
        scale = min(1.0, room / total) if total else 1.0
        for column, width in wanted.items():
            floor = max(header.minimumSectionSize(), min(width, self.min_widths.get(column, 0)))
            if column in self.whole_titles:
                floor = max(floor, header.sectionSizeHint(column))
            header.resizeSection(column, max(floor, int(width * scale)))
