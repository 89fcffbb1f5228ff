"""Renaming a chat in the sidebar through the real inline editor (issue 16, defect 1)."""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QApplication, QLineEdit

from slmdesk.store.chats import ChatRepository
from slmdesk.store.db import open_database
from slmdesk.ui.chat.conversations import ConversationSidebar


def _sidebar(qtbot: Any, tmp_path: Path) -> tuple[ConversationSidebar, ChatRepository, str]:
    db = open_database(tmp_path / "slmdesk.db")
    chats = ChatRepository(db)
    conv = chats.create_conversation(title="Alpha")
    sidebar = ConversationSidebar(chats)
    qtbot.addWidget(sidebar)
    sidebar.refresh()
    sidebar.set_current(conv.id)
    sidebar.show()
    qtbot.waitExposed(sidebar)
    sidebar.activateWindow()
    return sidebar, chats, conv.id


def _open_editor(sidebar: ConversationSidebar) -> QLineEdit | None:
    editors = [e for e in sidebar.tree.viewport().findChildren(QLineEdit) if e.isVisible()]
    return editors[0] if editors else None


def _edit_and_commit(qtbot: Any, sidebar: ConversationSidebar, text: str) -> None:
    sidebar.tree.setFocus()
    qtbot.keyClick(sidebar.tree, Qt.Key.Key_F2)
    editor = _open_editor(sidebar)
    assert editor is not None, "F2 opens the inline editor"
    editor.selectAll()
    qtbot.keyClick(editor, Qt.Key.Key_Backspace)
    if text:
        qtbot.keyClicks(editor, text)
    qtbot.keyClick(editor, Qt.Key.Key_Return)
    QApplication.processEvents()


def test_renaming_to_an_empty_name_keeps_the_old_name_and_the_app(qtbot: Any,
                                                                  tmp_path: Path) -> None:
    # Before the fix this crashed the process (segmentation fault, 3 of 3 tries): the model was
    # rebuilt from inside its own itemChanged signal while the editor was still committing.
    sidebar, chats, cid = _sidebar(qtbot, tmp_path)
    _edit_and_commit(qtbot, sidebar, "")
    qtbot.waitUntil(lambda: sidebar.model.item(0).child(0).text() == "Alpha", timeout=2000)
    assert chats.get_conversation(cid).title == "Alpha"
    # The sidebar still works: a second, real rename goes through.
    _edit_and_commit(qtbot, sidebar, "Beta")
    assert chats.get_conversation(cid).title == "Beta"
    assert sidebar.current_id() == cid


def test_clicking_the_selected_chat_does_not_open_the_editor(qtbot: Any, tmp_path: Path) -> None:
    # A click on an already selected chat used to open the editor, so Delete then erased the
    # title instead of deleting the chat. Rename is F2 or the context menu.
    sidebar, _chats, cid = _sidebar(qtbot, tmp_path)
    index = sidebar.model.index_of(cid)
    rect = sidebar.tree.visualRect(index)
    qtbot.mouseClick(sidebar.tree.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())
    qtbot.wait(QApplication.doubleClickInterval() + 100)
    qtbot.mouseClick(sidebar.tree.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())
    qtbot.wait(QApplication.doubleClickInterval() + 100)
    assert _open_editor(sidebar) is None


def test_search_hits_have_room_between_them(qtbot: Any, tmp_path: Path) -> None:
    # Issue 16, item 10: the hits were cramped, two-line entries packed edge to edge.
    sidebar, chats, cid = _sidebar(qtbot, tmp_path)
    for text in ("the purple lighthouse", "a purple whale", "purple rain again"):
        chats.append_message(cid, "user", text)
    sidebar.search_box.setText("purple")
    sidebar.run_search()
    hits = sidebar.hits
    assert hits.count() == 3
    rects = [hits.visualItemRect(hits.item(i)) for i in range(3)]
    line = hits.fontMetrics().lineSpacing()
    assert all(r.height() >= 2 * line for r in rects)  # title and snippet, both whole
    assert all(b.top() - a.bottom() > 4 for a, b in itertools.pairwise(rects))
