"""Recall and specificity on the labelled patient messages (labelled_messages.jsonl).

The set was written as patients write, before the detector. Splits: "tuning" (failures looked
at while building the lexicon), "holdout" (about a quarter of the first set, set aside),
"blind-1" to "blind-3" (batches written after each lexicon draft and scored once before fixing
it, the honest estimate of how the detector does on wording it has never seen; their first-pass
scores are in the triage helper report), "blind-a" (220 messages written by someone who never saw
the lexicon; first pass recall 0.617, before the co-occurrence rules), "paraphrase" (new
wordings of blind-a's missed situations, written to check that each new rule generalises beyond
the sentence that motivated it), "blind-b" (160 messages by someone who never saw the lexicon;
first pass recall 0.776, specificity 0.973), "paraphrase-2" (new wordings of blind-b's missed
situations, lay-wording probes per category and hard negatives, written before the fixes for
blind-b), "blind-c" (200 messages by someone who never saw the lexicon; first pass recall 0.891,
specificity 0.911), "paraphrase-3" (new wordings of blind-c's missed situations and near
misses, written before the fixes; first pass recall 0.388, specificity 0.677), "blind-d" (200
messages by someone who never saw the lexicon; first pass recall 0.855, specificity 0.956) and
"paraphrase-4" (new wordings of blind-d's missed concepts, suicidal-wording probes and near
misses, written before the matching fixes; first pass recall 0.367, specificity 0.833 on the
first 78; the later batches of fresh suicidal probes scored 11/18, 2/12 and 6/12 (1/8 for
suicidal) before their fixes).
scripts/triage-metrics prints the figures per split.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from workers.triage.detector import CATEGORIES, assess

SET_PATH = Path(__file__).with_name("labelled_messages.jsonl")
MESSAGES: list[dict[str, Any]] = [
    json.loads(row) for row in SET_PATH.read_text(encoding="utf-8").splitlines() if row.strip()
]
SPLITS = {
    "tuning",
    "holdout",
    "blind-1",
    "blind-2",
    "blind-3",
    "blind-a",
    "paraphrase",
    "blind-b",
    "paraphrase-2",
    "blind-c",
    "paraphrase-3",
    "blind-d",
    "paraphrase-4",
}


def test_messages_are_well_formed() -> None:
    for message in MESSAGES:
        assert set(message) <= {"text", "emergency", "categories", "note", "split"}, message
        assert isinstance(message["text"], str) and message["text"].strip()
        assert message["split"] in SPLITS
        assert message["emergency"] == bool(message["categories"]), message
        assert set(message["categories"]) <= set(CATEGORIES), message
    texts = [message["text"] for message in MESSAGES]
    assert len(texts) == len(set(texts)), "duplicate messages"


def test_composition() -> None:
    emergencies = [m for m in MESSAGES if m["emergency"]]
    assert len(MESSAGES) >= 260
    assert len(emergencies) >= 110
    assert len(MESSAGES) - len(emergencies) >= 120
    per_category = Counter(category for m in emergencies for category in m["categories"])
    assert all(per_category[category] >= 5 for category in CATEGORIES), per_category
    first_set = [m for m in MESSAGES if m["split"] in ("tuning", "holdout")]
    holdout = [m for m in first_set if m["split"] == "holdout"]
    assert 0.2 <= len(holdout) / len(first_set) <= 0.3


def test_recall_and_specificity() -> None:
    missed, false_alarms = [], []
    for message in MESSAGES:
        detected = assess(message["text"]).emergency
        if message["emergency"] and not detected:
            missed.append(message["text"])
        elif detected and not message["emergency"]:
            false_alarms.append(message["text"])
    emergencies = sum(m["emergency"] for m in MESSAGES)
    recall = 1 - len(missed) / emergencies
    specificity = 1 - len(false_alarms) / (len(MESSAGES) - emergencies)
    assert recall >= 0.99, f"recall {recall:.3f}, missed: {missed}"
    assert specificity >= 0.95, f"specificity {specificity:.3f}, false alarms: {false_alarms}"


@pytest.mark.parametrize("category", CATEGORIES)
def test_category_recall(category: str) -> None:
    expected = [m for m in MESSAGES if category in m["categories"]]
    missed = [m["text"] for m in expected if category not in assess(m["text"]).categories]
    assert not missed, f"{category}: {len(expected) - len(missed)}/{len(expected)}, missed {missed}"
