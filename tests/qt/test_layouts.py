"""The real window at 800×600: every tab (and Chat with its settings open) fits without
growing the window or cutting off its key widgets, and long status messages do not widen it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from PySide6.QtCore import QPoint, QRect, Qt
from PySide6.QtWidgets import QAbstractScrollArea, QApplication, QTableView, QWidget

from slmdesk.classify.spec import Label
from slmdesk.store.chats import ChatRepository
from slmdesk.store.datasets import DatasetRepository
from tests.qt.chat.test_window import App

pytestmark = pytest.mark.model

SMALL = (800, 600)
MIN_ROWS = 8  # result and example rows a table shows at 800×600
LONG_PATH = "/home/someone/" + "a-rather-long-folder-name/" * 6 + "reviews.csv"
EXPORTED = f"Exported csv to {LONG_PATH} and its data card to {LONG_PATH}.md"


@pytest.fixture
def window(qtbot: Any, model_path: Path) -> Any:
    from slmdesk.paths import get_paths
    from slmdesk.store.db import open_database

    # A stored chat (a reply has Regenerate) and a labelled data set, before the window opens.
    db = open_database(get_paths().ensure().database)
    chats = ChatRepository(db)
    conv = chats.create_conversation(title="Layout")
    chats.append_message(conv.id, "user", "A question long enough to wrap. " * 8)
    chats.append_message(conv.id, "assistant", "An answer long enough to wrap. " * 12)
    datasets = DatasetRepository(db)
    ds = datasets.create("Reviews", kind="labels", labels=["positive", "negative"])
    for i in range(30):
        datasets.add_labelled_text(ds, f"Review number {i}, good or bad.",
                                   "positive" if i % 2 else None, source="typed")
    db.close()
    app = App(qtbot)
    win = app.win
    win.resize(*SMALL)
    win.chat.open_conversation(conv.id)
    settle(qtbot)
    yield win
    app.close()


def settle(qtbot: Any) -> None:
    for _ in range(3):
        QApplication.processEvents()
        qtbot.wait(30)


def cut_off(widget: QWidget, window: QWidget) -> str | None:
    """Why ``widget`` is not wholly to be seen in ``window``, or None when it is. Inside a
    scroll area only its width counts (scrolling brings the rest into view)."""
    if not widget.isVisible():
        return "hidden"
    rect = QRect(QPoint(0, 0), widget.size())
    child: QWidget = widget
    while child is not window:
        parent = child.parentWidget()
        assert parent is not None
        rect = rect.translated(child.pos())
        scrolled = isinstance(parent.parentWidget(), QAbstractScrollArea) and \
            parent is parent.parentWidget().viewport()  # type: ignore[union-attr]
        inside = parent.rect()
        if scrolled:
            rect = rect.translated(-rect.x() + max(0, rect.x()), 0)
            if rect.left() < 0 or rect.right() > inside.right():
                return f"wider than the scroll area {parent.parentWidget().objectName()}"
            rect = QRect(rect.x(), max(0, rect.y()), rect.width(), 1).intersected(inside)
        elif not inside.contains(rect):
            return f"cut by {type(parent).__name__} {parent.objectName()!r}"
        child = parent
    return None


def assert_fits(qtbot: Any, win: Any, tab: str, widgets: dict[str, QWidget]) -> None:
    settle(qtbot)
    assert (win.width(), win.height()) == SMALL, f"{tab}: the window grew"
    assert win.minimumSizeHint().width() <= SMALL[0], f"{tab}: the window cannot be 800 wide"
    problems = {name: why for name, w in widgets.items() if (why := cut_off(w, win))}
    assert not problems, f"{tab}: {problems}"


def visible_rows(table: QTableView) -> int:
    """How many whole rows the table has room for."""
    return table.viewport().height() // table.verticalHeader().defaultSectionSize()


def assert_columns_readable(table: QTableView, columns: dict[int, int]) -> None:
    """Each column at least that many average characters wide."""
    char = table.fontMetrics().averageCharWidth()
    for column, chars in columns.items():
        assert table.columnWidth(column) >= chars * char, (table.objectName(), column)


def assert_columns_in_view(table: QTableView, columns: list[int]) -> None:
    """Each column wholly inside the table's viewport, without scrolling sideways."""
    table.horizontalScrollBar().setValue(0)
    for column in columns:
        right = table.columnViewportPosition(column) + table.columnWidth(column)
        assert right <= table.viewport().width(), (table.objectName(), column, right)


def test_every_tab_fits_at_800_by_600(qtbot: Any, window: Any) -> None:
    win = window
    page = win.chat_page
    reply = page.chat_view.widgets[-1]
    chat_keys = {"sidebar": page.sidebar, "transcript": page.chat_view,
                 "composer": page.composer, "send": page.send_button,
                 "stop": page.stop_button, "regenerate": reply.action_button,
                 "copy": reply.copy_button, "delete": reply.delete_button,
                 "model picker": win.model_picker, "settings button": win.settings_button}
    assert_fits(qtbot, win, "Chat", chat_keys)
    win.settings_button.setChecked(True)
    panel = page.settings_panel
    assert_fits(qtbot, win, "Chat with settings", {
        **chat_keys, "system prompt": panel.system_prompt, "max tokens": panel.max_tokens,
        "preset": panel.preset_box})
    assert page.chat_view.widgets[-1].view.width() >= 200  # messages keep a readable width
    win.settings_button.setChecked(False)

    cv = win.classify_view
    win.tabs.setCurrentWidget(cv)
    assert_fits(qtbot, win, "Classify", {
        "labels": cv.setup.labels_table, "starter": cv.setup.starter_button,
        "texts": cv.text_input.texts, "classify": cv.run_button, "results": cv.table,
        "label filter": cv.label_filter, "export": cv.review.export_button,
        "data set": cv.review.dataset_box, "new data set": cv.review.new_button,
        "accept": cv.review.accept_button, "correct": cv.review.correct_button})
    # "Save to data set" and "New…" side by side, not on top of each other.
    assert not cv.review.dataset_box.geometry().intersects(cv.review.new_button.geometry())
    from slmdesk.ui.classify.table_models import LABEL_COLUMN, PROBS_COLUMN, TEXT_COLUMN

    assert_columns_readable(cv.table, {TEXT_COLUMN: 12, LABEL_COLUMN: 6, PROBS_COLUMN: 12})
    # The labels' Description keeps half of the narrow setup table (it was cut to 40 px).
    cv.setup.apply_starter([Label("positive", "The writer liked it"),
                            Label("negative", "The writer did not like it")])
    settle(qtbot)
    assert_columns_readable(cv.setup.labels_table, {0: 6, 1: 18})
    assert_columns_in_view(cv.setup.labels_table, [0, 1, 2])

    dv = win.datasets_view
    win.tabs.setCurrentWidget(dv)
    dv.dataset_list.refresh_datasets(select="Reviews")
    assert_fits(qtbot, win, "Data sets", {
        "list": dv.dataset_list.list_view, "examples": dv.table, "search": dv.filters.search_box,
        "import": dv.files.import_button, "export": dv.files.export_button,
        "pre-label": dv.model_runs.prelabel_button, "classifier": dv.model_runs.classifier_box})
    from slmdesk.ui.datasets.table_models import LABEL_COLUMN as DS_LABEL
    from slmdesk.ui.datasets.table_models import TEXT_COLUMN as DS_TEXT

    # The details take at most a quarter, so the text keeps ~24 characters (it was ~15
    # with a third: issue 16's 800×600 pictures).
    assert_columns_readable(dv.table, {DS_TEXT: 20, DS_LABEL: 8})
    rows = visible_rows(dv.table)
    assert rows >= MIN_ROWS, f"the examples table shows {rows} rows"

    lib = win.library_view
    win.tabs.setCurrentWidget(lib)
    assert_fits(qtbot, win, "Models", {"tabs": lib.tabs})
    # The Fit column (the one memory figure) is in view whole, not scrolled off to the side.
    lib.refresh_installed()
    settle(qtbot)
    from slmdesk.ui.library.installed import INSTALLED_FIT_COLUMN

    fit_text = str(lib.installed.data(lib.installed.index(0, INSTALLED_FIT_COLUMN)))
    view = lib.installed_view
    assert view.columnWidth(INSTALLED_FIT_COLUMN) >= view.fontMetrics().horizontalAdvance(
        fit_text), fit_text
    assert_columns_in_view(view, [0, INSTALLED_FIT_COLUMN])
    assert_columns_readable(view, {0: 12})


def test_classify_results_get_the_room_at_800_by_600(qtbot: Any, window: Any) -> None:
    """Results arriving in a small window fold the texts away and move the details into a
    tab of their own: the table shows at least MIN_ROWS rows, and nothing is cut off."""
    from tests.qt.classify.test_view import pick_starter

    win = window
    cv = win.classify_view
    win.tabs.setCurrentWidget(cv)
    settle(qtbot)
    assert cv.details_place.in_tab  # the results pane is too narrow for them beside it
    pick_starter(cv)
    cv.text_input.texts.setPlainText(
        "\n".join(f"Review number {i}: good or bad?" for i in range(12)))
    with qtbot.waitSignal(cv.run_finished, timeout=120_000):
        cv.run_button.click()
    assert cv.input_fold.folded and not cv.text_input.texts.isVisible()
    keys = {"texts fold": cv.text_input.fold_button, "classify": cv.run_button,
            "results": cv.table, "label filter": cv.label_filter, "export": cv.review.export_button,
            "data set": cv.review.dataset_box, "accept": cv.review.accept_button,
            "correct": cv.review.correct_button}
    assert_fits(qtbot, win, "Classify with results", keys)
    rows = visible_rows(cv.table)
    assert rows >= MIN_ROWS, f"the results show {rows} rows"
    # The Confidence column keeps its whole title (it showed "Confiden").
    from slmdesk.ui.classify.table_models import CONFIDENCE_COLUMN

    header = cv.table.horizontalHeader()
    assert header.sectionSize(CONFIDENCE_COLUMN) >= header.sectionSizeHint(CONFIDENCE_COLUMN)

    # Enter on a row shows its details; the texts unfold on a click, as tall as before.
    cv.table.setFocus()
    qtbot.keyClick(cv.table, Qt.Key.Key_Return)
    assert cv.tabs.currentWidget() is cv.layout_parts.details
    assert cv.details_title.text().startswith("Line 1: ")
    cv.tabs.setCurrentIndex(0)
    cv.text_input.fold_button.click()
    assert_fits(qtbot, win, "Classify, texts unfolded", {**keys, "texts": cv.text_input.texts})

    # A wide window puts the details back beside the table.
    win.resize(1440, 900)
    settle(qtbot)
    assert not cv.details_place.in_tab
    assert cv.layout_parts.details.isVisible() and cv.tabs.count() == 2


def test_long_status_messages_do_not_widen_the_window(qtbot: Any, window: Any) -> None:
    win = window
    win.resize(1245, 700)
    settle(qtbot)
    dv = win.datasets_view
    win.tabs.setCurrentWidget(dv)
    settle(qtbot)
    dv.status.setText(EXPORTED)  # what Data sets → Export… says
    settle(qtbot)
    assert win.width() == 1245 and dv.status.text() == EXPORTED
    assert dv.status.toolTip() == EXPORTED or not dv.status.is_elided()
    cv = win.classify_view
    win.tabs.setCurrentWidget(cv)
    cv.status.setText(f"Saved 12 texts to “{'A data set with a long name ' * 4}”.")
    cv.review.note.setText(EXPORTED)
    cv.model_note.setText(EXPORTED)
    settle(qtbot)
    assert win.width() == 1245
    win.show_error(EXPORTED * 2)
    win.resize(*SMALL)
    settle(qtbot)
    assert (win.width(), win.height()) == SMALL
