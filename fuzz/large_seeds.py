#!/usr/bin/env python3
"""Writes seed inputs as large as max_body_bytes for one fuzz target into a directory.

The checked-in corpus is small inputs; these add the shapes that once made the work grow faster
than the body (style openers that never close, dense arrays), so that every fuzz run executes them
at full size and libFuzzer's -timeout turns a slow one into a failure. Generated, not checked in.

Usage: large_seeds.py TARGET DIRECTORY [MAX_BYTES]
"""

import json
import os
import sys

# The units repeated to fill a text: openers of each style, all three, code and link openers.
TEXT_UNITS = ["_a ", "*a ", "~a ", "*_~a ", "_a\n", "*a* ", "`a\n", "```a ", "<a ", "&amp;_a "]
# The pipeline and decode targets read their first byte as a choice: 3 is a slack-markup hook
# (bit 0) and application/json (bits 1 and up) for the pipeline, application/json for decode.
PICK = {"pipeline": 3, "decode": 1}


def fill(unit, size):
    return unit * (size // len(unit))


def json_bodies(size):
    """Request bodies of about `size` bytes: openers in text, attachments and fields, and dense arrays."""
    third = size // 3 - 64
    yield {"text": fill("_a ", size - 16)}
    yield {"text": fill("*_~a ", size - 16)}
    yield {"text": fill("_a ", third), "attachments": [{"text": fill("_a ", third), "fields": [{"title": "f", "value": fill("_a ", third)}]}]}
    yield {"text": "x", "attachments": [{}] * ((size - 40) // 3)}
    yield {"text": "x", "blocks": [0] * ((size - 40) // 2)}
    yield {"text": "x", "props": {"a": [0] * ((size - 40) // 2)}}


def seeds(target, size):
    if target == "translate":
        for unit in TEXT_UNITS:
            yield fill(unit, size).encode()
        return
    for body in json_bodies(size - 1):
        seed = bytes([PICK[target]]) + json.dumps(body, separators=(",", ":")).encode()
        assert len(seed) <= size, f"{len(seed)} bytes, over {size}"
        yield seed


def main():
    target, directory = sys.argv[1], sys.argv[2]
    size = int(sys.argv[3]) if len(sys.argv) > 3 else 300_000
    os.makedirs(directory, exist_ok=True)
    for i, seed in enumerate(seeds(target, size)):
        with open(os.path.join(directory, f"large-{i}"), "wb") as f:
            f.write(seed)


if __name__ == "__main__":
    main()
