"""Shows one chat message as Markdown that can never load a resource or run markup.

Model output is untrusted text. `prepare_markdown` (plain Python) turns images into links
and puts a "Copy code" link above every fenced code block; `MessageView` renders the result
with Qt's Markdown importer with raw HTML off, refuses every resource request, lets only
http(s)/mailto links out, highlights code with Pygments and sizes itself to its text so a
column of views reads as one transcript.
"""

from __future__ import annotations

import functools
import math
import re
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pygments.lexer import Lexer
from pygments.lexers import get_lexer_by_name
from pygments.styles import get_style_by_name
from pygments.token import Name, Text, Token, _TokenType
from pygments.util import ClassNotFound
from PySide6.QtCore import QEvent, QSize, Qt, QUrl, Signal
from PySide6.QtGui import (
    QColor,
    QDesktopServices,
    QFont,
    QGuiApplication,
    QImage,
    QPalette,
    QResizeEvent,
    QSyntaxHighlighter,
    QTextBlockFormat,
    QTextCharFormat,
    QTextCursor,
    QTextDocument,
    QTextFormat,
    QTextOption,
)
from PySide6.QtWidgets import QFrame, QSizePolicy, QTextBrowser, QTextEdit, QWidget

COPY_SCHEME = "slmdesk-copy"
"""Links with this scheme (``slmdesk-copy:N``) copy code block N of the message."""

IMAGE_MARK = "🖼"
"""Shown in front of the alt text of an image that was turned into a link."""

OPENABLE_SCHEMES = frozenset({"http", "https", "mailto"})

MARKDOWN_FEATURES = (
    QTextDocument.MarkdownFeature.MarkdownDialectGitHub
    | QTextDocument.MarkdownFeature.MarkdownNoHTML
)

# Highlighting runs on the GUI thread on every streamed update; past this size a code block
# keeps its fixed font but is not lexed, so a huge block (or a lexer's slow path) cannot
# freeze the window.
MAX_HIGHLIGHT_CHARS = 50_000

# Tokens drawn in the palette's text colour even where a style gives them one (monokai's
# near-white), so plain code always contrasts with the background it is drawn on.
_PLAIN_TOKENS = frozenset({Token, Text, Text.Whitespace, Name, Name.Other})

# Longest word (run without whitespace) wrapped at word boundaries; see MessageView._replace.
LONG_WORD_CHARS = 4_000

# Qt refuses (with a warning) widget heights above QWIDGETSIZE_MAX.
_MAX_WIDGET_HEIGHT = 16_777_215


# ---------------------------------------------------------------------------------------------
# prepare_markdown: plain Python, no Qt


@dataclass(frozen=True)
class CodeBlock:
    """One fenced code block of a message, as the model wrote it."""

    text: str
    language: str
    """First word of the fence's info string; empty when there is none."""
    closed: bool = True
    """False while a streaming reply has not closed the fence yet."""


@dataclass(frozen=True)
class PreparedMarkdown:
    """The Markdown that is rendered, and the code blocks its copy links point at."""

    markdown: str
    code_blocks: tuple[CodeBlock, ...]


# Container prefix in front of a fence: blockquote markers, list markers, indentation.
_PREFIX = r"(?P<prefix>(?:[ \t]*(?:>|[-+*](?=[ \t])|\d{1,9}[.)](?=[ \t])))*[ \t]*)"
_FENCE_OPEN = re.compile(_PREFIX + r"(?P<fence>`{3,}|~{3,})(?P<info>.*)\Z")
_LIST_MARKER = re.compile(r"[-+*]|\d{1,9}[.)]")
_BLANK = re.compile(r"[ \t>]*\Z")
_REF_DEFINITION = re.compile(r"[ \t]{0,3}(?:>[ \t]?)*\[(?P<label>(?:[^\[\]\\]|\\.){1,999})\]:")
_PARAGRAPH_BREAK = re.compile(r"(\n(?:[ \t>]*\n)+)")
_LAST_SPACE = re.compile(r"\s(?=\S*\Z)")
_ASCII_PUNCTUATION = frozenset("!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~")


@dataclass
class _Fence:
    char: str
    length: int
    quotes: int  # blockquote markers in front of the fence
    indent: int  # columns of indentation after those markers
    language: str
    lines: list[str]


def prepare_markdown(text: str) -> PreparedMarkdown:
    """Make model output safe to render and collect its code blocks.

    Images become links (``![alt](url)`` → ``[🖼 alt](url)``) so no picture is ever fetched;
    a ``[Copy code](slmdesk-copy:N)`` line goes in front of fenced code block N; text inside
    code blocks and code spans is left as written. A fence that is still open at the end (a
    reply that is still streaming) runs to the end of the text. Raw HTML is not touched here:
    the view renders with `MarkdownNoHTML`, which shows it as text.
    """
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    labels = _reference_labels(lines)
    out: list[str] = []
    prose: list[str] = []
    blocks: list[CodeBlock] = []
    fence: _Fence | None = None

    def flush_prose() -> None:
        if prose:
            out.append(_rewrite_images("\n".join(prose), labels))
            prose.clear()

    for line in lines:
        if fence is not None:
            content = _strip_container(line, fence.quotes, fence.indent)
            if _closes(content, fence):
                blocks.append(CodeBlock("\n".join(fence.lines), fence.language))
                out.append(line)
                fence = None
            else:
                fence.lines.append(content)
                out.append(line)
            continue
        opened = _open_fence(line)
        if opened is None:
            prose.append(line)
            continue
        fence, prefix, rest = opened
        last = prose[-1] if prose else (out[-1].rsplit("\n", 1)[-1] if out else "")
        previous_blank = _BLANK.match(last) is not None
        flush_prose()
        link = f"[Copy code]({COPY_SCHEME}:{len(blocks)})"
        if _LIST_MARKER.search(prefix):
            # "- ```py": the link takes the list item's first line; the fence follows it,
            # indented to the item's content column so it stays inside the item.
            out.append(prefix + link)
            out.append(_continuation(prefix) + rest)
        else:
            if not previous_blank:
                # A blank line first, or the link would join the preceding paragraph.
                out.append(_continuation(prefix).rstrip())
            out.append(prefix + link)
            out.append(line)
    if fence is not None:
        if fence.lines and not fence.lines[-1]:
            fence.lines.pop()  # "…code\n" mid-stream: the newline ends a line, adds none
        blocks.append(CodeBlock("\n".join(fence.lines), fence.language, closed=False))
    flush_prose()
    return PreparedMarkdown("\n".join(out), tuple(blocks))


def _open_fence(line: str) -> tuple[_Fence, str, str] | None:
    m = _FENCE_OPEN.match(line)
    if m is None:
        return None
    fence, info = m["fence"], m["info"]
    if fence[0] == "`" and "`" in info:
        return None  # "```x```" on one line is a code span, not a fence (CommonMark 4.5)
    prefix = m["prefix"]
    quotes, indent = _measure_prefix(prefix)
    words = info.split()
    language = words[0] if words else ""
    state = _Fence(fence[0], len(fence), quotes, indent, language, [])
    return state, prefix, line[len(prefix):]


def _measure_prefix(prefix: str) -> tuple[int, int]:
    """Blockquote markers in `prefix`, and the width of what follows the last one."""
    quotes = prefix.count(">")
    tail = prefix.rsplit(">", 1)[-1] if quotes else prefix
    if quotes and tail[:1] in (" ", "\t"):
        tail = tail[1:]  # the optional space after ">" belongs to the marker
    return quotes, len(_LIST_MARKER.sub(lambda m: " " * len(m[0]), tail).expandtabs(4))


def _continuation(prefix: str) -> str:
    """The prefix a following line of the same container needs (list markers → spaces)."""
    return _LIST_MARKER.sub(lambda m: " " * len(m[0]), prefix)


def _strip_container(line: str, quotes: int, indent: int) -> str:
    for _ in range(quotes):
        stripped = line.lstrip(" \t")
        if not stripped.startswith(">"):
            break
        line = stripped[1:]
        if line[:1] in (" ", "\t"):
            line = line[1:]
    spaces = len(line) - len(line.lstrip(" "))
    return line[min(spaces, indent):]


def _closes(content: str, fence: _Fence) -> bool:
    body = content.lstrip(" ")
    if len(content) - len(body) > 3:
        return False
    body = body.rstrip(" \t")
    return (
        len(body) >= fence.length
        and body.count(fence.char) == len(body)
    )


def _normalize_label(label: str) -> str:
    return " ".join(label.split()).casefold()


def _reference_labels(lines: list[str]) -> set[str]:
    """Labels of link reference definitions, so `![alt]` / `![alt][]` can be recognised."""
    labels = set()
    for line in lines:
        if "]:" in line:
            m = _REF_DEFINITION.match(line)
            if m:
                labels.add(_normalize_label(m["label"]))
    return labels


def _rewrite_images(text: str, labels: set[str]) -> str:
    # Code spans, brackets and parentheses never reach across a blank line.
    parts = _PARAGRAPH_BREAK.split(text)
    return "".join(
        part if i % 2 else _rewrite_paragraph(part, labels) for i, part in enumerate(parts)
    )


def _backtick_runs(s: str) -> dict[int, list[int]]:
    runs: dict[int, list[int]] = {}
    for m in re.finditer(r"`+", s):
        runs.setdefault(len(m[0]), []).append(m.start())
    return runs


def _rewrite_paragraph(s: str, labels: set[str]) -> str:
    """Turn the images of one paragraph into links, skipping code spans and escapes.

    Linear time: brackets and parentheses are matched with stacks, and each code span
    opener finds its closer through per-length lists of backtick runs, so a megabyte of
    `![` or backticks cannot stall the GUI thread.
    """
    if "![" not in s:
        return s
    brackets, parens, images = _scan_paragraph(s)
    edits = _image_edits(s, images, brackets, parens, labels)
    return _apply_edits(s, edits) if edits else s


_Pairs = dict[int, int]


def _scan_paragraph(s: str) -> tuple[_Pairs, _Pairs, list[tuple[int, int]]]:
    """Match the brackets and parentheses of ``s`` outside code spans and escapes; return
    them ("[" position → its "]", "(" → its ")") and the images ("!" position, the
    enclosing link's "[" or -1)."""
    runs = _backtick_runs(s) if "`" in s else {}
    run_cursor: dict[int, int] = {}
    brackets: dict[int, int] = {}  # "[" position → its "]"
    parens: dict[int, int] = {}  # "(" position → its ")"
    images: list[tuple[int, int]] = []  # ("!" position, enclosing "[" or -1)
    open_brackets: list[int] = []
    open_links: list[int] = []
    open_parens: list[int] = []
    i, n = 0, len(s)
    while i < n:
        c = s[i]
        if c == "\\" and i + 1 < n and s[i + 1] in _ASCII_PUNCTUATION:
            i += 2
        elif c == "`":
            j = i
            while j < n and s[j] == "`":
                j += 1
            length = j - i
            starts = runs[length] if length in runs else []
            k = run_cursor.get(length, 0)
            while k < len(starts) and starts[k] < j:
                k += 1
            run_cursor[length] = k
            if k < len(starts):
                i = starts[k] + length  # skip the whole code span
                run_cursor[length] = k + 1
            else:
                i = j  # no closer: the backticks are literal text
        elif c == "!" and i + 1 < n and s[i + 1] == "[":
            images.append((i, open_links[-1] if open_links else -1))
            open_brackets.append(i + 1)
            i += 2
        elif c == "[":
            open_brackets.append(i)
            open_links.append(i)
            i += 1
        elif c == "]":
            if open_brackets:
                start = open_brackets.pop()
                if open_links and open_links[-1] == start:
                    open_links.pop()
                brackets[start] = i
            i += 1
        elif c == "(":
            open_parens.append(i)
            i += 1
        elif c == ")":
            if open_parens:
                parens[open_parens.pop()] = i
            i += 1
        else:
            i += 1
    return brackets, parens, images


def _image_edits(
    s: str, images: list[tuple[int, int]], brackets: _Pairs, parens: _Pairs, labels: set[str]
) -> list[tuple[int, int, str]]:
    """The (start, end, replacement) edits that turn each image into a link or its text."""
    edits: list[tuple[int, int, str]] = []
    for bang, enclosing in images:
        close = brackets.get(bang + 1)
        if close is None:
            continue
        alt = s[bang + 2 : close]
        end = _image_end(s, close, alt, brackets, parens, labels)
        if end is None:
            continue
        shown = alt if alt.strip() else "image"
        if enclosing >= 0 and _is_link(s, enclosing, brackets, parens):
            # An image inside a link's text (a badge): links cannot nest, so keep only its
            # alt text and let the outer link stay a link.
            edits.append((bang, end, f"{IMAGE_MARK} {shown}"))
        elif end == close + 1 or s[close + 1 : close + 3] == "[]":
            # Shortcut or collapsed reference: the label must stay the original alt text.
            edits.append((bang, close + 1, f"[{IMAGE_MARK} {shown}][{alt}]"))
            if end != close + 1:
                edits.append((close + 1, end, ""))
        else:
            edits.append((bang, bang + 2, f"[{IMAGE_MARK} " + ("" if alt.strip() else "image")))
    return edits


def _apply_edits(s: str, edits: list[tuple[int, int, str]]) -> str:
    pieces: list[str] = []
    position = 0
    for start, end, replacement in sorted(edits):
        if start < position:
            continue  # inside an image already replaced as a whole
        pieces.append(s[position:start])
        pieces.append(replacement)
        position = end
    pieces.append(s[position:])
    return "".join(pieces)


def _image_end(
    s: str,
    close: int,
    alt: str,
    brackets: dict[int, int],
    parens: dict[int, int],
    labels: set[str],
) -> int | None:
    """End of the image whose alt text ends at `close`, or None when it is not an image."""
    after = close + 1
    if after < len(s) and s[after] == "(" and after in parens:
        return parens[after] + 1
    if after < len(s) and s[after] == "[" and after in brackets:
        label = s[after + 1 : brackets[after]]
        if not label.strip():
            label = alt
        return brackets[after] + 1 if _normalize_label(label) in labels else None
    return after if alt.strip() and _normalize_label(alt) in labels else None


def _is_link(s: str, start: int, brackets: dict[int, int], parens: dict[int, int]) -> bool:
    close = brackets.get(start)
    if close is None or close + 1 >= len(s):
        return False
    return (s[close + 1] == "(" and close + 1 in parens) or (
        s[close + 1] == "[" and close + 1 in brackets
    )


# ---------------------------------------------------------------------------------------------
# Qt side


@functools.lru_cache(maxsize=1)
def _blocked_image() -> QImage:
    image = QImage(1, 1, QImage.Format.Format_ARGB32)
    image.fill(0)  # transparent
    return image


def _refusal(type: int) -> Any:
    """What a refused resource request gets back.

    Images get a blank 1×1 picture rather than nothing: given nothing, Qt's image handler
    loads the image's name as a local file by itself (QTextImageHandler, Qt 6), past every
    loadResource override.
    """
    return _blocked_image() if type == QTextDocument.ResourceType.ImageResource.value else None


class _SafeDocument(QTextDocument):
    """A document that resolves no resource at all.

    QTextDocument.loadResource falls back to reading local files and decoding data: URLs
    when its parent returns nothing, so refusing only in the QTextBrowser is not enough.
    """

    def __init__(self, record: Callable[[int, QUrl | str], None], parent: QWidget) -> None:
        super().__init__(parent)
        self._record = record

    def loadResource(self, type: int, name: QUrl | str) -> Any:
        self._record(type, name)
        return _refusal(type)


@functools.lru_cache(maxsize=128)
def _lexer_for(language: str) -> Lexer | None:
    if not language or len(language) > 40:
        return None
    try:
        # Keep the text byte for byte, so token offsets line up with the document's lines.
        return get_lexer_by_name(language.lower(), stripnl=False, stripall=False, ensurenl=False)
    except ClassNotFound:
        return None


_Spans = list[list[tuple[int, int, _TokenType]]]


def _lex(lexer: Lexer, code: str) -> _Spans:
    """Token spans for each line of `code`: (start, length, token type), code points."""
    lines: _Spans = [[]]
    column = 0
    for _, ttype, value in lexer.get_tokens_unprocessed(code):
        pieces = value.split("\n")
        for k, piece in enumerate(pieces):
            if k:
                lines.append([])
                column = 0
            if piece:
                lines[-1].append((column, len(piece), ttype))
                column += len(piece)
    return lines


def _utf16_offsets(text: str) -> list[int] | None:
    """Qt counts UTF-16 units; None when code points and units agree (no astral chars)."""
    if text.isascii() or max(text) < "\U00010000":
        return None
    offsets = [0]
    for ch in text:
        offsets.append(offsets[-1] + (2 if ch >= "\U00010000" else 1))
    return offsets


class CodeHighlighter(QSyntaxHighlighter):
    """Colours the fenced code blocks of a Markdown document with Pygments.

    Qt's Markdown importer marks code blocks with the `BlockCodeFence` and
    `BlockCodeLanguage` block properties and already gives them the system fixed font; each
    block is one line, so a whole code block is lexed at once (multi-line strings and
    comments come out right) and cached, which keeps streaming cheap: only the block that
    grows is lexed again.

    Few Qt calls per block, on purpose: the PySide6 6.12.0 abi3 wheel on CPython 3.11 drops
    a reference to None for every Qt call that returns nothing or an invalid QVariant (such
    as `QTextFormat.property()` of an absent property), and the interpreter aborts when the
    count reaches zero ("Fatal Python error: none_dealloc"; 6.11.3 is not affected). So
    properties are read with hasProperty/stringProperty, block states are set only when
    they change, and neighbouring tokens that look alike get one setFormat call.
    """

    def __init__(self, document: QTextDocument, *, dark: bool = False) -> None:
        super().__init__(document)
        self._dark = dark
        self._formats: dict[_TokenType, QTextCharFormat | None] = {}
        self._by_look: dict[tuple[str | None, bool, bool, bool], QTextCharFormat] = {}
        self._lexed: OrderedDict[tuple[str, str], _Spans] = OrderedDict()
        self._group_start = -1
        self._group_spans: _Spans | None = None

    @property
    def dark(self) -> bool:
        return self._dark

    def set_dark(self, dark: bool) -> None:
        if dark != self._dark:
            self._dark = dark
            self._formats.clear()
            self._by_look.clear()
            self.rehighlight()

    def invalidate(self) -> None:
        """Forget which code block was lexed last (the document was replaced)."""
        self._group_start, self._group_spans = -1, None

    def highlightBlock(self, text: str) -> None:
        block = self.currentBlock()
        block_format = block.blockFormat()
        if not block_format.hasProperty(QTextFormat.Property.BlockCodeFence):
            if self.currentBlockState() != -1:
                self.setCurrentBlockState(-1)
            return
        language = block_format.stringProperty(QTextFormat.Property.BlockCodeLanguage)
        # Block state = line number inside the code block, so a line finds its block's start
        # without walking back through the document.
        line = 0
        previous_state = self.previousBlockState()
        if previous_state >= 0:
            previous = block.previous().blockFormat()
            if (
                previous.hasProperty(QTextFormat.Property.BlockCodeFence)
                and previous.stringProperty(QTextFormat.Property.BlockCodeLanguage) == language
            ):
                line = previous_state + 1
        if self.currentBlockState() != line:
            self.setCurrentBlockState(line)
        spans = self._spans_for(block.blockNumber() - line, language)
        if spans is None or line >= len(spans):
            return
        offsets = _utf16_offsets(text)
        for start, end, fmt in self._runs(spans[line], len(text)):
            if offsets is not None:
                start, end = offsets[start], offsets[end]
            self.setFormat(start, end - start, fmt)

    def _runs(
        self, spans: list[tuple[int, int, _TokenType]], limit: int
    ) -> list[tuple[int, int, QTextCharFormat]]:
        """Spans of one line as (start, end, format), neighbours with one format merged."""
        runs: list[tuple[int, int, QTextCharFormat]] = []
        for start, length, ttype in spans:
            fmt = self._format_for(ttype)
            end = start + length
            if fmt is None or end > limit:
                continue
            if runs and runs[-1][2] is fmt and runs[-1][1] == start:
                runs[-1] = (runs[-1][0], end, fmt)
            else:
                runs.append((start, end, fmt))
        return runs

    def _spans_for(self, start_number: int, language: str) -> _Spans | None:
        if start_number == self._group_start:
            return self._group_spans
        self._group_start, self._group_spans = start_number, None
        lexer = _lexer_for(language)
        if lexer is None:
            return None
        lines: list[str] = []
        size = 0
        block = self.document().findBlockByNumber(start_number)
        while block.isValid():
            block_format = block.blockFormat()
            if not block_format.hasProperty(QTextFormat.Property.BlockCodeFence) or (
                block_format.stringProperty(QTextFormat.Property.BlockCodeLanguage) != language
            ):
                break
            lines.append(block.text())
            size += len(lines[-1]) + 1
            if size > MAX_HIGHLIGHT_CHARS:
                return None
            block = block.next()
        key = (language, "\n".join(lines))
        spans = self._lexed.get(key)
        if spans is None:
            spans = _lex(lexer, key[1])
            self._lexed[key] = spans
            if len(self._lexed) > 32:
                self._lexed.popitem(last=False)
        else:
            self._lexed.move_to_end(key)
        self._group_spans = spans
        return spans

    def _format_for(self, ttype: _TokenType) -> QTextCharFormat | None:
        if ttype in self._formats:
            return self._formats[ttype]
        # "default" is drawn for white backgrounds, "monokai" for dark ones; plain text keeps
        # the palette's colour in both, so ordinary code follows the theme.
        style = get_style_by_name("monokai" if self._dark else "default")
        spec = style.style_for_token(ttype)
        color = spec["color"] if ttype not in _PLAIN_TOKENS else None
        look = (color, bool(spec["bold"]), bool(spec["italic"]), bool(spec["underline"]))
        fmt: QTextCharFormat | None = None
        if any(look):
            # One format object per look, so _runs can merge neighbours by identity.
            fmt = self._by_look.get(look)
            if fmt is None:
                fmt = QTextCharFormat()
                if color:
                    fmt.setForeground(QColor("#" + color))
                if look[1]:
                    fmt.setFontWeight(QFont.Weight.Bold)
                if look[2]:
                    fmt.setFontItalic(True)
                if look[3]:
                    fmt.setFontUnderline(True)
                self._by_look[look] = fmt
        self._formats[ttype] = fmt
        return fmt


def _copy_index(url: QUrl) -> int | None:
    path = url.path()
    if path.isascii() and path.isdigit() and len(path) <= 6:
        return int(path)
    return None


def _is_dark(palette: QPalette) -> bool:
    return palette.color(QPalette.ColorRole.Window).lightness() < 128


class MessageView(QTextBrowser):
    """One chat message: Markdown for replies, plain text for what the person typed.

    Nothing is ever loaded: every resource request is refused and recorded in
    `resource_requests`. Clicking a ``slmdesk-copy:N`` link copies code block N; an
    http/https/mailto link emits `link_requested` and is then passed to `open_url`
    (QDesktopServices.openUrl; set it to another callable, or None to let the window decide
    on `link_requested` alone); any other link emits `link_refused` and nothing else happens.
    The view has no scroll bars: its height follows its text, for the current width.
    """

    code_copied = Signal(int)
    link_requested = Signal(QUrl)
    link_refused = Signal(QUrl)
    height_changed = Signal(int)

    open_url: Callable[[QUrl], object] | None = QDesktopServices.openUrl

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.resource_requests: list[str] = []
        self._code_blocks: tuple[CodeBlock, ...] = ()
        self._source: tuple[str, str] | None = None
        self._tail_word = 0  # characters of the last word shown, for append_streamed
        self._height = 0
        self._replacing = False

        document = _SafeDocument(self._record_request, self)
        document.setUndoRedoEnabled(False)
        self.setDocument(document)
        self._highlighter = CodeHighlighter(document, dark=_is_dark(self.palette()))

        self.setOpenLinks(False)
        self.setOpenExternalLinks(False)
        self.setReadOnly(True)
        self.setUndoRedoEnabled(False)
        self.setAcceptDrops(False)
        self.setTextInteractionFlags(
            Qt.TextInteractionFlag.TextSelectableByMouse
            | Qt.TextInteractionFlag.TextSelectableByKeyboard
            | Qt.TextInteractionFlag.LinksAccessibleByMouse
            | Qt.TextInteractionFlag.LinksAccessibleByKeyboard
        )
        self.setVerticalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.setLineWrapMode(QTextEdit.LineWrapMode.WidgetWidth)
        # Without "anywhere", one long word (a URL, a hash, a megabyte without spaces) would
        # be cut off: there is no horizontal scroll bar to reach it.
        self.setWordWrapMode(QTextOption.WrapMode.WrapAtWordBoundaryOrAnywhere)
        self.setFrameShape(QFrame.Shape.NoFrame)
        # Transparent: the transcript's background (and palette changes) show through.
        self.viewport().setAutoFillBackground(False)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)

        self.anchorClicked.connect(self._on_anchor_clicked)
        document.documentLayout().documentSizeChanged.connect(self._update_height)
        self._update_height()

    # -- content ---------------------------------------------------------------------------

    @property
    def code_blocks(self) -> tuple[CodeBlock, ...]:
        return self._code_blocks

    def set_markdown(self, text: str) -> None:
        """Show `text` as Markdown (the whole of it: ~1 ms per KB)."""
        if self._source == ("markdown", text):
            return
        prepared = prepare_markdown(text)
        self._replace(text, lambda: self._load_markdown(prepared.markdown))
        self._code_blocks = prepared.code_blocks
        self._source = ("markdown", text)

    def append_streamed(self, text: str, *, new_line: bool) -> bool:
        """Append `text` (no line break in it) to the end as it is, without Markdown: the
        cheap step between two renderings of a growing reply. ``new_line``: the text shown
        so far ended a line, so `text` starts a block of its own (a code block's next line
        stays in the code block). False when the text cannot go in cheaply (it makes a word
        too long for word-boundary wrapping): render the whole reply instead."""
        space = _LAST_SPACE.search(text)
        tail = len(text) - space.end() if space else self._tail_word + len(text)
        if tail > LONG_WORD_CHARS and (
                self.wordWrapMode() != QTextOption.WrapMode.WrapAnywhere):
            return False
        self._tail_word = tail
        if self._source is not None:
            self._source = ("streamed", self._source[1])  # any later set_* redraws
        cursor = QTextCursor(self.document())
        cursor.movePosition(QTextCursor.MoveOperation.End)
        if new_line:
            open_code = bool(self._code_blocks) and not self._code_blocks[-1].closed
            if open_code and cursor.blockFormat().hasProperty(
                    QTextFormat.Property.BlockCodeFence):
                cursor.insertBlock()  # same block and character format: more code
            else:
                cursor.insertBlock(QTextBlockFormat(), QTextCharFormat())
        cursor.insertText(text)
        return True

    def set_plain_text(self, text: str) -> None:
        """Show `text` exactly as typed: no Markdown, no HTML."""
        if self._source == ("plain", text):
            return
        self._replace(text, lambda: self.document().setPlainText(text))
        self._code_blocks = ()
        self._source = ("plain", text)

    def _replace(self, text: str, load: Callable[[], None]) -> None:
        # Qt's word-boundary-or-anywhere wrapping is quadratic in the length of one word
        # (a megabyte without spaces takes tens of seconds); such text wraps anywhere.
        words = text.split()
        longest = max(map(len, words), default=0)
        self._tail_word = len(words[-1]) if words and not text[-1].isspace() else 0
        mode = (
            QTextOption.WrapMode.WrapAnywhere
            if longest > LONG_WORD_CHARS
            else QTextOption.WrapMode.WrapAtWordBoundaryOrAnywhere
        )
        if self.wordWrapMode() != mode:
            # Empty first: switching the mode lays out the current text again, and the old
            # text may be the megabyte-long word that made the switch necessary.
            self.document().clear()
            self.setWordWrapMode(mode)
        self._replacing = True
        self._highlighter.invalidate()
        try:
            load()
        finally:
            self._replacing = False
        self._update_height()

    def _load_markdown(self, markdown: str) -> None:
        document = self.document()
        # All in one edit block: the layout and the highlighter then see a single change
        # (they skip the import's intermediate states), which makes an update ~25% cheaper.
        cursor = QTextCursor(document)
        cursor.beginEditBlock()
        try:
            document.setMarkdown(markdown, MARKDOWN_FEATURES)
            # Code blocks come in with nonBreakableLines, which would push long lines past
            # the right edge of a view that has no horizontal scroll bar: let them wrap.
            unbreak = QTextBlockFormat()
            unbreak.setNonBreakableLines(False)
            start = end = -1
            block = document.begin()
            while True:
                valid = block.isValid()
                if valid and block.blockFormat().nonBreakableLines():
                    if start < 0:
                        start = block.position()
                    end = block.position() + block.length() - 1
                elif start >= 0:
                    cursor.setPosition(start)
                    cursor.setPosition(end, QTextCursor.MoveMode.KeepAnchor)
                    cursor.mergeBlockFormat(unbreak)
                    start = -1
                if not valid:
                    break
                block = block.next()
        finally:
            cursor.endEditBlock()

    # -- safety ----------------------------------------------------------------------------

    def loadResource(self, type: int, name: QUrl | str) -> Any:
        self._record_request(type, name)
        return _refusal(type)

    def _record_request(self, type: int, name: QUrl | str) -> None:
        self.resource_requests.append(name.toString() if isinstance(name, QUrl) else str(name))

    def _on_anchor_clicked(self, url: QUrl) -> None:
        scheme = url.scheme().lower()
        if scheme == COPY_SCHEME:
            index = _copy_index(url)
            if index is not None and index < len(self._code_blocks):
                QGuiApplication.clipboard().setText(self._code_blocks[index].text)
                self.code_copied.emit(index)
                return
        elif scheme in OPENABLE_SCHEMES and url.isValid() and (scheme == "mailto" or url.host()):
            self.link_requested.emit(url)
            opener = self.open_url
            if opener is not None:
                opener(url)
            return
        self.link_refused.emit(url)

    # -- size ------------------------------------------------------------------------------

    def sizeHint(self) -> QSize:
        return QSize(super().sizeHint().width(), self._height)

    def minimumSizeHint(self) -> QSize:
        return QSize(super().minimumSizeHint().width(), self._height)

    def resizeEvent(self, event: QResizeEvent) -> None:
        super().resizeEvent(event)  # lays the document out at the new width
        self._update_height()

    def changeEvent(self, event: QEvent) -> None:
        super().changeEvent(event)
        if event.type() == QEvent.Type.PaletteChange:
            self._highlighter.set_dark(_is_dark(self.palette()))

    def _update_height(self, *_: object) -> None:
        if self._replacing:
            return  # once, after the whole document is in
        margins = self.contentsMargins()
        height = math.ceil(self.document().size().height()) + margins.top() + margins.bottom()
        height = min(height, _MAX_WIDGET_HEIGHT)
        if height != self._height:
            self._height = height
            self.setFixedHeight(height)
            self.height_changed.emit(height)
