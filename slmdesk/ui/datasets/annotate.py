"""The Data sets tab's labelling by keyboard and menu, deleting, and their undo."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING

from PySide6.QtCore import (
    Qt,
)
from PySide6.QtWidgets import QInputDialog, QLayout, QWidget

from slmdesk.errors import UserFacingError
from slmdesk.store.datasets import Example
from slmdesk.ui.common.tab_frame import ButtonSpec, add_push_buttons, menu_button

if TYPE_CHECKING:
    pass

if TYPE_CHECKING:
    from slmdesk.ui.datasets.view import DatasetsView


UNDO_DEPTH = 100


@dataclass
class UndoStep:
    """One labelling or deleting action, as the rows were before it."""

    kind: str  # "label" | "delete"
    before: list[Example]
    what: str  # "label 3 examples", for the status line


class Annotator:
    """The Data sets tab's labelling by keyboard and menu, deleting, and their undo."""

    def __init__(self, view: DatasetsView) -> None:
        self.view = view
        self.undo_stacks: dict[str, list[UndoStep]] = {}  # per data set id, the latest last

    def add_buttons(self, row: QLayout, page: QWidget) -> None:
        """Set label ▾ (and its menu), Delete and Undo, added to ``row``."""
        self.relabel_button, self.relabel_menu = menu_button(
            "Set label ▾", "Label the selected examples (keys 1–9; 0 clears)", page,
            name="relabel_button")
        self.relabel_menu.aboutToShow.connect(self._fill_relabel_menu)
        row.addWidget(self.relabel_button)
        self.delete_button, self.undo_button = add_push_buttons(
            row, page,
            ButtonSpec("Delete", "Delete the selected examples (Delete; Ctrl+Z undoes)",
                       "delete_examples", self.delete_selected),
            ButtonSpec("Undo", name="undo_button", clicked=self.undo))

    def update_controls(self, *, labels: bool, selected: bool) -> None:
        """Set label needs a labels data set and a selection, Delete a selection; Undo says
        what it undoes. (Labelling goes on while the model works.)"""
        self.relabel_button.setEnabled(labels and selected)
        self.delete_button.setEnabled(selected)
        steps = self.undo_steps()
        self.undo_button.setEnabled(bool(steps))
        self.undo_button.setToolTip(f"Undo: {steps[-1].what} (Ctrl+Z)" if steps
                                    else "Nothing to undo")

    def forget_dataset(self, dataset_id: str) -> None:
        """The data set is gone: so is its undo stack."""
        self.undo_stacks.pop(dataset_id, None)

    def label_key(self, n: int) -> None:
        """Key ``n``: 1-9 label the selected examples with the nth label, 0 clears."""
        if self.view.dataset is None:
            return
        if n == 0:
            self.set_label_selected(None)
            return
        labels = self.view.dataset.labels
        if n > len(labels):
            self.view.show_error(f"There is no label {n}: this data set has "
                            f"{len(labels)} label{'s' if len(labels) != 1 else ''}"
                            + (f" ({', '.join(labels)})." if labels else
                               "; add one with Set label ▸ New label…"))
            return
        self.set_label_selected(labels[n - 1])

    def set_label_selected(self, label: str | None) -> int:
        """Label (or, with None, unlabel) the selected examples; undoable. The cursor then
        moves to the example after them."""
        rows = self._selected_rows_or_say()
        if not rows or self.view.dataset is None:
            return 0
        if self.view.dataset.kind != "labels":
            self.view.show_error("Chat examples have no labels.")
            return 0
        chosen = [self.view.examples.example(r) for r in rows]
        return self._apply_labels({e.id: (label, "person") for e in chosen}, rows,
                                  "clear the label of" if label is None else f"label {label}")

    def _selected_rows_or_say(self) -> list[int]:
        """The selected rows of the open data set; none (and a word why) when none is."""
        if self.view.dataset is None:
            return []
        rows = self.view.selected_rows()
        if not rows:
            self.view.show_error("Select one or more examples first.",
                                 until=self.view.table.selectionModel().selectionChanged)
        return rows

    def _apply_labels(self, labels: dict[str, tuple[str | None, str]], rows: Sequence[int],
                      what: str) -> int:
        """Set each example's (label, labelled by), one call per distinct pair, in one
        transaction; one undo step. The cursor moves to the example after ``rows``."""
        assert self.view.dataset is not None
        groups: dict[tuple[str | None, str], list[str]] = {}
        for eid, pair in labels.items():
            groups.setdefault(pair, []).append(eid)
        next_id, fallback = self._next_id_after(rows)
        before: list[Example] = []
        try:
            with self.view.db.atomic():
                for (lab, by), ids in groups.items():
                    before.extend(self.view.datasets.set_label(ids, lab, labelled_by=by))
        except UserFacingError as exc:
            self.view.show_error(exc.message)
            return 0
        self.view.clear_error()
        n = len(labels)
        text = f"{what} {n} example{'s' if n != 1 else ''}"
        self._push_undo(UndoStep("label", before, text))
        self.view.dataset_list.reload_dataset()  # a new label joins the label set
        shown_before = self.view.examples.rowCount()
        self.view.reload(select_ids=[])
        removed = shown_before - self.view.examples.rowCount()
        self._move_after(next_id, fallback, removed if next_id is None else 0)
        self.view.status.setText(text[0].upper() + text[1:] + ". Ctrl+Z undoes.")
        self._focus_table()
        self.view.labelled.emit(n)
        return n

    def accept_selected_suggestions(self) -> int:
        """Give the selected examples the label the model suggested (the person agrees)."""
        if self.view.dataset is None:
            return 0
        rows = self.view.selected_rows()
        chosen: dict[str, tuple[str | None, str]] = {
            e.id: (e.model_label, "person") for e in (self.view.examples.example(r) for r in rows)
            if e.model_label is not None}
        if not chosen:
            self.view.show_error("The selected examples have no model suggestion to accept.")
            return 0
        return self._apply_labels(chosen, rows, "accept the suggestion for")

    def accept_suggestions_over(self, threshold: float) -> int:
        """Label every unlabelled example of the data set whose suggestion is at least
        ``threshold`` confident with that suggestion; one undo step. Nobody looked at
        each of them, so the model is recorded as the labeller."""
        if self.view.dataset is None or self.view.runner.busy:
            return 0
        todo: dict[str, tuple[str | None, str]] = {
            e.id: (e.model_label, f"model:{e.model_name or 'unknown'}")
            for e in self.view.datasets.query(self.view.dataset, unlabelled=True)
            if e.model_label is not None and (e.model_confidence or 0.0) >= threshold}
        if not todo:
            self.view.show_error(f"No unlabelled example has a suggestion of {threshold:.0%} or "
                            "more.")
            return 0
        return self._apply_labels(todo, self.view.selected_rows(),
                                  f"accept suggestions over {threshold:.0%} for")

    def _fill_relabel_menu(self) -> None:
        menu = self.relabel_menu
        menu.clear()
        labels = self.view.dataset.labels if self.view.dataset is not None else []
        for n, lab in enumerate(labels, start=1):
            action = menu.addAction(lab, partial(self.set_label_selected, lab))
            if n <= 9:
                action.setShortcut(str(n))
        menu.addSeparator()
        menu.addAction("New label…", self._new_label_requested)
        clear = menu.addAction("Clear the label", lambda: self.set_label_selected(None))
        clear.setShortcut("0")

    def _new_label_requested(self) -> None:
        name, ok = QInputDialog.getText(self.view, "New label", "Label:")
        if ok and name.strip():
            self.set_label_selected(" ".join(name.split()))

    def delete_selected(self) -> int:
        """Delete the selected examples; undoable."""
        rows = self._selected_rows_or_say()
        if not rows or self.view.dataset is None:
            return 0
        ids = [self.view.examples.example(r).id for r in rows]
        next_id, _fallback = self._next_id_after(rows)
        try:
            deleted = self.view.datasets.delete_examples(ids)
        except UserFacingError as exc:
            self.view.show_error(exc.message)
            return 0
        self.view.clear_error()
        self.view.model_runs.forget({e.id for e in deleted})
        n = len(deleted)
        text = f"deleted {n} example{'s' if n != 1 else ''}"
        self._push_undo(UndoStep("delete", list(deleted), text))
        self.view.reload(select_ids=[])
        # The example after them, else the one now where the first of them was.
        self._move_after(next_id, min(rows))
        self.view.status.setText(f"{text[0].upper()}{text[1:]}. Ctrl+Z brings "
                            f"{'them' if n != 1 else 'it'} back.")
        self.view.dataset_list.refresh_list_counts()
        self._focus_table()
        return n

    def _push_undo(self, step: UndoStep) -> None:
        assert self.view.dataset is not None
        stack = self.undo_stacks.setdefault(self.view.dataset.id, [])
        stack.append(step)
        del stack[:-UNDO_DEPTH]
        self.view.update_controls()

    def undo(self) -> bool:
        """Put back the rows the last label or delete action changed."""
        if self.view.dataset is None:
            return False
        stack = self.undo_stacks.get(self.view.dataset.id, [])
        if not stack:
            self.view.status.setText("Nothing to undo.")
            return False
        step = stack.pop()
        try:
            self.view.datasets.restore_examples(step.before)
        except UserFacingError as exc:
            stack.append(step)
            self.view.show_error(exc.message)
            return False
        self.view.clear_error()
        ids = [e.id for e in step.before]
        self.view.reload(select_ids=ids)
        self.view.status.setText(f"Undid: {step.what}.")
        if step.kind == "delete":
            self.view.dataset_list.refresh_list_counts()
        self.view.update_controls()
        self._focus_table()
        return True

    def _next_id_after(self, rows: Sequence[int]) -> tuple[str | None, int]:
        """The example after the last of ``rows`` (where the cursor goes next), and that
        row number (for when it is gone after the refresh)."""
        if not rows:
            return None, 0
        examples = self.view.examples
        after = max(rows) + 1
        if after < examples.rowCount():
            return examples.example(after).id, after
        return None, max(rows)

    def _move_after(self, next_id: str | None, fallback_row: int, removed: int = 0) -> None:
        """Put the cursor on ``next_id``, else near ``fallback_row`` less the rows removed."""
        examples = self.view.examples
        if next_id is not None and examples.row_of(next_id) >= 0:
            self.view.select_row(examples.row_of(next_id))
        elif examples.rowCount():
            self.view.select_row(min(max(fallback_row - removed, 0), examples.rowCount() - 1))

    def _focus_table(self) -> None:
        """Back to the table after a button or a menu, so the keys go on working."""
        if self.view.isVisible() and not self.view.table.hasFocus():
            self.view.table.setFocus(Qt.FocusReason.OtherFocusReason)

    def undo_steps(self) -> list[UndoStep]:
        dataset = self.view.dataset
        return list(self.undo_stacks.get(dataset.id, [])) if dataset is not None else []
