"""Copy-paste examples for calling the running server: the `openai` client and curl."""

from __future__ import annotations

import json
import shlex

from slmdesk.server.snippet import OPENAI_SNIPPET

NO_KEY = "not-needed"


def openai_snippet(base_url: str, token: str | None, model: str) -> str:
    """Python with the official `openai` package (the same snippet `slmdesk serve` prints)."""
    return OPENAI_SNIPPET.format(url=base_url, key=token or NO_KEY, model=model)


def curl_snippet(base_url: str, token: str | None, model: str) -> str:
    """A streamed-off chat completion with curl (shell-quoted)."""
    body = json.dumps({"model": model, "messages": [{"role": "user", "content": "Hello!"}]},
                      ensure_ascii=False)
    lines = [f"curl {shlex.quote(base_url + '/chat/completions')}"]
    if token:
        lines.append(f"  -H {shlex.quote('Authorization: Bearer ' + token)}")
    lines.append("  -H 'Content-Type: application/json'")
    lines.append(f"  -d {shlex.quote(body)}")
    return " \\\n".join(lines)
