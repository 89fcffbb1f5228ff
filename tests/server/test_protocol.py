"""Request checking and the token track, without a server or a model."""

from __future__ import annotations

import pytest

from slmdesk.engine.structured import TokenLogprob
from slmdesk.server.errors import ApiError
from slmdesk.server.generation import TokenTrack
from slmdesk.server.protocol import parse_chat, parse_classify, parse_completion

MSG = [{"role": "user", "content": "hi"}]


def test_chat_request_maps_fields_to_sampling() -> None:
    req = parse_chat({"model": "m", "messages": MSG, "temperature": 0, "seed": 4,
                      "stop": "END", "max_completion_tokens": 9, "n": 1,
                      "stream": True, "stream_options": {"include_usage": True}}, 100)
    assert req.sampling == {"temperature": 0.0, "seed": 4, "stop": ("END",), "max_tokens": 9}
    assert req.stream and req.include_usage


def test_developer_role_and_text_parts_are_accepted() -> None:
    req = parse_chat({"model": "m", "messages": [
        {"role": "developer", "content": "be brief"},
        {"role": "user", "content": [{"type": "text", "text": "a"},
                                     {"type": "text", "text": "b"}]}]}, 100)
    assert req.messages == [{"role": "system", "content": "be brief"},
                            {"role": "user", "content": "ab"}]


@pytest.mark.parametrize(("body", "param"), [
    ({"model": "m", "messages": MSG, "stream_options": {"include_usage": True}},
     "stream_options"),
    ({"model": "m", "messages": MSG, "temperature": "hot"}, "temperature"),
    ({"model": "m", "messages": MSG, "stop": ["a", "b", "c", "d", "e"]}, "stop"),
    ({"model": "m", "messages": MSG, "response_format": {"type": "json_schema",
      "json_schema": {"name": "x", "schema": {"$ref": "https://example.com/s.json"}}}},
     "response_format.json_schema.schema"),
    ({"messages": MSG}, "model"),
])
def test_refusals_name_the_field(body: dict[str, object], param: str) -> None:
    with pytest.raises(ApiError) as info:
        parse_chat(body, 100)
    assert info.value.status == 400 and info.value.param == param


def test_completion_logprobs_is_a_count() -> None:
    req = parse_completion({"model": "m", "prompt": "x", "logprobs": 3}, 100)
    assert req.logprobs and req.top_logprobs == 3
    with pytest.raises(ApiError):
        parse_completion({"model": "m", "prompt": ["a", "b"]}, 100)


def test_classify_needs_labels_or_a_classifier() -> None:
    with pytest.raises(ApiError) as info:
        parse_classify({"model": "m", "texts": ["a"]}, 10)
    assert info.value.param == "labels"
    req = parse_classify({"model": "m", "texts": ["a"], "labels": [
        "pos", {"name": "neg", "description": "unhappy"}], "calibration": "none"}, 10)
    assert req.labels == [("pos", ""), ("neg", "unhappy")]
    assert req.options == {"calibration": "none"}


def test_token_track_releases_tokens_as_text_covers_them() -> None:
    track = TokenTrack()
    # "é" split over two tokens: the second token carries the character.
    for piece in (b"ab", b"\xc3", b"\xa9", b"cd"):
        track.add(TokenLogprob(0, piece, -1.0))
    first = track.take(2)
    assert [e.text for e in first] == ["ab"]
    rest = track.take(3)
    assert [e.text for e in rest] == ["", "é"]
    assert track.take(3) == []  # "cd" lies beyond the text (e.g. a held-back stop string)
