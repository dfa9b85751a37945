"""MkDocs hooks: the parts of the site that are generated, so that they cannot drift.

- ``benchmarks/results/`` is published under ``results/``: each study's page with its raw files.
- ``<!-- settings: properties/...yaml -->`` in a page becomes the table of that yaml file's keys,
  defaults and comments.
- ``<!-- command-line -->`` becomes the ``--help`` of every command, as the parsers print it.
"""

import os
import re
import subprocess
import sys
from pathlib import Path

from mkdocs.structure.files import File

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results"
# A key line of a properties yaml: `key: value   # (type) meaning`.
KEY_LINE = re.compile(r"^(\w+):\s*(.*?)\s*(?:#\s*(?:\((\w+)\)\s*)?(.*))?$")
SETTINGS = re.compile(r"<!-- settings: (\S+) -->")
COMMANDS = [
    ["run"],
    ["tune"],
    ["config"],
    ["benchmark"],
    ["embed"],
    ["convert", "lcrec"],
    ["convert", "alphafuse"],
    ["convert", "amazon"],
    ["split", "cold-start"],
    ["export", "alphafuse"],
]


def on_files(files, config):
    for path in sorted(RESULTS.rglob("*")):
        if path.is_file() and path.suffix in {".md", ".png", ".csv", ".jsonl", ".log"}:
            relative = Path("results") / path.relative_to(RESULTS)
            files.append(File.generated(config, relative.as_posix(), abs_src_path=str(path)))
    return files


def settings_table(relative):
    """The keys of a properties yaml: name, default, type and comment. The comment lines that
    open the file describe the file; a later comment block describes the key under it, where
    that key has no comment of its own."""
    text = (ROOT / relative).read_text().splitlines()
    opening = []
    while text and text[0].startswith("#"):
        opening.append(text.pop(0).lstrip("# ").strip())
    rows, pending = [], []
    for line in text:
        if line.startswith("#"):
            pending.append(line.lstrip("# ").strip())
            continue
        match = KEY_LINE.match(line)
        if match:
            key, default, kind, meaning = match.groups()
            meaning = (meaning or " ".join(pending)).replace("|", "\\|")
            rows.append(f"| `{key}` | `{default or '~'}` | {kind or ''} | {meaning} |")
        pending = []
    lines = [f"`{relative}`" + (f": {' '.join(opening)}" if opening else ""), ""]
    lines += ["| key | default | type | meaning |", "|---|---|---|---|", *rows]
    return "\n".join(lines)


def command_help(words):
    environment = {**os.environ, "COLUMNS": "100"}
    result = subprocess.run(
        [sys.executable, "-m", "recbole_alphafuse", *words, "--help"],
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
        env=environment,
    )
    return result.stdout.rstrip()


def command_line_reference():
    sections = ["```text", command_help([]), "```"]
    for words in COMMANDS:
        sections += ["", f"## {' '.join(words)}", "", "```text", command_help(words), "```"]
    return "\n".join(sections)


def on_page_markdown(markdown, page, config, files):
    markdown = SETTINGS.sub(lambda match: settings_table(match.group(1)), markdown)
    if "<!-- command-line -->" in markdown:
        markdown = markdown.replace("<!-- command-line -->", command_line_reference())
    return markdown
