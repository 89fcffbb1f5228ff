"""The server benchmark's pure helpers: prompts per round, aggregate tokens/s, keys, client
counts and llama-server's command line (no timing is asserted, no server is started)."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.llama_server import server_command
from bench.server import parse_clients
from bench.server_load import aggregate_tokens_per_s, concurrency_key, round_prompts
from bench.stats import REQUIRED_KEYS


def test_every_prompt_of_every_round_differs() -> None:
    prompts = [p[0]["content"] for r in range(3) for p in round_prompts(r, 4)]
    assert len(prompts) == 12 and len(set(prompts)) == 12
    assert all(p[0]["role"] == "user" for p in round_prompts(0, 4))
    assert round_prompts(1, 2) == round_prompts(1, 2)  # both servers get the same requests


def test_aggregate_tokens_per_s_sums_clients_over_the_wall_time() -> None:
    assert aggregate_tokens_per_s([64, 64, 32], 2.0) == 80.0
    with pytest.raises(ValueError):
        aggregate_tokens_per_s([1], 0.0)


def test_concurrency_keys_are_in_the_results_table() -> None:
    for n in (1, 2, 4):
        assert concurrency_key("server_throughput_ratio", n) in REQUIRED_KEYS
        assert concurrency_key("remote_classify_per_s", n) in REQUIRED_KEYS


def test_parse_clients_sorts_and_refuses_nonsense() -> None:
    assert parse_clients("4,1,2,2") == (1, 2, 4)
    for bad in ("", "0,1", "-2"):
        with pytest.raises(ValueError):
            parse_clients(bad)


def test_llama_server_gets_the_same_threads_and_a_context_per_slot() -> None:
    cmd = server_command(Path("/bin/llama-server"), Path("/m.gguf"), 8123, threads=2,
                         parallel=4, ctx_per_slot=2048)
    flags = dict(zip(cmd[1::2], cmd[2::2], strict=False))
    assert flags["-t"] == flags["-tb"] == "2"
    assert flags["-np"] == "4" and flags["-c"] == str(4 * 2048)
    assert flags["-fa"] == "off"  # as llama-cpp-python's Llama, the engine
    assert "--no-webui" in cmd
    with pytest.raises(ValueError):
        server_command(Path("x"), Path("m"), 1, threads=1, parallel=0, ctx_per_slot=1)


def test_temporary_home_restores_slmdesk_home(monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    from bench.home import temporary_home

    monkeypatch.setenv("SLMDESK_HOME", "/somewhere")
    with temporary_home("slmdesk-test-") as home:
        assert os.environ["SLMDESK_HOME"] == str(home) and home.is_dir()
    assert os.environ["SLMDESK_HOME"] == "/somewhere"
    monkeypatch.delenv("SLMDESK_HOME")
    with temporary_home("slmdesk-test-"):
        pass
    assert "SLMDESK_HOME" not in os.environ
