"""The Python that calls a running slmdesk server with the official `openai` client (printed
by `slmdesk serve`, shown by the Server tab)."""

OPENAI_SNIPPET = """\
from openai import OpenAI
client = OpenAI(base_url="{url}", api_key="{key}")
reply = client.chat.completions.create(
    model="{model}", messages=[{{"role": "user", "content": "Hello!"}}])
print(reply.choices[0].message.content)"""
