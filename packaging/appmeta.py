"""The packaged app's identity per platform, from slmdesk's own name and version.

Used by slmdesk.spec (the Windows version resource, the macOS Info.plist) and by
tests/packaging, so the files the app carries and the running app cannot disagree.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from slmdesk import APP_NAME, __version__

BUNDLE_ID = f"org.{APP_NAME}.{APP_NAME}"
DESCRIPTION = "Small language models on the desktop"
COPYRIGHT = "Copyright the slmdesk contributors; Apache-2.0"
MACOS_MINIMUM = "11.0"  # Apple silicon's first release; llama.cpp's Metal backend needs 10.15+


def version_tuple(version: str = __version__) -> tuple[int, int, int, int]:
    """``"0.1.0"`` → ``(0, 1, 0, 0)``: the four numbers a Windows version resource holds.

    A suffix such as ``rc1`` or ``.dev3`` is dropped: the resource has numbers only (the full
    text still goes into its ProductVersion string).
    """
    release = re.match(r"\d+(?:\.\d+)*", version)
    numbers = [int(n) for n in release.group().split(".")[:3]] if release else []
    numbers += [0] * (4 - len(numbers))
    return (numbers[0], numbers[1], numbers[2], numbers[3])


def windows_version_text(version: str = __version__) -> str:
    """slmdesk.exe's version resource in PyInstaller's text form (what ``EXE(version=)`` reads).

    Written here rather than built from PyInstaller's classes: those import ``pefile``, which
    PyInstaller installs on Windows only, and this text is what its loader evaluates anyway.
    """
    numbers = version_tuple(version)
    strings = {
        "CompanyName": APP_NAME,
        "FileDescription": f"{APP_NAME}: {DESCRIPTION.lower()}",
        "FileVersion": version,
        "InternalName": APP_NAME,
        "LegalCopyright": COPYRIGHT,
        "OriginalFilename": f"{APP_NAME}.exe",
        "ProductName": APP_NAME,
        "ProductVersion": version,
    }
    table = ",\n          ".join(f"StringStruct({k!r}, {v!r})" for k, v in strings.items())
    # 040904B0: U.S. English (0x0409) in Unicode (1200), the table Explorer reads.
    return f"""VSVersionInfo(
  ffi=FixedFileInfo(
    filevers={numbers!r},
    prodvers={numbers!r},
    mask=0x3f,
    flags=0x0,
    OS=0x40004,
    fileType=0x1,
    subtype=0x0,
    date=(0, 0)
  ),
  kids=[
    StringFileInfo([
      StringTable(
        '040904B0',
        [{table}])
    ]),
    VarFileInfo([VarStruct('Translation', [0x0409, 1200])])
  ]
)
"""


def write_windows_version_file(path: Path, version: str = __version__) -> Path:
    """Write the version resource text to ``path`` and return it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(windows_version_text(version), encoding="utf-8")
    return path


def info_plist(version: str = __version__) -> dict[str, Any]:
    """The Info.plist entries slmdesk.app sets on top of PyInstaller's defaults."""
    return {
        "CFBundleName": APP_NAME,
        "CFBundleDisplayName": APP_NAME,
        "CFBundleIdentifier": BUNDLE_ID,
        "CFBundleShortVersionString": version,
        "CFBundleVersion": version,
        "LSMinimumSystemVersion": MACOS_MINIMUM,
        "LSApplicationCategoryType": "public.app-category.productivity",
        "NSHighResolutionCapable": True,
        # A window app with a Dock icon and menu bar (PyInstaller makes console builds
        # background-only).
        "LSBackgroundOnly": False,
        "NSHumanReadableCopyright": COPYRIGHT,
    }
