"""The classifier setup column: instructions, labels, examples and options, as a spec."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import partial
from typing import Any

from PySide6.QtCore import QAbstractItemModel, QModelIndex, QPersistentModelIndex, Qt, Signal
from PySide6.QtWidgets import (
    QAbstractItemView,
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFormLayout,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QMenu,
    QMessageBox,
    QPlainTextEdit,
    QStyledItemDelegate,
    QStyleOptionViewItem,
    QTableWidget,
    QTableWidgetItem,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from slmdesk.classify.spec import ClassifierSpec, Label
from slmdesk.errors import InvalidInputError
from slmdesk.ui.common.column_fit import ColumnFitter
from slmdesk.ui.common.flow_layout import FlowLayout

AnyIndex = QModelIndex | QPersistentModelIndex

CALIBRATIONS: tuple[tuple[str, str], ...] = (
    ("auto", "Pick for me: contextual calibration for single texts, batch calibration when "
             "a whole batch is classified at once."),
    ("none", "Use the model's probabilities as they are. Small models often lean towards "
             "one label whatever the text."),
    ("contextual", "Measure how the model leans on an empty text and correct for it "
                   "(works text by text, so live results are already calibrated)."),
    ("batch", "Correct for the model's lean using the whole batch: best for large batches; "
              "the final results can differ from the live ones."),
)
PROMPT_STYLES: tuple[tuple[str, str], ...] = (
    ("auto", "Chat prompt when the model has a chat template, else a plain completion."),
    ("chat", "Ask through the model's chat template (instruction-tuned models)."),
    ("completion", "A plain text prompt (base models)."),
)
STARTERS: tuple[tuple[str, tuple[tuple[str, str], ...]], ...] = (
    ("positive, negative", (("positive", "a favourable, happy or approving text"),
                            ("negative", "an unfavourable, unhappy or critical text"))),
    ("positive, neutral, negative", (("positive", "a favourable or approving text"),
                                     ("neutral", "neither favourable nor unfavourable"),
                                     ("negative", "an unfavourable or critical text"))),
    ("spam, not spam", (("spam", "unsolicited advertising, scams or phishing"),
                        ("not spam", "an ordinary message"))),
    ("question, statement", (("question", "asks something"),
                             ("statement", "states or reports something"))),
)
EXAMPLES_FROM_DATASET = 2  # per label, when examples are taken from a data set


def split_verbalizers(text: str) -> tuple[str, ...]:
    return tuple(v.strip() for v in text.split(",") if v.strip())


class LabelChoiceDelegate(QStyledItemDelegate):
    """Edits a cell with a combo box of the labels defined right now."""

    def __init__(self, labels: Callable[[], list[str]], parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._labels = labels

    def createEditor(self, parent: QWidget, option: QStyleOptionViewItem,
                     index: AnyIndex) -> QWidget:
        box = QComboBox(parent)
        box.addItems(self._labels())
        return box

    def setEditorData(self, editor: QWidget, index: AnyIndex) -> None:
        if isinstance(editor, QComboBox):
            current = index.data(Qt.ItemDataRole.EditRole) or ""
            at = editor.findText(str(current))
            editor.setCurrentIndex(max(at, 0))

    def setModelData(self, editor: QWidget, model: QAbstractItemModel,
                     index: AnyIndex) -> None:
        if isinstance(editor, QComboBox):
            model.setData(index, editor.currentText(), Qt.ItemDataRole.EditRole)


def _tool(text: str, tip: str, parent: QWidget) -> QToolButton:
    button = QToolButton(parent)
    button.setText(text)
    button.setToolTip(tip)
    button.setAutoRaise(True)
    return button


def _choice_box(parent: QWidget, name: str, choices: Sequence[tuple[str, str]]) -> QComboBox:
    """A combo of (value, tip) choices: each tip on its item, all of them on the box."""
    box = QComboBox(parent)
    box.setObjectName(name)
    for value, tip in choices:
        box.addItem(value, value)
        box.setItemData(box.count() - 1, tip, Qt.ItemDataRole.ToolTipRole)
    box.setToolTip("\n\n".join(f"{v}: {tip}" for v, tip in choices))
    return box


class SetupPanel(QWidget):
    """Instructions, a labels table, an examples table and the options of a classifier."""

    labels_changed = Signal()
    examples_from_dataset_requested = Signal()  # the view fills the menu: it has the store

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._loaded: ClassifierSpec | None = None  # the saved classifier last opened
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)

        layout.addWidget(QLabel("<b>Instructions</b>", self))
        self.instructions = QPlainTextEdit(self)
        self.instructions.setObjectName("instructions")
        self.instructions.setPlaceholderText(
            "What should the model decide? e.g. “Is this product review positive or "
            "negative?” (optional)")
        self.instructions.setMaximumHeight(80)
        layout.addWidget(self.instructions)

        self._build_labels(layout)
        self._build_examples(layout)
        self._build_options(layout)

    def _build_labels(self, layout: QVBoxLayout) -> None:
        """The labels table with its starter menu and add/remove buttons."""
        self.starter_button, starters, self.add_label_button, self.remove_label_button = (
            self._table_head(layout, "<b>Labels</b>", ("Starter ▾", "label_starters"),
                             "Fill the labels with a common set",
                             ("Add a label", lambda: self.add_label_row()),
                             ("Remove the selected labels", self._remove_selected_labels)))
        for title, labels in STARTERS:
            starters.addAction(title, partial(self.apply_starter, [
                Label(name, description) for name, description in labels]))
        self.labels_table = QTableWidget(0, 3, self)
        self.labels_table.setObjectName("labels_table")
        self.labels_table.setHorizontalHeaderLabels(["Name", "Description", "Verbalizers"])
        header_items = (
            ("The label as it appears in results and data sets", 0),
            ("Tells the model what the label means (goes into the prompt)", 1),
            ("Words the model may answer with for this label, comma-separated "
             "(e.g. good, great, loved it)", 2),
        )
        for tip, col in header_items:
            item = self.labels_table.horizontalHeaderItem(col)
            if item is not None:
                item.setToolTip(tip)
        self._stretch(self.labels_table, stretch_column=1)
        # The description keeps half of a narrow table (at 800×600 it was cut to 40 px);
        # names and verbalizers take their contents' width up to these limits.
        self.labels_fitter = ColumnFitter(self.labels_table, 1, {0: 140, 2: 180},
                                          min_widths={0: 60})
        self.labels_table.setMinimumHeight(120)
        self.labels_table.itemChanged.connect(lambda _item: self.labels_changed.emit())
        layout.addWidget(self.labels_table)

    def _build_examples(self, layout: QVBoxLayout) -> None:
        """The few-shot examples table with its data-set menu and add/remove buttons."""
        (self.from_dataset_button, self.dataset_menu, self.add_example_button,
         self.remove_example_button) = self._table_head(
            layout, "<b>Examples</b> (optional)", ("From data set ▾", "examples_from_dataset"),
            f"Add {EXAMPLES_FROM_DATASET} examples per label from a labelled data set",
            ("Add an example", lambda: self.add_example_row()),
            ("Remove the selected examples", self._remove_selected_examples))
        self.dataset_menu.aboutToShow.connect(self.examples_from_dataset_requested)
        self.examples_table = QTableWidget(0, 2, self)
        self.examples_table.setObjectName("examples_table")
        self.examples_table.setHorizontalHeaderLabels(["Text", "Label"])
        self._stretch(self.examples_table, stretch_column=0)
        self.examples_table.setItemDelegateForColumn(
            1, LabelChoiceDelegate(self.label_names, self.examples_table))
        self.examples_table.setMinimumHeight(90)
        layout.addWidget(self.examples_table)

    def _build_options(self, layout: QVBoxLayout) -> None:
        """Calibration, prompt style, multi-label threshold and the explanation switch."""
        form = QFormLayout()
        self.calibration = _choice_box(self, "calibration", CALIBRATIONS)
        form.addRow("Calibration:", self.calibration)
        self.prompt_style = _choice_box(self, "prompt_style", PROMPT_STYLES)
        form.addRow("Prompt:", self.prompt_style)
        multi = QHBoxLayout()
        self.multi_label = QCheckBox("Multi-label", self)
        self.multi_label.setObjectName("multi_label")
        self.multi_label.setToolTip(
            "Several labels may apply. Each label is judged on its own: a text gets every "
            "label whose probability reaches the threshold (possibly none).")
        self.threshold = QDoubleSpinBox(self)
        self.threshold.setObjectName("threshold")
        self.threshold.setRange(0.01, 0.99)
        self.threshold.setSingleStep(0.05)
        self.threshold.setDecimals(2)
        self.threshold.setValue(0.5)
        self.threshold.setPrefix("≥ ")
        self.threshold.setToolTip("A label applies when its probability reaches this value")
        self.threshold.setEnabled(False)
        self.multi_label.toggled.connect(self.threshold.setEnabled)
        multi.addWidget(self.multi_label)
        multi.addWidget(self.threshold)
        multi.addStretch(1)
        form.addRow("Per text:", multi)
        self.explain = QCheckBox("Ask for a short reason", self)
        self.explain.setObjectName("explain")
        self.explain.setToolTip("Slower: the model writes one sentence per text after "
                                "choosing its label. Shown in the details pane.")
        form.addRow("Explain:", self.explain)
        layout.addLayout(form)

    def _table_head(self, layout: QVBoxLayout, title: str, menu: tuple[str, str],
                    menu_tip: str, add: tuple[str, Callable[[], object]],
                    remove: tuple[str, Callable[[], object]]) -> tuple[
                        QToolButton, QMenu, QToolButton, QToolButton]:
        """The row over a table: its title, a menu button (text, object name), and the
        + and − buttons (tooltip, click handler); the buttons wrap under the title in a
        narrow pane."""
        head = FlowLayout()
        head.addWidget(QLabel(title, self))
        head.add_stretching(QWidget(self))
        menu_button = _tool(menu[0], menu_tip, self)
        menu_button.setObjectName(menu[1])
        menu_button.setPopupMode(QToolButton.ToolButtonPopupMode.InstantPopup)
        choices = QMenu(menu_button)
        menu_button.setMenu(choices)
        buttons = [menu_button]
        for text, (tip, clicked) in (("+", add), ("−", remove)):
            button = _tool(text, tip, self)
            button.clicked.connect(clicked)
            buttons.append(button)
        for button in buttons:
            head.addWidget(button)
        layout.addLayout(head)
        return menu_button, choices, buttons[1], buttons[2]

    @staticmethod
    def _stretch(table: QTableWidget, *, stretch_column: int) -> None:
        header = table.horizontalHeader()
        for col in range(table.columnCount()):
            header.setSectionResizeMode(
                col, QHeaderView.ResizeMode.Stretch if col == stretch_column
                else QHeaderView.ResizeMode.Interactive)
        table.verticalHeader().setVisible(False)
        table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        triggers = QAbstractItemView.EditTrigger
        table.setEditTriggers(triggers.DoubleClicked | triggers.EditKeyPressed
                              | triggers.AnyKeyPressed | triggers.SelectedClicked)

    def _remove_selected_labels(self) -> None:
        self._remove_selected(self.labels_table)

    def _remove_selected_examples(self) -> None:
        self._remove_selected(self.examples_table)

    def _remove_selected(self, table: QTableWidget) -> None:
        rows = sorted({i.row() for i in table.selectedIndexes()}, reverse=True)
        if not rows and table.currentRow() >= 0:
            rows = [table.currentRow()]
        for row in rows:
            table.removeRow(row)
        if table is self.labels_table and rows:
            self.labels_changed.emit()  # removeRow does not emit itemChanged

    # labels ------------------------------------------------------------------------------
    def add_label_row(self, name: str = "", description: str = "",
                      verbalizers: Sequence[str] = ()) -> int:
        table = self.labels_table
        row = table.rowCount()
        blocked = table.blockSignals(True)
        try:
            table.insertRow(row)
            for col, value in enumerate((name, description, ", ".join(verbalizers))):
                table.setItem(row, col, QTableWidgetItem(value))
        finally:
            table.blockSignals(blocked)
        self.labels_changed.emit()
        if not name:
            self._edit_new(table, row)
        return row

    def set_labels(self, labels: Sequence[Label]) -> None:
        blocked = self.labels_table.blockSignals(True)
        try:
            self.labels_table.setRowCount(0)
        finally:
            self.labels_table.blockSignals(blocked)
        for label in labels:
            self.add_label_row(label.name, label.description, label.verbalizers)
        self.labels_changed.emit()

    def apply_starter(self, labels: Sequence[Label]) -> bool:
        """Replace the labels with a starter set; labels the person typed are replaced only
        after they agree. Returns whether the labels were replaced."""
        typed = self.label_names()
        if typed and typed != [label.name for label in labels]:
            answer = QMessageBox.question(
                self, "Replace the labels?",
                f"Replace the {len(typed)} label{'s' if len(typed) != 1 else ''} you have "
                f"({', '.join(typed)}) with the starter set "
                f"({', '.join(label.name for label in labels)})?",
                QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No,
                QMessageBox.StandardButton.No)
            if answer != QMessageBox.StandardButton.Yes:
                return False
        self.set_labels(labels)
        return True

    def _cell(self, table: QTableWidget, row: int, col: int) -> str:
        item = table.item(row, col)
        return item.text().strip() if item is not None else ""

    def label_names(self) -> list[str]:
        """The names typed so far, unchecked (for menus and combos)."""
        names = []
        for row in range(self.labels_table.rowCount()):
            name = " ".join(self._cell(self.labels_table, row, 0).split())
            if name and name not in names:
                names.append(name)
        return names

    def labels(self) -> list[Label]:
        """The labels, checked: names present and unique."""
        labels: list[Label] = []
        seen: dict[str, int] = {}
        for row in range(self.labels_table.rowCount()):
            name = " ".join(self._cell(self.labels_table, row, 0).split())
            description = self._cell(self.labels_table, row, 1)
            verbalizers = split_verbalizers(self._cell(self.labels_table, row, 2))
            if not name:
                if description or verbalizers:
                    raise InvalidInputError(f"Label row {row + 1} has no name.")
                continue  # an empty row is just an unused row
            key = name.casefold()
            if key in seen:
                raise InvalidInputError(
                    f"The label “{name}” is defined twice (rows {seen[key]} and {row + 1}). "
                    "Each label needs its own name.")
            seen[key] = row + 1
            labels.append(Label(name, description, verbalizers))
        if not labels:
            raise InvalidInputError(
                "Define the labels first: a name per row (a description helps the model), "
                "or pick a starter set.")
        return labels

    # examples ----------------------------------------------------------------------------
    def add_example_row(self, text: str = "", label: str = "") -> int:
        table = self.examples_table
        row = table.rowCount()
        table.insertRow(row)
        table.setItem(row, 0, QTableWidgetItem(text))
        names = self.label_names()
        table.setItem(row, 1, QTableWidgetItem(label or (names[0] if names else "")))
        if not text:
            self._edit_new(table, row)
        return row

    @staticmethod
    def _edit_new(table: QTableWidget, row: int) -> None:
        table.setCurrentCell(row, 0)
        item = table.item(row, 0)
        if item is not None and table.isVisible():
            table.editItem(item)

    def examples(self, names: Sequence[str]) -> list[tuple[str, str]]:
        examples: list[tuple[str, str]] = []
        for row in range(self.examples_table.rowCount()):
            text = self._cell(self.examples_table, row, 0)
            label = self._cell(self.examples_table, row, 1)
            if not text:
                continue
            if label not in names:
                shown = f"“{label}”" if label else "no label"
                raise InvalidInputError(
                    f"Example {row + 1} has {shown}; pick one of the labels: "
                    f"{', '.join(names)}.")
            examples.append((text, label))
        return examples

    # the spec ------------------------------------------------------------------------------
    def spec(self) -> ClassifierSpec:
        """The classifier as set up here; raises InvalidInputError with what to fix."""
        labels = self.labels()
        names = [lab.name for lab in labels]
        spec = ClassifierSpec(
            labels=tuple(labels),
            instructions=self.instructions.toPlainText().strip(),
            examples=tuple(self.examples(names)),
            calibration=str(self.calibration.currentData()),
            multi_label=self.multi_label.isChecked(),
            threshold=round(self.threshold.value(), 2),
            prompt_style=str(self.prompt_style.currentData()),
            explain=self.explain.isChecked(),
        )
        # A trained classifier keeps its training while its prompt is left as it was.
        spec = spec.with_training_of(self._loaded)
        # from_json is the one place that checks every field: go through it.
        checked: ClassifierSpec = ClassifierSpec.from_json(spec.to_json())
        return checked

    def load_spec(self, spec: ClassifierSpec) -> None:
        self._loaded = spec
        self.instructions.setPlainText(spec.instructions)
        self.set_labels(spec.labels)
        self.examples_table.setRowCount(0)
        for text, label in spec.examples:
            self.add_example_row(text, label)
        self._select(self.calibration, spec.calibration)
        self._select(self.prompt_style, spec.prompt_style)
        self.multi_label.setChecked(bool(spec.multi_label))
        self.threshold.setValue(float(spec.threshold))
        self.explain.setChecked(bool(spec.explain))

    @staticmethod
    def _select(box: QComboBox, value: Any) -> None:
        at = box.findData(value)
        box.setCurrentIndex(at if at >= 0 else 0)
