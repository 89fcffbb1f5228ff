"""chunks_up_to: read a byte count in bounded chunks (a download's body, a file's prefix)."""

from __future__ import annotations

from collections.abc import Callable, Iterator

CHUNK_BYTES = 1 << 20


def chunks_up_to(read: Callable[[int], bytes], limit: int) -> Iterator[bytes]:
    """The chunks ``read`` returns, each at most 1 MiB, until ``limit`` bytes or the end
    (an empty chunk)."""
    left = limit
    while left > 0:
        chunk = read(min(left, CHUNK_BYTES))
        if not chunk:
            return
        yield chunk
        left -= len(chunk)
