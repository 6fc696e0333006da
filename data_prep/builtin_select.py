"""Phonetically balanced selection of the built-in corpus's train sentences.

Greedy coverage over a pool of candidate sentences (the classic method of corpus design, e.g.
for CMU ARCTIC): each pick is the sentence with the largest weighted gain per phone, where the
gain counts occurrences that an under-covered unit still needs. Units and targets:
    every phone, stress mark and punctuation mark: PHONE_TARGET occurrences (weight
        PHONE_WEIGHT), so each phone comes out >= 20 times even in the train text alone;
    every diphone (two phones in a row, across word boundaries, not across punctuation; a
        tuple) that occurs in the pool: DIPHONE_TARGET occurrences (weight 1).
Gains only fall as the selection grows, so the lazy greedy search (re-score the best stale
candidate only) picks the same sentences as the plain one, in a fraction of the time. Once no
candidate adds anything the rest is filled in pool order, which keeps the word distribution
natural. The result is deterministic: ties go to the earlier candidate.
"""

from __future__ import annotations

import heapq
from collections import Counter

from ttsframe.text.base import PUNCTUATION, WORD_BOUNDARY

PHONE_TARGET = 30
PHONE_WEIGHT = 20.0
DIPHONE_TARGET = 3


def units(symbols: list[str], stress_marks: frozenset[str]) -> Counter:
    """Coverage units of one sentence: its phones, stress and punctuation marks (str), its diphones (tuples)."""
    found = Counter(s for s in symbols if s != WORD_BOUNDARY)
    phones = [s for s in symbols if s != WORD_BOUNDARY and s not in stress_marks]
    for a, b in zip(phones, phones[1:]):
        if a not in PUNCTUATION and b not in PUNCTUATION:
            found[(a, b)] += 1
    return found


def select(pool: list[list[str]], n: int, stress_marks: frozenset[str]) -> list[int]:
    """Indices of `n` pool sentences (symbol lists), covering first, in pick order."""
    if n > len(pool):
        raise ValueError(f"cannot select {n} sentences from a pool of {len(pool)}")
    counted = [units(seq, stress_marks) for seq in pool]
    lengths = [max(1, sum(1 for s in seq if s != WORD_BOUNDARY)) for seq in pool]
    have: Counter = Counter()

    def gain(i: int) -> float:
        total = 0.0
        for unit, c in counted[i].items():
            target, weight = (DIPHONE_TARGET, 1.0) if isinstance(unit, tuple) else (PHONE_TARGET, PHONE_WEIGHT)
            total += weight * min(c, max(0, target - have[unit]))
        return total / lengths[i]

    heap = [(-gain(i), i) for i in range(len(pool))]
    heapq.heapify(heap)
    picked: list[int] = []
    while heap and len(picked) < n:
        _, i = heapq.heappop(heap)
        fresh = gain(i)
        if heap and (-fresh, i) > heap[0]:
            heapq.heappush(heap, (-fresh, i))  # no longer the best: score it again later
            continue
        if fresh <= 0:
            break  # nothing adds coverage any more
        picked.append(i)
        have.update(counted[i])
    chosen = set(picked)
    picked += [i for i in range(len(pool)) if i not in chosen][: n - len(picked)]
    return picked
