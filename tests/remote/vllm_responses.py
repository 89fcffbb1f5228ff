"""Responses in vLLM's documented format (OpenAI-compatible server, vLLM 0.6-0.8 docs).

Written by hand from vLLM's documentation and its OpenAI protocol models
(vllm/entrypoints/openai/protocol.py: CompletionResponse, CompletionLogProbs, TokenizeResponse,
ModelCard with max_model_len); we cannot run vLLM here (no GPU). Token ids and numbers are
made up but consistent: a prompt of 4 tokens echoed with one generated token.
"""

from __future__ import annotations

from typing import Any

MODELS: dict[str, Any] = {"object": "list", "data": [{
    "id": "Qwen/Qwen2.5-7B-Instruct", "object": "model", "created": 1733000000,
    "owned_by": "vllm", "root": "Qwen/Qwen2.5-7B-Instruct", "parent": None,
    "max_model_len": 32768, "permission": []}]}

VERSION: dict[str, Any] = {"version": "0.8.5"}

TOKENIZE: dict[str, Any] = {"count": 4, "max_model_len": 32768, "tokens": [785, 12884, 374, 6303]}


def echo_completion(prompts: list[list[int]]) -> dict[str, Any]:
    """/v1/completions with echo=true, logprobs=0, max_tokens=1 for a batch of token prompts.

    vLLM returns one choice per prompt; with echo, ``token_logprobs`` holds the prompt's
    tokens first (the first is null: nothing predicts it) and then the generated token.
    Here every prompt token after the first has log-probability -0.5 * its position, so a
    test can compute the expected sums.
    """
    choices = []
    for index, prompt in enumerate(prompts):
        values: list[float | None] = [None] + [-0.5 * i for i in range(1, len(prompt))]
        values.append(-0.1)  # the generated token
        tokens = [f"t{t}" for t in prompt] + ["<gen>"]
        choices.append({
            "index": index, "text": "".join(tokens), "finish_reason": "length",
            "stop_reason": None, "prompt_logprobs": None,
            "logprobs": {"tokens": tokens, "token_logprobs": values,
                         "top_logprobs": [None] + [{tok: v} for tok, v in
                                                   zip(tokens[1:], values[1:], strict=True)],
                         "text_offset": list(range(len(tokens)))},
        })
    return {"id": "cmpl-0", "object": "text_completion", "created": 1733000000,
            "model": "Qwen/Qwen2.5-7B-Instruct", "choices": choices,
            "usage": {"prompt_tokens": sum(len(p) for p in prompts),
                      "completion_tokens": len(prompts),
                      "total_tokens": sum(len(p) for p in prompts) + len(prompts)}}
