"""Decision and request ids: time-ordered UUIDs (version 7, RFC 9562) as 32 hex digits.

Every id is the primary key of an audit record. Random (version 4) keys land on random pages of
the key's index, so each commit rewrote pages all over an index that grows with the trail: at 60,000
records a 1,000-applicant commit took about three times as long as with these keys, which start
with the millisecond and so always land at the index's right-hand end.
"""

from __future__ import annotations

import os
import time

# The variant bits (0b10) over a random hex digit: its two low bits stay random.
_VARIANT = {digit: "89ab"[int(digit, 16) & 3] for digit in "0123456789abcdef"}


def new_ids(count: int) -> list[str]:
    """``count`` distinct UUIDv7 ids sharing the current millisecond, from one system call."""
    stamp = f"{time.time_ns() // 1_000_000:012x}"
    random_hex = os.urandom(10 * count).hex()
    ids = []
    for start in range(0, 20 * count, 20):
        r = random_hex[start : start + 20]
        # 48 bits of time, version 7, 12 random bits, variant, 62 random bits (2 + 60 here).
        ids.append(f"{stamp}7{r[:3]}{_VARIANT[r[3]]}{r[4:19]}")
    return ids


def new_id() -> str:
    """One UUIDv7 id."""
    return new_ids(1)[0]
