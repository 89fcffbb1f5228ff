"""The Markdown message view: structure, safety (no resource, no HTML, no stray links),
copying code, streaming, hostile input and auto height; prepare_markdown without Qt."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from PySide6.QtCore import QUrl
from PySide6.QtGui import (
    QColor,
    QDesktopServices,
    QFont,
    QFontDatabase,
    QGuiApplication,
    QImage,
    QPalette,
    QTextBlock,
    QTextDocument,
    QTextFormat,
    QTextTable,
)
from PySide6.QtWidgets import QVBoxLayout, QWidget

from slmdesk.ui.chat.markdown import (
    COPY_SCHEME,
    IMAGE_MARK,
    CodeBlock,
    MessageView,
    prepare_markdown,
)

# ---------------------------------------------------------------------------------------------
# prepare_markdown (no Qt)


def test_inline_and_reference_images_become_links() -> None:
    text = (
        "See ![a cat](https://x.test/cat.png \"Cat\") and ![ref img][r], ![r][], ![r] "
        "and ![](https://x.test/e.png).\n\n[r]: https://x.test/r.png\n"
    )
    md = prepare_markdown(text).markdown
    assert "![" not in md
    assert f'[{IMAGE_MARK} a cat](https://x.test/cat.png "Cat")' in md
    assert f"[{IMAGE_MARK} ref img][r]" in md
    # Collapsed and shortcut references keep their label, so they still resolve.
    assert md.count(f"[{IMAGE_MARK} r][r]") == 2
    assert f"[{IMAGE_MARK} image](https://x.test/e.png)" in md
    assert "[r]: https://x.test/r.png" in md


def test_code_spans_fences_and_escapes_are_left_as_written() -> None:
    text = (
        "inline `![x](y)` and ``a ` ![p](q) b`` stay; \\![e](f) is escaped\n"
        "```md\n![in fence](z)\n```\n"
        "~~~\n![tilde](t)\n~~~\n"
        "but ![out](o) changes"
    )
    md = prepare_markdown(text).markdown
    assert "`![x](y)`" in md
    assert "``a ` ![p](q) b``" in md
    assert "\\![e](f)" in md
    assert "\n![in fence](z)\n" in md
    assert "\n![tilde](t)\n" in md
    assert f"[{IMAGE_MARK} out](o)" in md


def test_unmatched_backticks_do_not_hide_images() -> None:
    md = prepare_markdown("``code `` ![a](b) ``` and ` ![c](d)").markdown
    assert f"[{IMAGE_MARK} a](b)" in md
    assert f"[{IMAGE_MARK} c](d)" in md


def test_code_span_does_not_reach_across_a_blank_line() -> None:
    md = prepare_markdown("``a\n\nb`` ![x](y)").markdown
    assert f"[{IMAGE_MARK} x](y)" in md


def test_image_inside_a_link_keeps_the_outer_link() -> None:
    md = prepare_markdown("[![badge](https://x.test/b.svg)](https://x.test/repo)").markdown
    assert md == f"[{IMAGE_MARK} badge](https://x.test/repo)"


def test_not_an_image_is_not_rewritten() -> None:
    for text in ("![no closing bracket", "![undefined ref]", "![x][missing]", "![a](b"):
        assert prepare_markdown(text).markdown == text


def test_copy_link_goes_before_each_fence_and_blocks_are_collected() -> None:
    text = "Intro:\n```python\ndef f():\n    return 1  \n```\ntext\n~~~ sh extra words\nls -l\n~~~"
    prepared = prepare_markdown(text)
    assert prepared.code_blocks == (
        CodeBlock("def f():\n    return 1  ", "python"),
        CodeBlock("ls -l", "sh"),
    )
    lines = prepared.markdown.split("\n")
    first = lines.index(f"[Copy code]({COPY_SCHEME}:0)")
    # A blank line separates the link from "Intro:", or it would join that paragraph.
    assert lines[first - 2 : first + 2] == ["Intro:", "", f"[Copy code]({COPY_SCHEME}:0)",
                                            "```python"]
    second = lines.index(f"[Copy code]({COPY_SCHEME}:1)")
    assert lines[second + 1] == "~~~ sh extra words"


def test_fences_in_lists_and_quotes_copy_without_their_container() -> None:
    text = (
        "1. Step\n   ```bash\n   echo one\n     indented\n   ```\n"
        "- ```py\n  x = 1\n  ```\n"
        "> ```js\n> let a = 1;\n> ```\n"
    )
    prepared = prepare_markdown(text)
    assert [b.text for b in prepared.code_blocks] == ["echo one\n  indented", "x = 1",
                                                       "let a = 1;"]
    assert "- [Copy code](slmdesk-copy:1)\n  ```py\n" in prepared.markdown
    assert ">\n> [Copy code](slmdesk-copy:2)\n> ```js" in prepared.markdown


def test_longer_fence_contains_shorter_ones_and_backtick_info_is_not_a_fence() -> None:
    prepared = prepare_markdown("````md\n```py\ninner\n```\n````\n```py` no fence\n")
    assert prepared.code_blocks == (CodeBlock("```py\ninner\n```", "md"),)
    assert prepared.markdown.count("[Copy code]") == 1


def test_unterminated_fence_runs_to_the_end() -> None:
    prepared = prepare_markdown("Streaming:\n```python\nprint(1)\n![not an image](x)")
    assert prepared.code_blocks == (
        CodeBlock("print(1)\n![not an image](x)", "python", closed=False),
    )
    assert prepared.markdown.endswith("```python\nprint(1)\n![not an image](x)")


def test_line_endings_are_normalised_in_code() -> None:
    prepared = prepare_markdown("```\r\na\r\nb\rc\r\n```\r\n")
    assert prepared.code_blocks == (CodeBlock("a\nb\nc", ""),)


def test_raw_html_is_not_touched_here() -> None:
    text = '<script>alert(1)</script> <img src="file:///etc/passwd">'
    assert prepare_markdown(text).markdown == text


def test_pathological_input_is_handled() -> None:
    # Each of these would be quadratic with naive bracket or backtick matching.
    n = 200_000
    for text in ("![" * n, "![a]" + "(" * n, "` `` ```" * (n // 8) + "![i](j)", "- " * n):
        prepared = prepare_markdown(text)
        assert len(prepared.markdown) >= len(text) - 1


# ---------------------------------------------------------------------------------------------
# MessageView


class _Opener:
    def __init__(self) -> None:
        self.urls: list[str] = []

    def __call__(self, url: QUrl) -> bool:
        self.urls.append(url.toString())
        return True


@pytest.fixture
def opener() -> _Opener:
    return _Opener()


@pytest.fixture
def view(qtbot: Any, opener: _Opener) -> Iterator[MessageView]:
    v = MessageView()
    v.open_url = opener  # never the real desktop in tests
    qtbot.addWidget(v)
    v.resize(480, 50)
    v.show()
    qtbot.waitExposed(v)
    yield v


def _blocks(document: QTextDocument) -> list[QTextBlock]:
    out = []
    block = document.begin()
    while block.isValid():
        out.append(block)
        block = block.next()
    return out


def _anchors(document: QTextDocument) -> list[tuple[str, str]]:
    """(text, href) of every link in the document."""
    found = []
    for block in _blocks(document):
        it = block.begin()
        while not it.atEnd():
            fragment = it.fragment()
            if fragment.charFormat().isAnchor():
                found.append((fragment.text(), fragment.charFormat().anchorHref()))
            it += 1
    return found


def _code_lines(document: QTextDocument) -> list[QTextBlock]:
    return [
        b for b in _blocks(document)
        if b.blockFormat().hasProperty(QTextFormat.Property.BlockCodeFence)
    ]


def test_markdown_structure_renders(view: MessageView) -> None:
    view.set_markdown(
        "# Title\n\nSome **bold** and *italic* text.\n\n"
        "- one\n- two\n\n1. first\n2. second\n\n"
        "| a | b |\n|---|---|\n| 1 | 2 |\n\n"
        "```python\ndef f():\n    return 1\n```\n"
    )
    document = view.document()
    blocks = _blocks(document)
    assert blocks[0].text() == "Title"
    assert blocks[0].blockFormat().headingLevel() == 1
    listed = [b.text() for b in blocks if b.textList() is not None]
    assert listed == ["one", "two", "first", "second"]
    tables = [f for f in document.rootFrame().childFrames() if isinstance(f, QTextTable)]
    assert len(tables) == 1
    assert (tables[0].rows(), tables[0].columns()) == (2, 2)
    assert tables[0].cellAt(1, 1).firstCursorPosition().block().text() == "2"

    formats = {}
    for block in blocks:
        it = block.begin()
        while not it.atEnd():
            formats[it.fragment().text()] = it.fragment().charFormat()
            it += 1
    assert formats["bold"].fontWeight() == QFont.Weight.Bold
    assert formats["italic"].fontItalic()

    code = _code_lines(document)
    assert [b.text() for b in code] == ["def f():", "    return 1"]
    fixed = QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont)
    for block in code:
        fmt = block.blockFormat()
        assert fmt.stringProperty(QTextFormat.Property.BlockCodeLanguage) == "python"
        assert not fmt.nonBreakableLines()  # long code lines wrap: there is no h-scroll bar
        assert block.begin().fragment().charFormat().fontFamilies() == fixed.families()
    # Pygments coloured the keywords.
    assert any(r.length == 3 for r in code[0].layout().formats())  # "def"
    assert view.code_blocks == (CodeBlock("def f():\n    return 1", "python"),)


def test_unknown_language_is_plain_fixed_font(view: MessageView) -> None:
    view.set_markdown("```no-such-language\nwhile true do\n```")
    (line,) = _code_lines(view.document())
    assert line.layout().formats() == []
    fixed = QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont)
    assert line.begin().fragment().charFormat().fontFamilies() == fixed.families()


def test_highlight_positions_count_utf16_units(view: MessageView) -> None:
    # The emoji is two UTF-16 units: the comment must start where Qt sees the "#".
    view.set_markdown("```python\nx = '🎉'  # note\n```")
    (line,) = _code_lines(view.document())
    starts = {r.start for r in line.layout().formats()}
    assert line.text().index("#") + 1 in starts


def test_dark_palette_uses_dark_style(view: MessageView) -> None:
    view.set_markdown("```python\nreturn 1\n```")
    light = {r.format.foreground().color().name() for r in _code_lines(view.document())[0]
             .layout().formats()}
    palette = view.palette()
    palette.setColor(QPalette.ColorRole.Window, QColor("#1e1e1e"))
    palette.setColor(QPalette.ColorRole.WindowText, QColor("#eeeeee"))
    view.setPalette(palette)
    dark = {r.format.foreground().color().name() for r in _code_lines(view.document())[0]
            .layout().formats()}
    assert light and dark and light != dark


def test_images_and_html_images_never_load(view: MessageView, tmp_path: Path) -> None:
    picture = tmp_path / "big.png"
    image = QImage(300, 300, QImage.Format.Format_RGB32)
    image.fill(QColor("red"))
    assert image.save(str(picture))
    url = QUrl.fromLocalFile(str(picture)).toString()
    view.set_markdown(
        f"![a red square]({url}) ![remote](https://x.test/p.png) ![ref][r]\n\n"
        f'<img src="{url}"> <img src="file:///etc/passwd">\n\n[r]: data:image/png;base64,AAAA\n'
    )
    view.grab()  # paint: anything an image would need is requested now
    assert view.resource_requests == []
    text = view.toPlainText()
    assert f"{IMAGE_MARK} a red square" in text
    assert f"{IMAGE_MARK} remote" in text
    assert f'<img src="{url}">' in text
    assert '<img src="file:///etc/passwd">' in text
    hrefs = [href for _, href in _anchors(view.document())]
    assert url in hrefs and "https://x.test/p.png" in hrefs
    assert view.height() < 300


def test_document_refuses_images_even_when_asked_directly(view: MessageView,
                                                          tmp_path: Path) -> None:
    picture = tmp_path / "big.png"
    image = QImage(300, 300, QImage.Format.Format_RGB32)
    image.fill(QColor("blue"))
    assert image.save(str(picture))
    html = f'<img src="{QUrl.fromLocalFile(str(picture)).toString()}">'
    # A plain QTextDocument reads local files on its own: that is what must not happen here.
    plain = QTextDocument()
    plain.setHtml(html)
    assert plain.size().height() >= 300
    view.document().setHtml(html)
    view.grab()
    assert view.document().size().height() < 300
    assert view.resource_requests  # asked, recorded and refused


def test_raw_html_shows_as_text(view: MessageView) -> None:
    view.set_markdown(
        "<script>alert(1)</script>\n\n<style>body { color: red }</style>\n\n"
        '<a href="file:///etc/passwd">passwd</a> <b>not bold</b> <iframe src="https://x.test">'
    )
    text = view.toPlainText()
    for piece in ("<script>alert(1)</script>", "<style>body { color: red }</style>",
                  '<a href="file:///etc/passwd">passwd</a>', "<b>not bold</b>",
                  '<iframe src="https://x.test">'):
        assert piece in text
    assert _anchors(view.document()) == []
    assert view.resource_requests == []


def test_copy_link_copies_the_exact_code(qtbot: Any, view: MessageView) -> None:
    code = "def f(x):\n\treturn x  # tab, trailing spaces  \n\n<b>&amp;</b>"
    view.set_markdown(f"First:\n```python\n{code}\n```\nSecond:\n```\nls\n```")
    assert ("Copy code", f"{COPY_SCHEME}:0") in _anchors(view.document())
    clipboard = QGuiApplication.clipboard()
    clipboard.setText("before")
    with qtbot.waitSignal(view.code_copied) as copied:
        view.anchorClicked.emit(QUrl(f"{COPY_SCHEME}:0"))
    assert copied.args == [0]
    assert clipboard.text() == code
    with qtbot.waitSignal(view.code_copied) as copied:
        view.anchorClicked.emit(QUrl(f"{COPY_SCHEME}:1"))
    assert copied.args == [1]
    assert clipboard.text() == "ls"


def test_copy_link_out_of_range_is_refused(qtbot: Any, view: MessageView) -> None:
    view.set_markdown("```\nx\n```")
    QGuiApplication.clipboard().setText("kept")
    for bad in (f"{COPY_SCHEME}:1", f"{COPY_SCHEME}:-1", f"{COPY_SCHEME}:x"):
        with qtbot.assertNotEmitted(view.code_copied), qtbot.waitSignal(view.link_refused):
            view.anchorClicked.emit(QUrl(bad))
    assert QGuiApplication.clipboard().text() == "kept"


def test_web_link_is_opened_only_when_clicked(qtbot: Any, view: MessageView,
                                              opener: _Opener) -> None:
    view.set_markdown("[docs](https://example.com/docs) and <https://example.org>")
    assert ("docs", "https://example.com/docs") in _anchors(view.document())
    view.grab()
    assert opener.urls == []
    with qtbot.waitSignal(view.link_requested) as requested:
        view.anchorClicked.emit(QUrl("https://example.com/docs"))
    assert requested.args[0] == QUrl("https://example.com/docs")
    assert opener.urls == ["https://example.com/docs"]
    with qtbot.waitSignal(view.link_requested):
        view.anchorClicked.emit(QUrl("mailto:someone@example.com"))
    assert opener.urls[-1] == "mailto:someone@example.com"


def test_default_opener_is_the_desktop_and_can_be_turned_off(qtbot: Any,
                                                              view: MessageView) -> None:
    assert MessageView.open_url is QDesktopServices.openUrl
    view.open_url = None  # the window decides on link_requested alone
    with qtbot.waitSignal(view.link_requested):
        view.anchorClicked.emit(QUrl("http://example.com"))


@pytest.mark.parametrize("href", [
    "file:///etc/passwd",
    "javascript:alert(1)",
    "data:text/html,<script>alert(1)</script>",
    "qrc:/icons/app.png",
    "notes.txt",
    "../secrets",
    "ftp://example.com/x",
    "http:no-host",
    "HTTPS:",
])
def test_other_links_are_refused(qtbot: Any, view: MessageView, opener: _Opener,
                                 href: str) -> None:
    view.set_markdown(f"[click]({href})")
    with qtbot.assertNotEmitted(view.link_requested), qtbot.waitSignal(view.link_refused) as r:
        view.anchorClicked.emit(QUrl(href))
    assert r.args[0] == QUrl(href)
    assert opener.urls == []
    assert view.resource_requests == []


def test_streaming_reply_with_an_open_fence(qtbot: Any, view: MessageView) -> None:
    reply = "Here you go:\n```python\nfor i in range(3):\n    print(i)\n```\nDone ![x](y)."
    for end in range(1, len(reply) + 1, 7):
        view.set_markdown(reply[:end])
    partial = reply[: reply.index("    print")]
    view.set_markdown(partial)
    assert view.code_blocks == (CodeBlock("for i in range(3):", "python", closed=False),)
    assert [b.text() for b in _code_lines(view.document())] == ["for i in range(3):"]
    with qtbot.waitSignal(view.code_copied):
        view.anchorClicked.emit(QUrl(f"{COPY_SCHEME}:0"))
    assert QGuiApplication.clipboard().text() == "for i in range(3):"
    view.set_markdown(reply)
    assert view.code_blocks == (CodeBlock("for i in range(3):\n    print(i)", "python"),)
    assert view.toPlainText().endswith(f"Done {IMAGE_MARK} x.")
    assert view.resource_requests == []


@pytest.mark.parametrize("hostile", [
    "lorem " * 170_000,  # a megabyte on one line
    "x" * 1_000_000,  # a megabyte without a single break opportunity
    "```\n" + "y" * 1_000_000 + "\n```",
])
def test_huge_single_line_renders(view: MessageView, hostile: str) -> None:
    view.set_markdown(hostile)
    assert len(view.toPlainText()) >= 1_000_000
    assert 0 < view.height() <= 16_777_215


def test_control_and_bidi_characters_are_kept(view: MessageView) -> None:
    text = "a\x00b \x1b[31mred\x1b[0m \u202eevil\u202c \x07 \ufeff end"
    view.set_markdown(text)
    shown = view.toPlainText()
    # CommonMark turns NUL into U+FFFD; everything else stays as it came.
    assert shown == text.replace("\x00", "\ufffd")
    view.set_plain_text(text)
    assert view.toPlainText() == text


def test_plain_text_is_not_interpreted(view: MessageView) -> None:
    typed = "# not a heading\n**not bold** <b>tag</b> ![i](file:///etc/passwd)\n```\nx\n```"
    view.set_plain_text(typed)
    assert view.toPlainText() == typed
    assert all(b.blockFormat().headingLevel() == 0 for b in _blocks(view.document()))
    assert _anchors(view.document()) == []
    assert _code_lines(view.document()) == []
    assert view.code_blocks == ()
    view.grab()
    assert view.resource_requests == []


def test_view_is_a_read_only_selectable_part_of_the_transcript(view: MessageView) -> None:
    from PySide6.QtCore import Qt
    from PySide6.QtWidgets import QFrame

    assert view.isReadOnly()
    flags = view.textInteractionFlags()
    assert flags & Qt.TextInteractionFlag.TextSelectableByMouse
    assert flags & Qt.TextInteractionFlag.TextSelectableByKeyboard
    assert view.verticalScrollBarPolicy() == Qt.ScrollBarPolicy.ScrollBarAlwaysOff
    assert view.horizontalScrollBarPolicy() == Qt.ScrollBarPolicy.ScrollBarAlwaysOff
    assert view.frameShape() == QFrame.Shape.NoFrame
    assert not view.viewport().autoFillBackground()
    assert not view.openLinks() and not view.openExternalLinks()


def test_height_follows_the_text_and_the_width(qtbot: Any) -> None:
    column = QWidget()
    layout = QVBoxLayout(column)
    layout.setContentsMargins(0, 0, 0, 0)
    view = MessageView()
    view.open_url = None
    layout.addWidget(view)
    layout.addStretch(1)
    qtbot.addWidget(column)
    column.resize(300, 2000)
    column.show()
    qtbot.waitExposed(column)

    view.set_markdown("One line.")
    short = view.height()
    assert short > 0
    sentence = "A sentence that is long enough to wrap at three hundred pixels. "
    with qtbot.waitSignal(view.height_changed) as grown:
        view.set_markdown("One line.\n\n" + sentence * 10)
    tall = view.height()
    assert grown.args == [tall]
    assert tall > short
    assert view.sizeHint().height() == tall
    assert view.verticalScrollBar().maximum() == 0  # everything visible: nothing to scroll

    with qtbot.waitSignal(view.height_changed):
        column.resize(900, 2000)
    assert view.width() == 900
    assert view.height() < tall

    view.set_markdown("One line.")
    assert view.height() == short
