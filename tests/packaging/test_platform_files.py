"""The Windows and macOS packaging inputs, checked on any OS (they are only built elsewhere).

The icon containers are read back with Qt's own ICO and ICNS readers; the Windows version
resource goes through PyInstaller's real parser and serialiser; the Info.plist and the
entitlements through plistlib.
"""

from __future__ import annotations

import importlib.util
import plistlib
import struct
import sys
import types
from pathlib import Path
from typing import Any

import pytest
from PySide6.QtCore import QByteArray
from PySide6.QtGui import QImage, QImageReader

from slmdesk import APP_NAME, __version__

ROOT = Path(__file__).resolve().parents[2]
ICONS = ROOT / "resources" / "icons"


def _load(name: str) -> Any:
    """A module from packaging/ (a folder, not a package: it must not shadow `packaging`)."""
    spec = importlib.util.spec_from_file_location(name, ROOT / "packaging" / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _looks_like_the_icon(img: QImage) -> None:
    """Transparent corner, blue tile, light-blue middle line (upside down it would be white)."""
    s = img.width() / 256
    assert img.pixelColor(0, 0).alpha() == 0
    assert img.pixelColor(int(128 * s), int(30 * s)).name() == "#2f5d8a"
    assert img.pixelColor(int(100 * s), int(121 * s)).name() == "#4f9bd9"
    assert img.pixelColor(int(100 * s), int(121 * s)).alpha() == 255


def test_ico_holds_every_windows_size(qapp: Any) -> None:
    data = (ICONS / "slmdesk.ico").read_bytes()
    reserved, kind, count = struct.unpack_from("<HHH", data)
    assert (reserved, kind) == (0, 1)
    sizes = [data[6 + 16 * i] or 256 for i in range(count)]
    assert sizes == [16, 24, 32, 48, 64, 256]
    reader = QImageReader(str(ICONS / "slmdesk.ico"))
    assert reader.imageCount() == count
    for i, size in enumerate(sizes):
        assert reader.jumpToImage(i)
        img = reader.read()
        assert (img.width(), img.height()) == (size, size), reader.errorString()
        if size >= 32:  # smaller ones are too coarse for exact colours
            _looks_like_the_icon(img)


def test_icns_chunks_are_pngs_of_their_sizes(qapp: Any) -> None:
    make_icon = _load("make_icon")
    data = (ICONS / "slmdesk.icns").read_bytes()
    assert data[:4] == b"icns" and struct.unpack_from(">I", data, 4)[0] == len(data)
    found: dict[bytes, int] = {}
    pos = 8
    while pos < len(data):
        kind, length = data[pos:pos + 4], struct.unpack_from(">I", data, pos + 4)[0]
        img = QImage.fromData(QByteArray(data[pos + 8:pos + length]), "PNG")
        assert not img.isNull(), kind
        found[kind] = img.width()
        if img.width() >= 64:
            _looks_like_the_icon(img)
        pos += length
    assert pos == len(data)
    assert found == dict(make_icon.ICNS_CHUNKS)
    assert QImageReader(str(ICONS / "slmdesk.icns")).canRead()  # Qt's macOS icon reader


def test_windows_version_resource_parses_in_pyinstaller(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    appmeta = _load("appmeta")
    path = appmeta.write_windows_version_file(tmp_path / "version-info.txt")
    # PyInstaller's versioninfo module imports two Windows-only helpers that parsing and
    # serialising never call; stand-ins let its real code run here.
    import PyInstaller.compat

    monkeypatch.setitem(sys.modules, "pefile", types.ModuleType("pefile"))
    monkeypatch.setattr(PyInstaller.compat, "win32api", None, raising=False)
    monkeypatch.delitem(sys.modules, "PyInstaller.utils.win32.versioninfo", raising=False)
    from PyInstaller.utils.win32 import versioninfo

    info = versioninfo.load_version_info_from_text_file(str(path))
    major, minor, patch, build = appmeta.version_tuple(__version__)
    assert info.ffi.fileVersionMS == (major << 16) | minor
    assert info.ffi.productVersionLS == (patch << 16) | build
    strings = {s.name: s.val for s in info.kids[0].kids[0].kids}
    assert strings["ProductVersion"] == strings["FileVersion"] == __version__
    assert strings["OriginalFilename"] == f"{APP_NAME}.exe"
    assert strings["ProductName"] == APP_NAME
    raw = info.toRaw()  # what PyInstaller writes into slmdesk.exe
    assert "ProductVersion".encode("utf-16-le") in raw
    assert __version__.encode("utf-16-le") in raw


@pytest.mark.parametrize(("version", "numbers"), [
    ("0.1.0", (0, 1, 0, 0)), ("1.2", (1, 2, 0, 0)), ("2.0.1rc1", (2, 0, 1, 0)),
    ("0.3.0.dev4", (0, 3, 0, 0)), ("1.4.2+local.7", (1, 4, 2, 0)), ("1.2rc1", (1, 2, 0, 0)),
])
def test_version_numbers_for_windows(version: str, numbers: tuple[int, ...]) -> None:
    assert _load("appmeta").version_tuple(version) == numbers


def test_macos_info_plist_and_entitlements() -> None:
    appmeta = _load("appmeta")
    plist = plistlib.loads(plistlib.dumps(appmeta.info_plist()))
    assert plist["CFBundleName"] == APP_NAME
    assert plist["CFBundleIdentifier"] == f"org.{APP_NAME}.{APP_NAME}"
    assert plist["CFBundleShortVersionString"] == __version__
    assert plist["NSHighResolutionCapable"] is True
    assert plist["LSBackgroundOnly"] is False
    assert plist["LSApplicationCategoryType"].startswith("public.app-category.")
    entitlements = plistlib.loads((ROOT / "packaging" / "macos" / "entitlements.plist")
                                  .read_bytes())
    assert entitlements == {}  # nothing needs a hardened-runtime exception (see the file)
