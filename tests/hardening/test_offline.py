"""Offline and private: with every non-loopback connection blocked, the whole app flow (start,
chat, classify, export, restart) works and attempts no connection and no DNS lookup at all;
no library telemetry is on.

Attempts are recorded at two levels: Python's audit events (``socket.connect``,
``socket.getaddrinfo``... raised by the C socket module itself, whoever calls it) and
replacements of the socket functions that refuse non-loopback hosts the way a machine
without a network would. The GUI runs in this process (offscreen, real model); the command
line runs in subprocesses whose audit hook is installed by a ``sitecustomize`` module.
"""

from __future__ import annotations

import errno
import json
import os
import socket
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

NETWORK_EVENTS = frozenset({
    "socket.connect", "socket.getaddrinfo", "socket.gethostbyname", "socket.gethostbyaddr",
    "socket.getnameinfo", "socket.sendto", "socket.sendmsg", "http.client.connect",
    "urllib.Request", "ftplib.connect", "smtplib.connect",
})
_recording: list[list[tuple[str, str]]] = []


def _audit(event: str, args: tuple[Any, ...]) -> None:
    if _recording and event in NETWORK_EVENTS:
        _recording[-1].append((event, repr(args)[:200]))


# An audit hook cannot be removed; it records only while a test asks it to.
sys.addaudithook(_audit)


def _is_loopback(host: object) -> bool:
    return isinstance(host, str) and (
        host.startswith("127.") or host in ("::1", "localhost", "")
    )


@pytest.fixture
def no_network(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[tuple[str, str]]]:
    """Replaces conftest's guard: record every attempt, refuse the non-loopback ones.

    Refusing with ENETUNREACH / EAI_NONAME (not an assertion) is what an offline machine
    does, so code that handles a missing network is exercised as in real life.
    """
    attempts: list[tuple[str, str]] = []
    real_connect = socket.socket.connect
    real_connect_ex = socket.socket.connect_ex
    real_getaddrinfo = socket.getaddrinfo

    def refuse(what: str, target: object) -> None:
        attempts.append((what, repr(target)[:200]))
        raise OSError(errno.ENETUNREACH, f"network blocked by the test: {target!r}")

    def connect(self: socket.socket, address: Any) -> None:
        host = address[0] if isinstance(address, tuple) else address
        if self.family in (socket.AF_INET, socket.AF_INET6) and not _is_loopback(host):
            refuse("connect", address)
        real_connect(self, address)

    def connect_ex(self: socket.socket, address: Any) -> int:
        host = address[0] if isinstance(address, tuple) else address
        if self.family in (socket.AF_INET, socket.AF_INET6) and not _is_loopback(host):
            refuse("connect_ex", address)
        return real_connect_ex(self, address)

    def getaddrinfo(host: Any, *args: Any, **kwargs: Any) -> Any:
        if not _is_loopback(host):
            attempts.append(("getaddrinfo", repr(host)))
            raise socket.gaierror(socket.EAI_NONAME, "name resolution blocked by the test")
        return real_getaddrinfo(host, *args, **kwargs)

    monkeypatch.setattr(socket.socket, "connect", connect)
    monkeypatch.setattr(socket.socket, "connect_ex", connect_ex)
    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    _recording.append(attempts)
    try:
        yield attempts
    finally:
        _recording.remove(attempts)


def test_the_recorder_sees_what_it_must_refuse(no_network: list[tuple[str, str]]) -> None:
    """The instrument works: DNS and a connection attempt are both recorded and refused."""
    with pytest.raises(socket.gaierror):
        socket.getaddrinfo("huggingface.co", 443)
    with socket.socket() as s, pytest.raises(OSError):
        s.connect(("93.184.215.14", 443))
    with pytest.raises(OSError):
        socket.create_connection(("example.com", 80), timeout=1)
    kinds = [kind for kind, _ in no_network]
    assert kinds.count("getaddrinfo") == 2 and "connect" in kinds
    no_network.clear()


def test_telemetry_is_off_in_every_library() -> None:
    import slmdesk

    assert slmdesk.APP_NAME
    assert os.environ.get("HF_HUB_DISABLE_TELEMETRY") == "1"
    assert os.environ.get("DO_NOT_TRACK") == "1"
    from huggingface_hub import constants

    assert constants.HF_HUB_DISABLE_TELEMETRY


def _network_free(attempts: list[tuple[str, str]]) -> None:
    assert attempts == [], f"network attempts: {attempts}"


@pytest.mark.model
@pytest.mark.slow
def test_gui_flow_start_chat_classify_export_restart_touches_no_network(
    qtbot: Any, model_path: Path, tmp_path: Path, no_network: list[tuple[str, str]]
) -> None:
    from slmdesk.store.chats import ChatRepository
    from tests.qt.chat.test_window import App, send

    # Start.
    app = App(qtbot)
    win = app.win
    try:
        # Chat.
        win.chat_page.settings_panel.max_tokens.setValue(8)
        win.chat_page.settings_panel.flush()
        send(qtbot, win, "Say hello.")
        [conv] = ChatRepository(win.db).list_conversations()
        # Classify, in the Classify tab on the shared model.
        view = win.classify_view
        win.tabs.setCurrentWidget(view)
        [action] = [a for a in view.setup.starter_button.menu().actions()
                    if a.text() == "positive, negative"]
        action.trigger()
        view.text_input.texts.setPlainText("I love it.\nThis is awful.")
        with qtbot.waitSignal(view.run_finished, timeout=120_000) as done:
            view.run_button.click()
        assert done.args == [False] and view.results.rowCount() == 2
        # Export, both formats.
        for fmt, name in (("json", "chat.json"), ("md", "chat.md")):
            target = tmp_path / name
            win.chat.files.export_to(str(target), fmt)
            qtbot.waitUntil(lambda t=target: t.is_file() and t.stat().st_size > 0,
                            timeout=10_000)
        assert json.loads((tmp_path / "chat.json").read_text(encoding="utf-8"))
    finally:
        app.close()
    _network_free(no_network)

    # Restart: the conversation is there and the model answers again.
    again = App(qtbot)
    try:
        win = again.win
        assert [c.id for c in ChatRepository(win.db).list_conversations()] == [conv.id]
        win.chat.open_conversation(conv.id)
        send(qtbot, win, "And again.")
        assert len(ChatRepository(win.db).path(conv.id)) == 4
    finally:
        again.close()
    _network_free(no_network)
    assert "PySide6.QtNetwork" not in sys.modules  # nothing could open a Qt connection


SITECUSTOMIZE = textwrap.dedent('''
    """Installed by test_offline: record and refuse network attempts in this process."""
    import os, sys

    _LOG = os.environ["SLMDESK_AUDIT_LOG"]
    _EVENTS = {events!r}

    def _loopback(host):
        return isinstance(host, str) and (host.startswith("127.") or host in ("::1", "localhost"))

    def _hook(event, args):
        if event not in _EVENTS:
            return
        host = None
        if event == "socket.connect":
            address = args[1]
            host = address[0] if isinstance(address, tuple) else address
            if not isinstance(host, str) or "/" in host:
                return  # an AF_UNIX path, not the network
        elif event == "socket.getaddrinfo":
            host = args[0]
        with open(_LOG, "a", encoding="utf-8") as f:
            f.write(event + " " + repr(args)[:200] + "\\n")
        if not _loopback(host if isinstance(host, str) else str(host)):
            raise OSError(101, "network blocked by the test")

    sys.addaudithook(_hook)
''')


@pytest.fixture
def audited_cli(tmp_path: Path) -> Iterator[tuple[list[str], dict[str, str], Path]]:
    site = tmp_path / "site"
    site.mkdir()
    (site / "sitecustomize.py").write_text(
        SITECUSTOMIZE.format(events=sorted(NETWORK_EVENTS)), encoding="utf-8")
    log = tmp_path / "audit.log"
    env = {k: v for k, v in os.environ.items()
           if k not in ("HF_HUB_OFFLINE", "HF_HUB_DISABLE_TELEMETRY", "DO_NOT_TRACK")}
    env.update(PYTHONPATH=os.pathsep.join(filter(None, [str(site), env.get("PYTHONPATH")])),
               SLMDESK_AUDIT_LOG=str(log), PYTHONUTF8="1")
    home = tmp_path / "cli-home"
    yield [sys.executable, "-m", "slmdesk", "--home", str(home)], env, log


def _run(cmd: list[str], env: dict[str, str], *args: str, check: bool = True) -> str:
    proc = subprocess.run([*cmd, *args], env=env, capture_output=True, text=True,
                          encoding="utf-8", timeout=180, stdin=subprocess.DEVNULL)
    if check:
        assert proc.returncode == 0, f"{args}: {proc.returncode}\n{proc.stdout}\n{proc.stderr}"
    return proc.stdout


def test_the_sitecustomize_hook_records_and_refuses(
    audited_cli: tuple[list[str], dict[str, str], Path],
) -> None:
    _, env, log = audited_cli
    probe = ("import socket\ntry:\n    socket.getaddrinfo('huggingface.co', 443)\n"
             "except OSError as e:\n    print('refused', e)\n")
    out = subprocess.run([sys.executable, "-c", probe], env=env, capture_output=True,
                         text=True, timeout=60)
    assert "refused" in out.stdout, out.stderr
    assert "huggingface.co" in log.read_text(encoding="utf-8")


@pytest.mark.model
@pytest.mark.slow
def test_cli_flow_touches_no_network_even_without_offline_settings(
    audited_cli: tuple[list[str], dict[str, str], Path], tmp_path: Path, model_path: Path
) -> None:
    """HF_HUB_OFFLINE is *unset* here: offline must be the default, not a setting."""
    cmd, env, log = audited_cli
    _run(cmd, env, "doctor")
    _run(cmd, env, "models", "list", "--json")
    reply = json.loads(_run(cmd, env, "chat", "--threads", "1", "--max-tokens", "8",
                            "--json", "Say hello."))
    conversation = reply["conversation_id"]
    _run(cmd, env, "chat", "--threads", "1", "--max-tokens", "8", "--json",
         "--continue", conversation, "Again.")
    _run(cmd, env, "classify", "--threads", "1", "--labels", "positive,negative",
         "--calibration", "none", "--json", "I love it.")
    export = tmp_path / "export.json"
    export.write_text(_run(cmd, env, "chats", "export", conversation, "--format", "json"),
                      encoding="utf-8")
    _run(cmd, env, "chats", "import", str(export))
    _run(cmd, env, "chats", "search", "hello", "--json")
    assert len(json.loads(_run(cmd, env, "chats", "list", "--json"))) == 2
    attempts = log.read_text(encoding="utf-8") if log.exists() else ""
    assert attempts == "", f"network attempts:\n{attempts}"
