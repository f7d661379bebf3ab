"""Speed of the emergency detector: `.venv/bin/python bench/triage_detector.py`.

Times `assess` over the labelled messages and over 5,000-character messages (the longest a
patient may send), best of several runs, on one core. Prints a small table.
"""

from __future__ import annotations

import json
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from workers.triage.detector import assess  # noqa: E402

LABELLED = ROOT / "tests" / "triage" / "labelled_messages.jsonl"
ROUNDS = 5


def _per_call(texts: list[str]) -> list[float]:
    """Milliseconds per call for each text, the best of ROUNDS runs."""
    best = [float("inf")] * len(texts)
    for _ in range(ROUNDS):
        for index, text in enumerate(texts):
            started = time.perf_counter()
            assess(text)
            best[index] = min(best[index], (time.perf_counter() - started) * 1000)
    return best


def main() -> None:
    labelled = [json.loads(line)["text"] for line in LABELLED.read_text().splitlines() if line]
    routine = "Je voudrais le renouvellement de mon traitement habituel pour trois mois. "
    long_benign = (routine * 70)[:5000]
    long_buried = (routine * 70)[:4940] + " Depuis ce matin, douleur dans la poitrine."
    rows = [
        ("labelled messages", _per_call(labelled)),
        ("5,000 chars, routine", _per_call([long_benign] * 20)),
        ("5,000 chars, emergency buried at the end", _per_call([long_buried] * 20)),
    ]
    print("| messages | n | median ms | p99 ms | max ms |")
    print("|---|---|---|---|---|")
    for name, times in rows:
        ordered = sorted(times)
        p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
        print(
            f"| {name} | {len(times)} | {statistics.median(times):.3f} | {p99:.3f} "
            f"| {max(times):.3f} |"
        )


if __name__ == "__main__":
    main()
