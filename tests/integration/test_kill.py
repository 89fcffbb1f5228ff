"""kill -9 of a process that streams a reply into the database loses nothing committed."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from slmdesk.startup import open_core
from slmdesk.store.chats import ChatRepository
from slmdesk.store.db import integrity_check

pytestmark = pytest.mark.model

PROMPT = "Write a very long story about a lighthouse keeper and a storm, in many chapters."


def _streaming_text(db_path: Path) -> str | None:
    """The text of a reply still marked streaming, read without disturbing the writer."""
    if not db_path.exists():
        return None
    try:
        conn = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True, timeout=5)
        try:
            row = conn.execute(
                "SELECT content FROM messages WHERE status = 'streaming' AND role = 'assistant'"
            ).fetchone()
        finally:
            conn.close()
    except sqlite3.OperationalError:
        return None
    return None if row is None else str(row[0])


@pytest.mark.parametrize("min_chars", [1, 200])
def test_kill_9_while_streaming_keeps_the_partial_reply(
    model_path: Path, tmp_path: Path, min_chars: int
) -> None:
    home = tmp_path / "killhome"
    env = {k: v for k, v in os.environ.items() if k != "SLMDESK_HOME"}
    env["HF_HUB_OFFLINE"] = "1"
    proc = subprocess.Popen(
        [sys.executable, "-m", "slmdesk", "--home", str(home), "chat", "--threads", "1",
         "--max-tokens", "4000", "--temperature", "0.9", "--seed", "7", PROMPT],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env,
    )
    db_path = home / "data" / "slmdesk.db"
    seen = ""
    deadline = time.monotonic() + 120
    try:
        while time.monotonic() < deadline and proc.poll() is None:
            seen = _streaming_text(db_path) or ""
            if len(seen) >= min_chars:
                break
            time.sleep(0.02)
        assert proc.poll() is None, "the reply ended before it could be killed"
        assert len(seen) >= min_chars
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.kill()
        proc.communicate(timeout=30)
    assert proc.returncode == -signal.SIGKILL

    core = open_core(str(home), register_starter=False)
    try:
        assert integrity_check(core.db) == "ok"
        assert core.interrupted_replies == 1
        chats = ChatRepository(core.db)
        [conv] = chats.list_conversations()
        user, reply = chats.messages(conv.id)
        assert (user.role, user.content, user.status) == ("user", PROMPT, "complete")
        assert reply.role == "assistant"
        assert reply.status == "complete"
        assert reply.finish_reason == "interrupted"
        # Everything that was saved before the kill is still there.
        assert reply.content.startswith(seen)
        assert len(reply.content) >= min_chars
    finally:
        core.db.close()
