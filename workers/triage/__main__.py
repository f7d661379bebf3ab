"""`python -m workers.triage`: assess JSON lines from stdin, one JSON line out per line in.

Input lines are `{"id": ..., "text": "..."}`; each answer is `{"id": ..., "emergency": bool,
"categories": [...]}`, flushed at once so that a caller can stream. The id is echoed unchanged.
A line that cannot be assessed gets `{"id": <id or null>, "error": "<reason>"}` and the stream
goes on: one bad line must never stop the triage of the others. Blank lines are skipped.
"""

from __future__ import annotations

import json
import math
import sys
from typing import IO, Any

from workers.triage.detector import assess


def _reject_constant(name: str) -> Any:
    # NaN and Infinity are not JSON; echoing them back would produce invalid output.
    raise ValueError(f"{name} is not valid JSON")


def _finite_float(literal: str) -> float:
    value = float(literal)
    if not math.isfinite(value):
        _reject_constant(literal)  # 1e400 would come back as Infinity
    return value


def answer(line: bytes) -> dict[str, Any]:
    """The answer to one input line (without its newline)."""
    try:
        message = json.loads(
            line.decode("utf-8"), parse_constant=_reject_constant, parse_float=_finite_float
        )
    except UnicodeDecodeError:
        return {"id": None, "error": "line is not valid UTF-8"}
    except (ValueError, RecursionError) as error:
        return {"id": None, "error": f"invalid JSON: {error}"}
    if not isinstance(message, dict):
        return {"id": None, "error": "expected a JSON object"}
    identifier = message.get("id")
    text = message.get("text")
    if not isinstance(text, str):
        reason = "missing text" if "text" not in message else "text must be a string"
        return {"id": identifier, "error": reason}
    assessment = assess(text)
    return {
        "id": identifier,
        "emergency": assessment.emergency,
        "categories": list(assessment.categories),
    }


def main(source: IO[bytes], sink: IO[bytes]) -> int:
    """Answer every non-blank line of `source` on `sink`, in order; 0 at end of input."""
    for line in source:
        if not line.strip():
            continue
        sink.write(json.dumps(answer(line.rstrip(b"\r\n"))).encode("utf-8") + b"\n")
        sink.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.stdin.buffer, sys.stdout.buffer))
