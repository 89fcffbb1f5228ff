"""The `slmdesk` command line end to end: every command runs in a real subprocess.

Each subprocess gets an environment without ``SLMDESK_HOME`` (so ``--home`` is what roots
every directory), with ``HF_HUB_OFFLINE=1``, and with HOME, the XDG directories and TMPDIR
pointed at a per-test decoy folder that must stay free of slmdesk files: a command that
ignored ``--home`` would write there instead of into the user's real directories.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import sqlite3
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from slmdesk import __version__
from slmdesk.catalog.registry import STARTER_LICENCE, STARTER_NAME
from tests.gguf_factory import GGML_F32, GGML_Q4_0, damage_one_weight_block, write_gguf

TIMEOUT = 120  # seconds, for every subprocess
FRANCE = "What is the capital of France?"
# Chat commands run on one thread: the CI machines have two shared cores.
THREADS = ("--threads", "1")


# -- running the command line --------------------------------------------------------------


def _decoy_env(decoy: Path) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("SLMDESK_HOME", "SLMDESK_LOG", "SLMDESK_STARTER_MODEL")
    }
    tmp = decoy / "tmp"
    tmp.mkdir(parents=True, exist_ok=True)
    env.update(
        HF_HUB_OFFLINE="1",
        PYTHONUTF8="1",
        PYTHONIOENCODING="utf-8",
        HOME=str(decoy),
        XDG_DATA_HOME=str(decoy / "xdg-data"),
        XDG_CONFIG_HOME=str(decoy / "xdg-config"),
        XDG_CACHE_HOME=str(decoy / "xdg-cache"),
        XDG_STATE_HOME=str(decoy / "xdg-state"),
        TMPDIR=str(tmp),
    )
    return env


def _assert_decoy_untouched(decoy: Path) -> None:
    leaked = [p for p in decoy.rglob("*") if "slmdesk" in p.name.lower()]
    assert not leaked, f"slmdesk wrote outside its home: {leaked}"


@dataclass
class Cli:
    """`python -m slmdesk --home HOME ...` with a clean environment."""

    home: Path | None
    env: dict[str, str]
    cwd: Path
    calls: list[list[str]] = field(default_factory=list)

    def command(self, *args: str) -> list[str]:
        cmd = [sys.executable, "-m", "slmdesk"]
        if self.home is not None:
            cmd += ["--home", str(self.home)]
        return cmd + list(args)

    def run(
        self, *args: str, input: str | None = None, check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        cmd = self.command(*args)
        self.calls.append(cmd)
        proc = subprocess.run(
            cmd,
            input=input,
            stdin=subprocess.DEVNULL if input is None else None,
            capture_output=True,
            text=True,
            encoding="utf-8",
            env=self.env,
            cwd=self.cwd,
            timeout=TIMEOUT,
        )
        if check:
            assert proc.returncode == 0, (
                f"{args} exited {proc.returncode}\nstdout:\n{proc.stdout}\nstderr:\n{proc.stderr}"
            )
        return proc

    def json(self, *args: str, input: str | None = None) -> Any:
        return json.loads(self.run(*args, input=input).stdout)

    def chat(self, *args: str) -> dict[str, Any]:
        """One `chat --json` turn on one thread."""
        out = self.json("chat", *THREADS, "--json", *args)
        assert isinstance(out, dict)
        return out

    def conversations(self) -> list[dict[str, Any]]:
        out = self.json("chats", "list", "--json")
        assert isinstance(out, list)
        return out

    def show(self, conversation_id: str) -> dict[str, Any]:
        out = self.json("chats", "show", conversation_id, "--json")
        assert isinstance(out, dict)
        return out

    def models(self) -> list[dict[str, Any]]:
        out = self.json("models", "list", "--json")
        assert isinstance(out, list)
        return out


def assert_one_line_error(proc: subprocess.CompletedProcess[str], *needles: str) -> str:
    """A handled failure: non-zero exit, one `slmdesk: error:` line, no traceback."""
    assert proc.returncode != 0, proc.stdout
    assert "Traceback" not in proc.stderr, proc.stderr
    lines = proc.stderr.splitlines()
    assert len(lines) == 1, proc.stderr
    line = lines[0]
    assert line.startswith("slmdesk: error: "), line
    for needle in needles:
        assert needle in line, line
    assert proc.stdout == ""
    return line


@pytest.fixture
def decoy(tmp_path: Path) -> Iterator[Path]:
    path = tmp_path / "decoy"
    path.mkdir()
    yield path
    _assert_decoy_untouched(path)


@pytest.fixture
def cli(tmp_path: Path, decoy: Path) -> Cli:
    """A fresh slmdesk home; the starter model is registered on first use when installed."""
    work = tmp_path / "work"
    work.mkdir()
    return Cli(home=tmp_path / "slmhome", env=_decoy_env(decoy), cwd=work)


@pytest.fixture
def bare_cli(cli: Cli) -> Cli:
    """A fresh home where no starter model can be found: no model is registered."""
    cli.env["SLMDESK_STARTER_MODEL"] = str(cli.cwd / "no-such-starter.gguf")
    return cli


@dataclass
class SharedConversation:
    """One home with one conversation of two turns, for read-only checks."""

    cli: Cli
    first: dict[str, Any]
    second: dict[str, Any]

    @property
    def id(self) -> str:
        return str(self.first["conversation_id"])


@pytest.fixture(scope="module")
def convo(
    tmp_path_factory: pytest.TempPathFactory, model_path: Path
) -> Iterator[SharedConversation]:
    base = tmp_path_factory.mktemp("shared")
    decoy_dir = base / "decoy"
    decoy_dir.mkdir()
    work = base / "work"
    work.mkdir()
    shared = Cli(home=base / "slmhome", env=_decoy_env(decoy_dir), cwd=work)
    first = shared.chat("--temperature", "0", FRANCE)
    second = shared.chat("--continue", first["conversation_id"], "And of Germany?")
    yield SharedConversation(shared, first, second)
    _assert_decoy_untouched(decoy_dir)


@pytest.fixture(scope="module")
def model_copy(tmp_path_factory: pytest.TempPathFactory, model_path: Path) -> Path:
    """The real model under another path: a hard link where possible, else a copy."""
    target = tmp_path_factory.mktemp("model-copy") / "second-smollm2.gguf"
    try:
        os.link(model_path, target)
    except OSError:
        shutil.copyfile(model_path, target)
    return target


TINY_METADATA: dict[str | bytes, object] = {
    "general.architecture": "llama",
    "general.name": "Tiny Test",
    "general.license": "mit",
    "llama.context_length": 2048,
    "llama.block_count": 1,
    "llama.embedding_length": 64,
    "llama.attention.head_count": 4,
    "tokenizer.ggml.model": "gpt2",
    "tokenizer.ggml.tokens": [f"t{i}" for i in range(10)],
}
TINY_TENSORS = [("token_embd.weight", (64, 16), GGML_F32), ("output.weight", (64, 4), GGML_Q4_0)]


# -- version and where things live ---------------------------------------------------------


def test_version(cli: Cli) -> None:
    proc = cli.run("--version")
    assert proc.stdout.strip() == f"slmdesk {__version__}"


def test_home_option_puts_the_database_under_dir(bare_cli: Cli) -> None:
    assert bare_cli.home is not None
    assert not bare_cli.home.exists()
    bare_cli.run("models", "list")
    assert (bare_cli.home / "data" / "slmdesk.db").is_file()


def test_relative_home_option_is_taken_from_the_working_directory(bare_cli: Cli) -> None:
    rel = Cli(home=Path("relhome"), env=bare_cli.env, cwd=bare_cli.cwd)
    rel.run("chats", "list")
    assert (bare_cli.cwd / "relhome" / "data" / "slmdesk.db").is_file()


def test_slmdesk_home_environment_variable_alone_works(bare_cli: Cli, tmp_path: Path) -> None:
    home = tmp_path / "env-home"
    env_cli = Cli(home=None, env={**bare_cli.env, "SLMDESK_HOME": str(home)}, cwd=bare_cli.cwd)
    assert env_cli.models() == []
    assert (home / "data" / "slmdesk.db").is_file()
    report = env_cli.json("doctor", "--json")
    assert Path(report["paths"]["database"]) == (home / "data" / "slmdesk.db").resolve()


def test_home_option_wins_over_the_environment_variable(bare_cli: Cli, tmp_path: Path) -> None:
    env_home = tmp_path / "env-home"
    bare_cli.env["SLMDESK_HOME"] = str(env_home)
    bare_cli.run("chats", "list")
    assert bare_cli.home is not None
    assert (bare_cli.home / "data" / "slmdesk.db").is_file()
    assert not env_home.exists()


# -- models ---------------------------------------------------------------------------------


@pytest.mark.model
def test_models_list_on_a_fresh_home_has_the_starter_model(cli: Cli, model_path: Path) -> None:
    models = cli.models()
    assert len(models) == 1
    m = models[0]
    assert m["id"]
    assert m["name"] == STARTER_NAME
    assert Path(m["path"]) == model_path.resolve()
    assert Path(m["path"]).is_file()
    assert m["size_bytes"] == model_path.stat().st_size
    assert m["architecture"] == "llama"
    assert m["quantization"] == "Q4_1"
    assert m["context_length"] == 8192
    assert m["licence"] == STARTER_LICENCE == "Apache-2.0"
    assert m["exists"] is True

    text = cli.run("models", "list").stdout
    assert m["id"] in text
    assert STARTER_NAME in text
    for part in ("llama", "Q4_1", "8192", "Apache-2.0"):
        assert part in text


def test_models_list_without_any_model(bare_cli: Cli) -> None:
    assert bare_cli.models() == []
    assert "No models" in bare_cli.run("models", "list").stdout


def test_chat_without_any_model_fails_cleanly(bare_cli: Cli) -> None:
    proc = bare_cli.run("chat", *THREADS, "Hello", check=False)
    assert_one_line_error(proc, "No model is registered")


def test_import_registers_a_gguf_in_place(bare_cli: Cli, tmp_path: Path) -> None:
    path = tmp_path / "tiny-test.gguf"
    write_gguf(path, metadata=TINY_METADATA, tensors=TINY_TENSORS)
    size = path.stat().st_size

    model = bare_cli.json("models", "import", str(path), "--json")
    assert model["name"] == "Tiny Test"
    assert Path(model["path"]) == path.resolve()
    assert model["size_bytes"] == size
    assert model["architecture"] == "llama"
    assert model["context_length"] == 2048
    assert model["licence"] == "mit"
    assert path.stat().st_size == size  # registered in place, untouched
    assert [m["id"] for m in bare_cli.models()] == [model["id"]]

    # Importing the same file again refreshes the record instead of adding a second one.
    again = bare_cli.run("models", "import", str(path), "--name", "Renamed tiny")
    assert model["id"] in again.stdout
    assert "Renamed tiny" in again.stdout
    models = bare_cli.models()
    assert [(m["id"], m["name"]) for m in models] == [(model["id"], "Renamed tiny")]


@pytest.mark.model
def test_import_of_a_symlink_registers_the_resolved_file(
    cli: Cli, tmp_path: Path, model_copy: Path
) -> None:
    link = tmp_path / "link-to-model.gguf"
    try:
        link.symlink_to(model_copy)
    except OSError as exc:  # e.g. Windows without the privilege
        pytest.skip(f"cannot create a symlink: {exc}")
    model = cli.json("models", "import", str(link), "--name", "Linked copy", "--json")
    assert Path(model["path"]) == model_copy.resolve()
    assert model["name"] == "Linked copy"
    assert model["architecture"] == "llama"
    assert model["quantization"] == "Q4_1"
    paths = sorted(Path(m["path"]) for m in cli.models())
    assert model_copy.resolve() in paths
    assert len(paths) == 2  # the starter model and the copy


def _write_truncated(path: Path) -> str:
    layout = write_gguf(path, metadata=TINY_METADATA, tensors=TINY_TENSORS)
    path.write_bytes(path.read_bytes()[: layout.tensor_info_start + 10])
    return path.name


def _write_wrong_magic(path: Path) -> str:
    write_gguf(path, metadata=TINY_METADATA, tensors=TINY_TENSORS, magic=b"GGML")
    return path.name


def _write_empty(path: Path) -> str:
    path.write_bytes(b"")
    return path.name


def _make_directory(path: Path) -> str:
    path.mkdir()
    return path.name


def _missing(path: Path) -> str:
    return path.name


@pytest.mark.parametrize(
    "make",
    [_write_truncated, _write_wrong_magic, _write_empty, _make_directory, _missing],
    ids=["truncated", "wrong-magic", "empty", "directory", "missing"],
)
def test_import_of_a_broken_file_fails_with_one_line(
    bare_cli: Cli, tmp_path: Path, make: Any
) -> None:
    path = tmp_path / "broken-model.gguf"
    name = make(path)
    proc = bare_cli.run("models", "import", str(path), check=False)
    assert_one_line_error(proc, name)
    assert bare_cli.models() == []


# -- chat: one prompt -----------------------------------------------------------------------


@pytest.mark.model
def test_chat_json_reply(convo: SharedConversation) -> None:
    out = convo.first
    assert out["conversation_id"]
    # Never the words: a 135M model's greedy reply changes with the CPU (AVX2 vs AVX-512).
    assert out["text"].strip()
    assert out["prompt_tokens"] > 0
    assert out["completion_tokens"] > 0
    assert out["ttft_s"] > 0
    assert out["tokens_per_s"] > 0
    assert out["finish_reason"] == "stop"
    assert out["model"] == STARTER_NAME


@pytest.mark.model
def test_chat_continue_adds_to_the_same_conversation(convo: SharedConversation) -> None:
    first, second = convo.first, convo.second
    assert second["conversation_id"] == first["conversation_id"]
    assert second["finish_reason"] == "stop"
    assert second["text"].strip()
    # The second prompt carries the first turn as well.
    assert second["prompt_tokens"] > first["prompt_tokens"]
    assert [c["id"] for c in convo.cli.conversations()] == [convo.id]


@pytest.mark.model
def test_chats_show_json_has_the_turns_and_their_metrics(convo: SharedConversation) -> None:
    shown = convo.cli.show(convo.id)
    assert shown["id"] == convo.id
    assert shown["title"] == FRANCE
    assert shown["system_prompt"]  # the default system prompt
    assert shown["params"]["temperature"] == 0
    messages = shown["messages"]
    assert [m["role"] for m in messages] == ["user", "assistant", "user", "assistant"]
    assert [m["content"] for m in messages] == [
        FRANCE,
        convo.first["text"],
        "And of Germany?",
        convo.second["text"],
    ]
    for message, out in ((messages[1], convo.first), (messages[3], convo.second)):
        assert message["id"] == out["message_id"]
        assert message["status"] == "complete"
        assert message["finish_reason"] == "stop"
        assert message["completion_tokens"] == out["completion_tokens"]
        assert message["prompt_tokens"] == out["prompt_tokens"]
        assert message["tokens_per_s"] is not None and message["tokens_per_s"] > 0
        assert message["model_id"] == shown["model_id"]
    for message in (messages[0], messages[2]):
        assert message["status"] == "complete"


@pytest.mark.model
def test_chat_continue_with_an_id_prefix(cli: Cli, model_path: Path) -> None:
    first = cli.chat("--max-tokens", "4", "Hello there")
    cid = first["conversation_id"]
    out = cli.chat(
        "--continue", cid[:6].lower(), "--max-tokens", "4", "--system", "Be brief.", "Again"
    )
    assert out["conversation_id"] == cid
    shown = cli.show(cid)
    assert len(shown["messages"]) == 4
    assert shown["system_prompt"] == "Be brief."  # --system on --continue replaces it

    # With a second conversation, a prefix both share is ambiguous; a longer one is not.
    other = cli.chat("--max-tokens", "1", "Another chat")["conversation_id"]
    common = ""
    for a, b in zip(cid, other, strict=False):
        if a != b:
            break
        common += a
    if len(common) >= 4:
        proc = cli.run("chats", "show", common, check=False)
        assert_one_line_error(proc, "several conversations")
    assert cli.show(cid[: len(common) + 1])["id"] == cid
    assert cli.show(other[: max(4, len(common) + 1)])["id"] == other


@pytest.mark.model
def test_chat_starts_a_new_conversation_with_the_models_own_defaults(
        cli: Cli, model_path: Path) -> None:
    # Issue 16: per-model defaults, the same core function as the window's new chat.
    from slmdesk.engine.params import SamplingParams
    from slmdesk.paths import get_paths
    from slmdesk.settings import save_model_defaults
    from slmdesk.store.db import open_database

    model_id = cli.models()[0]["id"]
    db = open_database(get_paths(cli.home).database)
    try:
        save_model_defaults(db, model_id, system_prompt="Answer in one word.",
                            sampling=SamplingParams(temperature=0, max_tokens=3),
                            max_context=1024)
    finally:
        db.close()
    out = cli.chat("Hello there")
    assert out["completion_tokens"] <= 3
    shown = cli.show(out["conversation_id"])
    assert shown["system_prompt"] == "Answer in one word."
    # Options on the command line still win over the model's defaults.
    again = cli.chat("--max-tokens", "1", "--system", "Be brief.", "Hello again")
    assert again["completion_tokens"] <= 1
    assert cli.show(again["conversation_id"])["system_prompt"] == "Be brief."


def test_chat_continue_with_an_unknown_id_fails_cleanly(bare_cli: Cli) -> None:
    proc = bare_cli.run("chat", *THREADS, "--continue", "NOPE", "Hello", check=False)
    assert_one_line_error(proc, "NOPE")
    assert bare_cli.conversations() == []


@pytest.mark.model
def test_chat_streams_plain_text_and_stores_it(cli: Cli, model_path: Path) -> None:
    proc = cli.run("chat", *THREADS, "--temperature", "0", "--max-tokens", "48", FRANCE)
    [conversation] = cli.conversations()
    messages = cli.show(conversation["id"])["messages"]
    assert [m["role"] for m in messages] == ["user", "assistant"]
    reply = messages[1]["content"]
    assert reply.strip()
    assert messages[1]["finish_reason"] in ("stop", "length")
    # What was streamed to the terminal is exactly what was stored.
    assert proc.stdout == reply + "\n"


@pytest.mark.model
def test_same_seed_gives_the_same_text(cli: Cli, model_path: Path) -> None:
    args = ("--seed", "1234", "--temperature", "1.0", "--max-tokens", "24", "Tell me a poem.")
    a = cli.chat(*args)
    b = cli.chat(*args)
    assert a["conversation_id"] != b["conversation_id"]
    assert a["text"].strip()
    assert a["text"] == b["text"]


@pytest.mark.model
def test_max_tokens_ends_the_reply_with_length(cli: Cli, model_path: Path) -> None:
    out = cli.chat("--max-tokens", "3", "Write a long story about a cat.")
    assert out["finish_reason"] == "length"
    assert out["completion_tokens"] == 3
    reply = cli.show(out["conversation_id"])["messages"][1]
    assert reply["finish_reason"] == "length"
    assert reply["completion_tokens"] == 3
    assert reply["content"] == out["text"]


@pytest.mark.model
def test_system_prompt_is_stored_on_the_conversation(cli: Cli, model_path: Path) -> None:
    system = "Always answer in French."
    out = cli.chat("--system", system, "--max-tokens", "8", "Hello!")
    shown = cli.show(out["conversation_id"])
    assert shown["system_prompt"] == system
    markdown = cli.run("chats", "show", out["conversation_id"]).stdout
    assert system in markdown


@pytest.mark.model
@pytest.mark.parametrize(
    ("option", "value"), [("--max-tokens", "0"), ("--top-k", "0"), ("--max-tokens", "-5")]
)
def test_invalid_sampling_option_fails_cleanly(
    cli: Cli, model_path: Path, option: str, value: str
) -> None:
    proc = cli.run("chat", *THREADS, option, value, "Hello", check=False)
    assert_one_line_error(proc, option)
    assert cli.conversations() == []


@pytest.mark.model
def test_chat_picks_a_model_by_name_or_file_name(
    cli: Cli, model_copy: Path
) -> None:
    second = cli.json("models", "import", str(model_copy), "--name", "Second copy", "--json")
    starter = next(m for m in cli.models() if m["id"] != second["id"])

    out = cli.chat("-m", "second copy", "--max-tokens", "2", "Hi")  # names are case-insensitive
    assert out["model"] == "Second copy"
    assert cli.show(out["conversation_id"])["model_id"] == second["id"]

    out = cli.chat("-m", Path(starter["path"]).name, "--max-tokens", "2", "Hi")
    assert out["model"] == starter["name"]
    assert cli.show(out["conversation_id"])["model_id"] == starter["id"]

    out = cli.chat("-m", model_copy.name, "--max-tokens", "2", "Hi")
    assert out["model"] == "Second copy"


def test_chat_with_an_unknown_model_fails_cleanly(cli: Cli) -> None:
    proc = cli.run("chat", *THREADS, "-m", "nope", "Hello", check=False)
    assert_one_line_error(proc, "nope")
    assert cli.conversations() == []


# -- chat: interactive ----------------------------------------------------------------------


@pytest.mark.model
def test_interactive_chat_reads_lines_until_eof(cli: Cli, model_path: Path) -> None:
    proc = cli.run(
        "chat", *THREADS, "--temperature", "0", "--max-tokens", "48",
        input=f"{FRANCE}\nAnd of Italy?\n",
    )
    [conversation] = cli.conversations()
    messages = cli.show(conversation["id"])["messages"]
    assert [m["role"] for m in messages] == ["user", "assistant", "user", "assistant"]
    assert [m["content"] for m in messages[::2]] == [FRANCE, "And of Italy?"]
    assert all(m["content"].strip() for m in messages[1::2])
    assert all(m["finish_reason"] in ("stop", "length") for m in messages[1::2])
    assert proc.stdout == messages[1]["content"] + "\n" + messages[3]["content"] + "\n"


@pytest.mark.model
def test_interactive_json_prints_one_object_per_turn(cli: Cli, model_path: Path) -> None:
    proc = cli.run(
        "chat", *THREADS, "--json", "--max-tokens", "4", input="Hello\n\nGoodbye\n"
    )
    outs = [json.loads(line) for line in proc.stdout.splitlines()]
    assert len(outs) == 2  # the blank line is skipped
    assert outs[0]["conversation_id"] == outs[1]["conversation_id"]
    messages = cli.show(outs[0]["conversation_id"])["messages"]
    assert [m["content"] for m in messages] == [
        "Hello", outs[0]["text"], "Goodbye", outs[1]["text"]
    ]


@pytest.mark.model
def test_interactive_exit_command_ends_the_session(cli: Cli, model_path: Path) -> None:
    cli.run("chat", *THREADS, input="/exit\nThis line is never sent\n")
    assert cli.json("chats", "search", "never sent", "--json") == []


class _StdoutReader(threading.Thread):
    """Collects a child's stdout; `saw_text` is set once it has printed a visible character."""

    def __init__(self, proc: subprocess.Popen[bytes]) -> None:
        super().__init__(daemon=True)
        self.proc = proc
        self.data = bytearray()
        self.saw_text = threading.Event()

    def run(self) -> None:
        stream = self.proc.stdout
        assert stream is not None
        while True:
            chunk = stream.read1(4096)
            if not chunk:
                break
            self.data += chunk
            if self.data.strip():
                self.saw_text.set()

    @property
    def text(self) -> str:
        return self.data.decode("utf-8", errors="replace")


@pytest.mark.model
@pytest.mark.skipif(sys.platform == "win32", reason="needs POSIX signals")
def test_ctrl_c_stops_the_reply_but_not_the_session(
    cli: Cli, model_path: Path, tmp_path: Path
) -> None:
    cmd = cli.command(
        "chat", *THREADS, "--max-tokens", "2000", "--temperature", "0.8", "--seed", "7"
    )
    with (tmp_path / "stderr.txt").open("w+b") as err:
        proc = subprocess.Popen(
            cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=err,
            env=cli.env, cwd=cli.cwd,
        )
        reader = _StdoutReader(proc)
        reader.start()
        try:
            assert proc.stdin is not None
            proc.stdin.write(b"Write a very long story about a dragon who learns to bake.\n")
            proc.stdin.flush()
            assert reader.saw_text.wait(TIMEOUT), "no reply text appeared"
            proc.send_signal(signal.SIGINT)
            proc.stdin.write(f"{FRANCE}\n".encode())
            proc.stdin.close()
            rc = proc.wait(timeout=TIMEOUT)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait(timeout=TIMEOUT)
        reader.join(TIMEOUT)
        err.seek(0)
        stderr = err.read().decode("utf-8", errors="replace")

    assert rc == 0, stderr
    assert "Traceback" not in stderr
    assert "[stopped]" in stderr
    [conversation] = cli.conversations()
    messages = cli.show(conversation["id"])["messages"]
    assert [m["role"] for m in messages] == ["user", "assistant", "user", "assistant"]
    stopped, answered = messages[1], messages[3]
    assert stopped["finish_reason"] == "cancelled"
    assert stopped["status"] == "complete"
    assert stopped["content"].strip()
    assert stopped["completion_tokens"] < 2000
    assert answered["finish_reason"] == "stop"
    assert messages[2]["content"] == FRANCE
    assert reader.text.startswith(stopped["content"])
    assert answered["content"] in reader.text


# -- chats ----------------------------------------------------------------------------------


@pytest.mark.model
def test_chats_list(convo: SharedConversation) -> None:
    [listed] = convo.cli.conversations()
    assert listed["id"] == convo.id
    assert listed["title"] == FRANCE
    text = convo.cli.run("chats", "list").stdout
    assert convo.id in text
    assert FRANCE in text


def test_chats_list_on_a_fresh_home(bare_cli: Cli) -> None:
    assert bare_cli.conversations() == []
    assert "No conversations" in bare_cli.run("chats", "list").stdout


@pytest.mark.model
def test_chats_show_prints_markdown(convo: SharedConversation) -> None:
    text = convo.cli.run("chats", "show", convo.id).stdout
    assert text.startswith(f"# {FRANCE}")
    assert convo.id in text
    for part in (FRANCE, convo.first["text"], "And of Germany?", convo.second["text"]):
        assert part in text
    assert text.index(convo.first["text"]) < text.index("And of Germany?")


@pytest.mark.model
def _a_word_of(text: str) -> str:
    """The longest plain word of ``text`` (a model's reply: its words differ between CPUs)."""
    words = re.findall(r"[A-Za-z]{4,}", text)
    assert words, f"no word to search for in {text!r}"
    return max(words, key=len)


def test_chats_search(convo: SharedConversation) -> None:
    for word in ("capital", _a_word_of(convo.first["text"])):  # one typed, one the model's
        hits = convo.cli.json("chats", "search", word, "--json")
        assert hits
        assert all(h["conversation_id"] == convo.id for h in hits)
        assert any(word.lower() in h["snippet"].lower() for h in hits)
        text = convo.cli.run("chats", "search", word).stdout
        assert convo.id in text


@pytest.mark.model
def test_chats_search_without_hits(convo: SharedConversation) -> None:
    assert convo.cli.json("chats", "search", "xylophonequartz", "--json") == []
    assert "No matches" in convo.cli.run("chats", "search", "xylophonequartz").stdout


@pytest.mark.model
def test_chats_export(convo: SharedConversation, tmp_path: Path) -> None:
    shown_md = convo.cli.run("chats", "show", convo.id).stdout
    md = convo.cli.run("chats", "export", convo.id, "--format", "md").stdout
    assert md == shown_md
    assert convo.cli.run("chats", "export", convo.id).stdout == md  # md is the default

    exported = convo.cli.json("chats", "export", convo.id, "--format", "json")
    shown = convo.cli.show(convo.id)
    assert (exported["format"], exported["version"]) == ("slmdesk.conversation", 1)
    # One branch only: the export (every branch) and the shown path hold the same messages.
    assert shown["branches"] == 0
    assert exported["messages"] == shown["messages"]
    assert exported["leaf_id"] == shown["messages"][-1]["id"]
    for key in ("id", "title", "model_id", "system_prompt", "params", "pinned",
                "created_at", "updated_at"):
        assert exported[key] == shown[key], key
    assert convo.cli.json("chats", "export", convo.id, "--json") == exported

    md_file = tmp_path / "out.md"
    proc = convo.cli.run("chats", "export", convo.id, "-o", str(md_file))
    assert proc.stdout == ""
    assert md_file.read_text(encoding="utf-8") == md

    json_file = tmp_path / "out.json"
    convo.cli.run("chats", "export", convo.id[:8], "--format", "json", "-o", str(json_file))
    assert json.loads(json_file.read_text(encoding="utf-8")) == exported


@pytest.mark.parametrize("action", ["show", "export"])
def test_chats_show_or_export_of_an_unknown_id_fails_cleanly(bare_cli: Cli, action: str) -> None:
    proc = bare_cli.run("chats", action, "NOPE", check=False)
    assert_one_line_error(proc, "NOPE")


def _branched_export() -> dict[str, Any]:
    """An export file as `chats export --format json` writes it, with a regenerated reply."""
    t = "2026-03-01T10:00:00.000000+00:00"

    def msg(mid: str, parent: str | None, role: str, content: str, **extra: Any) -> dict[str, Any]:
        return {
            "id": mid, "conversation_id": "01JCONVERSATIONIMPORT0001", "parent_id": parent,
            "role": role, "content": content, "status": "complete",
            "finish_reason": "stop" if role == "assistant" else None, "model_id": None,
            "prompt_tokens": None, "completion_tokens": None, "ttft_s": None,
            "tokens_per_s": None, "duration_s": None, "metadata": {},
            "created_at": t, "updated_at": t, **extra,
        }

    return {
        "format": "slmdesk.conversation", "version": 1,
        "id": "01JCONVERSATIONIMPORT0001", "title": "Imported — ünïcode 🦙",
        "model_id": None, "system_prompt": "Be brief.", "params": {"temperature": 0.3},
        "pinned": False, "created_at": t, "updated_at": t,
        "leaf_id": "01JMESSAGEIMPORT000000003",
        "messages": [
            msg("01JMESSAGEIMPORT000000001", None, "user", "Capital of France?"),
            msg("01JMESSAGEIMPORT000000002", "01JMESSAGEIMPORT000000001", "assistant",
                "Lyon.", finish_reason="interrupted", completion_tokens=2, tokens_per_s=41.5,
                metadata={"model_name": "Tiny"}),
            msg("01JMESSAGEIMPORT000000003", "01JMESSAGEIMPORT000000001", "assistant",
                "Paris."),
        ],
    }


def test_chats_import_round_trip_and_show_of_the_current_branch(
    bare_cli: Cli, tmp_path: Path
) -> None:
    data = _branched_export()
    path = tmp_path / "chat.json"
    path.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")

    proc = bare_cli.run("chats", "import", str(path))
    assert proc.stdout == data["id"] + "\n"  # the id is free, so it is kept
    shown = bare_cli.show(data["id"])
    assert [m["content"] for m in shown["messages"]] == ["Capital of France?", "Paris."]
    assert shown["branches"] == 1  # the interrupted "Lyon." is on another branch
    assert shown["title"] == data["title"]
    assert bare_cli.json("chats", "export", data["id"], "--format", "json") == data
    markdown = bare_cli.run("chats", "show", data["id"]).stdout
    assert "Paris." in markdown
    assert "Lyon." not in markdown
    assert bare_cli.json("chats", "search", "lyon", "--json")[0]["conversation_id"] == data["id"]

    # The same file again: a copy under new ids.
    again = bare_cli.json("chats", "import", str(path), "--json")
    assert again["id"] != data["id"]
    assert again["title"] == data["title"]
    assert again["leaf_id"] not in {m["id"] for m in data["messages"]}
    copy = bare_cli.show(again["id"])
    assert [m["content"] for m in copy["messages"]] == ["Capital of France?", "Paris."]
    assert copy["messages"][1]["parent_id"] == copy["messages"][0]["id"]
    assert sorted(c["id"] for c in bare_cli.conversations()) == sorted([data["id"], again["id"]])


@pytest.mark.parametrize(
    ("content", "needles"),
    [
        (b"{not json", ("bad.json", "not valid JSON", "line 1")),
        (b"\xff\xfe\x00garbage", ("bad.json", "not UTF-8")),
        (b"[1, 2, 3]", ("bad.json", "expected a JSON object")),
        (json.dumps({"format": "slmdesk.conversation", "version": 7, "messages": []}).encode(),
         ("bad.json", "newer slmdesk")),
        (json.dumps({"format": "slmdesk.conversation", "version": 1, "messages": [
            {"id": "a", "role": "user", "content": "fine"},
            {"id": "b", "role": "assistant", "content": 12},
            {"id": "c", "role": "user", "content": "never imported"},
        ]}).encode(), ("bad.json", "Message 2 (b)", '"content" must be text')),
        (b"[" * 100_000 + b"]" * 100_000, ("bad.json",)),
    ],
    ids=["not-json", "not-utf8", "a-list", "newer-version", "bad-message", "deep-nesting"],
)
def test_chats_import_of_a_bad_file_fails_with_one_line(
    bare_cli: Cli, tmp_path: Path, content: bytes, needles: tuple[str, ...]
) -> None:
    path = tmp_path / "bad.json"
    path.write_bytes(content)
    proc = bare_cli.run("chats", "import", str(path), check=False)
    assert_one_line_error(proc, *needles)
    assert bare_cli.conversations() == []
    assert bare_cli.json("chats", "search", "fine", "--json") == []


def test_chats_import_of_a_missing_file_fails_with_one_line(bare_cli: Cli, tmp_path: Path) -> None:
    proc = bare_cli.run("chats", "import", str(tmp_path / "nowhere.json"), check=False)
    assert_one_line_error(proc, "nowhere.json")


def test_chats_delete_is_permanent_and_touches_nothing_else(
    bare_cli: Cli, tmp_path: Path
) -> None:
    path = tmp_path / "chat.json"
    path.write_text(json.dumps(_branched_export()), encoding="utf-8")
    first = bare_cli.run("chats", "import", str(path)).stdout.strip()
    second = bare_cli.run("chats", "import", str(path)).stdout.strip()
    binned = bare_cli.run("chats", "import", str(path)).stdout.strip()
    assert bare_cli.home is not None
    db = bare_cli.home / "data" / "slmdesk.db"
    # The app put `binned` in its bin (undo still possible there); the command line must
    # not empty that bin when it deletes something else.
    conn = sqlite3.connect(db)
    try:
        conn.execute("UPDATE conversations SET deleted_at = ? WHERE id = ?",
                     ["2099-01-01T00:00:00+00:00", binned])
        conn.commit()
    finally:
        conn.close()

    proc = bare_cli.run("chats", "delete", first[:10])
    assert first in proc.stdout
    assert [c["id"] for c in bare_cli.conversations()] == [second]
    conn = sqlite3.connect(db)
    try:
        rows = dict(conn.execute("SELECT id, deleted_at FROM conversations").fetchall())
        owners = {r[0] for r in conn.execute("SELECT conversation_id FROM messages")}
    finally:
        conn.close()
    assert rows == {second: None, binned: "2099-01-01T00:00:00+00:00"}
    assert owners == {second, binned}
    assert_one_line_error(bare_cli.run("chats", "show", first, check=False), first)
    assert_one_line_error(bare_cli.run("chats", "delete", first, check=False), first)
    assert_one_line_error(bare_cli.run("chats", "delete", binned, check=False), binned)


# -- doctor ---------------------------------------------------------------------------------


@pytest.mark.model
def test_doctor_json(convo: SharedConversation, model_path: Path) -> None:
    report = convo.cli.json("doctor", "--json")
    assert report["version"] == __version__
    assert report["backend"]["backend"] == "CPU"
    assert report["backend"]["available"] is True
    assert report["threads"] >= 1
    home = convo.cli.home
    assert home is not None
    for name, path in report["paths"].items():
        assert Path(path).resolve().is_relative_to(home.resolve()), (name, path)
    assert Path(report["paths"]["database"]) == (home / "data" / "slmdesk.db").resolve()
    assert [Path(m["path"]) for m in report["models"]] == [model_path.resolve()]
    assert report["models"][0]["exists"] is True
    assert report["database"]["integrity"] == "ok"
    assert report["database"]["conversations"] == 1
    assert report["database"]["messages"] == 4
    assert report["ok"] is True


@pytest.mark.model
def test_doctor_prints_human_text(convo: SharedConversation) -> None:
    text = convo.cli.run("doctor").stdout
    assert text.startswith(f"slmdesk {__version__}")
    assert "backend: CPU" in text
    assert "database: ok" in text
    assert STARTER_NAME in text
    assert not text.lstrip().startswith("{")


def test_doctor_says_where_lora_jobs_run(bare_cli: Cli, tmp_path: Path) -> None:
    """The trainer: the add-on $SLMDESK_TRAINER names (as next to a packaged app), or why
    there is none, which does not make the rest of the report fail."""
    from tests.trainer_addon import make_addon

    folder = make_addon(tmp_path / "slmdesk-trainer")
    with_addon = Cli(home=bare_cli.home, env={**bare_cli.env, "SLMDESK_TRAINER": str(folder)},
                     cwd=bare_cli.cwd)
    trainer = with_addon.json("doctor", "--json")["trainer"]
    assert trainer == {"available": True, "where": f"the trainer add-on in {folder}",
                       "addon": str(folder), "problem": None}
    empty = Cli(home=bare_cli.home, env={**bare_cli.env, "SLMDESK_TRAINER": str(tmp_path)},
                cwd=bare_cli.cwd)
    text = empty.run("doctor", check=False).stdout
    assert "trainer (LoRA): not installed" in text
    assert f"  to get it: SLMDESK_TRAINER names {tmp_path}" in text


@pytest.mark.model
def test_self_test_passes(cli: Cli, model_path: Path) -> None:
    proc = cli.run("--self-test")
    assert "self-test passed" in proc.stdout
    assert "FAIL" not in proc.stdout
    # The fingerprint was compared with the starter's recorded reference value.
    [line] = [ln for ln in proc.stdout.splitlines() if "fingerprint:" in ln]
    assert line.lstrip().startswith("ok") and "reference -2.7" in line, line


@pytest.mark.model
def test_self_test_fails_on_a_model_with_one_damaged_block(
    cli: Cli, model_path: Path, tmp_path: Path
) -> None:
    damaged = tmp_path / "damaged.gguf"
    damage_one_weight_block(model_path, damaged)
    cli.env["SLMDESK_STARTER_MODEL"] = str(damaged)
    proc = cli.run("--self-test", check=False)
    assert proc.returncode == 1
    [line] = [ln for ln in proc.stdout.splitlines() if "fingerprint:" in ln]
    assert line.lstrip().startswith("FAIL"), line
    assert "damaged" in line and "reference for this model is -2.7" in line, line
    # Everything else still works with that file: only the numbers give it away.
    assert "ok   generation" in proc.stdout and "self-test FAILED (1 checks)" in proc.stdout


# -- databases it must refuse ---------------------------------------------------------------


def test_database_from_a_newer_slmdesk_is_refused(bare_cli: Cli) -> None:
    bare_cli.run("models", "list")
    assert bare_cli.home is not None
    db = bare_cli.home / "data" / "slmdesk.db"
    conn = sqlite3.connect(db)
    try:
        columns = [row[1] for row in conn.execute("PRAGMA table_info(_sqlite_migrations)")]
        assert {"migration_set", "name"} <= set(columns)
        row = {"migration_set": "slmdesk", "name": "m999_future"}
        if "applied_at" in columns:
            row["applied_at"] = "2099-01-01 00:00:00+00:00"
        conn.execute(
            f"INSERT INTO _sqlite_migrations ({', '.join(row)}) "
            f"VALUES ({', '.join('?' for _ in row)})",
            list(row.values()),
        )
        conn.commit()
    finally:
        conn.close()
    for args in (
        ["models", "list"],
        ["chats", "list", "--json"],
        ["doctor", "--json"],
        ["chat", *THREADS, "Hello"],
    ):
        proc = bare_cli.run(*args, check=False)
        assert_one_line_error(proc, "newer slmdesk", "m999_future")


def test_a_file_that_is_not_a_database_is_refused(bare_cli: Cli) -> None:
    assert bare_cli.home is not None
    db = bare_cli.home / "data" / "slmdesk.db"
    db.parent.mkdir(parents=True)
    db.write_bytes(b"this is not an SQLite database, just some text\n" * 20)
    proc = bare_cli.run("chats", "list", check=False)
    assert_one_line_error(proc, "slmdesk.db", "not a usable slmdesk database")


# -- once bugs: each of these failed before its fix -----------------------------------------


@pytest.mark.model
def test_export_to_an_unwritable_path_fails_with_one_line(
    convo: SharedConversation, tmp_path: Path
) -> None:
    target = tmp_path / "no-such-dir" / "out.md"
    proc = convo.cli.run("chats", "export", convo.id, "-o", str(target), check=False)
    assert_one_line_error(proc, "out.md")


def test_home_that_is_a_file_fails_with_one_line(bare_cli: Cli, tmp_path: Path) -> None:
    afile = tmp_path / "plain-file"
    afile.write_text("not a directory\n")
    file_cli = Cli(home=afile, env=bare_cli.env, cwd=bare_cli.cwd)
    proc = file_cli.run("models", "list", check=False)
    assert_one_line_error(proc, "plain-file")


@pytest.mark.model
def test_conversation_prefix_is_not_a_pattern(convo: SharedConversation) -> None:
    proc = convo.cli.run("chats", "show", "____", check=False)
    assert_one_line_error(proc, "____")


def test_quitting_an_interactive_chat_at_once_leaves_no_empty_conversation(
    cli: Cli, model_path: Path
) -> None:
    cli.run("chat", *THREADS, input="")
    cli.run("chat", *THREADS, input="/exit\n")
    assert cli.conversations() == []


def test_reimporting_the_starter_file_keeps_its_name_and_licence(
    cli: Cli, model_path: Path
) -> None:
    [starter] = cli.models()
    again = cli.json("models", "import", starter["path"], "--json")
    assert again["id"] == starter["id"]
    assert again["name"] == starter["name"] == "SmolLM2 135M Instruct (Q4_1)"
    assert again["licence"] == "Apache-2.0"
    assert len(cli.models()) == 1


def test_threads_below_one_is_refused(cli: Cli) -> None:
    proc = cli.run("chat", "--threads", "0", "hello", check=False)
    assert_one_line_error(proc, "--threads")
