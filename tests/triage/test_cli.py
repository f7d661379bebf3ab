"""`python -m workers.triage` as a real process: one JSON line out per line in, whatever comes."""

from __future__ import annotations

import json
import select
import subprocess
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
COMMAND = [sys.executable, "-m", "workers.triage"]
TIMEOUT_SECONDS = 30


def run(stdin: bytes) -> tuple[list[dict[str, Any]], subprocess.CompletedProcess[bytes]]:
    done = subprocess.run(
        COMMAND, input=stdin, capture_output=True, cwd=ROOT, timeout=TIMEOUT_SECONDS, check=False
    )
    return [json.loads(line) for line in done.stdout.splitlines()], done


def line(message: Any) -> bytes:
    return json.dumps(message).encode() + b"\n"


def test_one_answer_per_message_in_order() -> None:
    answers, done = run(
        line({"id": 1, "text": "jarrive pa a respiré"})
        + line({"id": "b", "text": "renouvellement de ma ventoline svp"})
        + line({"id": 3, "text": "je veux mourir, j'ai pris toutes mes boîtes"})
    )
    assert done.returncode == 0
    assert done.stderr == b""
    assert answers == [
        {"id": 1, "emergency": True, "categories": ["breathing"]},
        {"id": "b", "emergency": False, "categories": []},
        {"id": 3, "emergency": True, "categories": ["poisoning", "suicidal"]},
    ]


def test_ids_are_echoed_whatever_their_json_type() -> None:
    ids: list[Any] = [0, -7, 2.5, "x", "é", None, True, [1, "a"], {"thread": 4, "seq": 2}]
    answers, done = run(b"".join(line({"id": i, "text": "bonjour"}) for i in ids))
    assert done.returncode == 0
    assert [answer["id"] for answer in answers] == ids
    assert "id" in run(line({"text": "bonjour"}))[0][0]


def test_bad_lines_get_an_error_and_the_stream_goes_on() -> None:
    bad_lines = [
        b"not json\n",
        b'{"id": 1, "text": "unterminated\n',
        b"[1, 2]\n",
        b'{"id": 2}\n',
        b'{"id": 3, "text": 42}\n',
        b'{"id": 4, "text": null}\n',
        b'{"id": NaN, "text": "x"}\n',
        b'{"id": 1e999, "text": "x"}\n',
        b"\xff\xfe not utf-8\n",
        b"[" * 100_000 + b"\n",
    ]
    stdin = b"".join(bad + line({"id": "ok", "text": "bonjour"}) for bad in bad_lines)
    answers, done = run(stdin)
    assert done.returncode == 0
    assert len(answers) == 2 * len(bad_lines)
    errors, oks = answers[0::2], answers[1::2]
    assert all(set(error) == {"id", "error"} and error["error"] for error in errors)
    assert [error["id"] for error in errors] == [None, None, None, 2, 3, 4, None, None, None, None]
    assert oks == [{"id": "ok", "emergency": False, "categories": []}] * len(bad_lines)


def test_blank_lines_are_skipped() -> None:
    answers, done = run(b"\n   \n" + line({"id": 1, "text": "bonjour"}) + b"\r\n\n")
    assert done.returncode == 0
    assert answers == [{"id": 1, "emergency": False, "categories": []}]


def test_empty_input_and_missing_final_newline() -> None:
    assert run(b"")[0] == []
    answers, done = run(line({"id": 1, "text": "mon bébé ne respire plus"}).rstrip(b"\n"))
    assert done.returncode == 0
    assert answers == [{"id": 1, "emergency": True, "categories": ["breathing", "child_danger"]}]


def test_each_answer_is_flushed_before_the_next_line_arrives() -> None:
    with subprocess.Popen(
        COMMAND, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=ROOT
    ) as process:
        assert process.stdin is not None and process.stdout is not None
        for number, text in enumerate(["je veux mourir", "bonjour"]):
            process.stdin.write(line({"id": number, "text": text}))
            process.stdin.flush()
            readable, _, _ = select.select([process.stdout], [], [], TIMEOUT_SECONDS)
            assert readable, "no answer before the next line"
            assert json.loads(process.stdout.readline())["id"] == number
        process.stdin.close()
        assert process.wait(timeout=TIMEOUT_SECONDS) == 0
