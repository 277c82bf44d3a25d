"""Print the shell blocks of one section of docs/deploy.md, placeholders filled.

    python3 blocks.py DOC HEADING [SKIP_PREFIX ...] < substitutions.json

HEADING is a heading's text (without the #s); the section runs to the next
heading of the same or a higher level, so its subsections come with it. A
subsection whose heading starts with one of SKIP_PREFIX is left out (the
PostgreSQL store where the check uses SQLite). Substitutions are a JSON object
{"placeholder as written": "value"}; a ``<placeholder>`` left unfilled is an
error, so a new one in the document is noticed rather than run as text.
"""

from __future__ import annotations

import json
import re
import sys

UNFILLED = re.compile(r"<[a-z][a-zA-Z ,.'-]*>")


def section_blocks(text: str, heading: str, skip: list[str]) -> list[str]:
    blocks: list[str] = []
    level = 0  # the section's heading level once found
    skipping_level = 0
    in_block = False
    keep = False
    current: list[str] = []
    for line in text.splitlines():
        if line.startswith("```"):
            if in_block:
                if keep:
                    blocks.append("\n".join(current))
                in_block, current = False, []
            else:
                in_block = line.strip() in ("```sh", "```bash", "```shell")
                keep = in_block and level > 0 and skipping_level == 0
            continue
        if in_block:
            current.append(line)
            continue
        match = re.match(r"^(#+) (.*)$", line)
        if not match:
            continue
        depth, title = len(match.group(1)), match.group(2).strip()
        if level and depth <= level:
            break
        if skipping_level and depth <= skipping_level:
            skipping_level = 0
        if not level and title == heading:
            level = depth
        elif level and any(title.startswith(prefix) for prefix in skip):
            skipping_level = depth
    if not level:
        sys.exit(f"blocks.py: no heading {heading!r} in the document")
    return blocks


def main() -> None:
    doc, heading, *skip = sys.argv[1:]
    substitutions: dict[str, str] = json.load(sys.stdin)
    with open(doc, encoding="utf-8") as handle:
        text = handle.read()
    script = "\n\n".join(section_blocks(text, heading, skip))
    for placeholder, value in substitutions.items():
        script = script.replace(placeholder, value)
    unfilled = sorted(set(UNFILLED.findall(script)))
    if unfilled:
        sys.exit(f"blocks.py: section {heading!r}: placeholders without a value: {unfilled}")
    print(script)


if __name__ == "__main__":
    main()
