"""Malformed atomic files and JSON fed to embed, convert, split and a training run: each ends in
one clear error (an AlphaFuseError; on the command line one ``error:`` line, no traceback) and
leaves the data folder exactly as it was."""

import hashlib
import json
import re

import pytest
from conftest import FAST_CONFIG, SLICE

import recbole_alphafuse.data.embed as embed_module
from recbole_alphafuse import AlphaFuseError
from recbole_alphafuse.__main__ import main
from recbole_alphafuse.quick_start import run


def edit_lines(edit):
    def damage(path):
        lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
        path.write_text("".join(edit(lines)), encoding="utf-8")

    return damage


def edit_row(number, edit):
    """Edit file line ``number`` (1-based; the header is line 1)."""
    return edit_lines(
        lambda lines: [*lines[: number - 1], edit(lines[number - 1]), *lines[number:]]
    )


def cells(line):
    return line.rstrip("\n").split("\t")


EMPTY = edit_lines(lambda lines: [])
HEADER_ONLY = edit_lines(lambda lines: lines[:1])
UNTYPED_HEADER = edit_lines(
    lambda lines: ["\t".join(c.split(":")[0] for c in cells(lines[0])) + "\n", *lines[1:]]
)
DUPLICATE_ROW = edit_lines(lambda lines: [*lines, lines[1]])
EXTRA_FIELD = edit_row(4, lambda line: line.rstrip("\n") + "\textra\n")
SHORT_ROW = edit_row(4, lambda line: cells(line)[0] + "\n")

# (file suffix, damage, commands that read the file, message pattern)
CASES = {
    "itememb bad float": (
        "itememb",
        edit_row(4, lambda line: line.replace(" ", " 0.1x ", 1)),
        ("split", "run"),
        r"line 4 holds '0\.1x', which is not a number",
    ),
    "itememb short vector": (
        "itememb",
        edit_row(4, lambda line: line.rsplit(" ", 1)[0] + "\n"),
        ("split", "run"),
        r"line 4 has a vector of 383 numbers but line 2 has 384",
    ),
    "itememb long vector": (
        "itememb",
        edit_row(4, lambda line: line.rstrip("\n") + " 0.5\n"),
        ("split", "run"),
        r"line 4 has a vector of 385 numbers but line 2 has 384",
    ),
    "itememb empty vector": (
        "itememb",
        edit_row(4, lambda line: cells(line)[0] + "\t\n"),
        ("split", "run"),
        r"line 4 has an empty vector",
    ),
    "itememb duplicate token": (
        "itememb",
        DUPLICATE_ROW,
        ("split", "run"),
        r"repeats the item token '\w+' of line 2",
    ),
    "itememb empty file": ("itememb", EMPTY, ("split", "run"), r"has the header \[''\]"),
    "itememb header only": ("itememb", HEADER_ONLY, ("split", "run"), r"no rows after its header"),
    "itememb untyped header": (
        "itememb",
        UNTYPED_HEADER,
        ("split", "run"),
        r"has the header \['iid', 'item_emb'\]",
    ),
    "itememb missing column": (
        "itememb",
        edit_lines(lambda lines: [cells(line)[0] + "\n" for line in lines]),
        ("split", "run"),
        r"has the header \['iid:token'\]",
    ),
    "itememb extra field": (
        "itememb",
        EXTRA_FIELD,
        ("split", "run"),
        r"line 4 has 3 tab-separated fields",
    ),
    "itememb no vector": ("itememb", SHORT_ROW, ("split", "run"), r"line 4 has 1 tab-separated"),
    "item duplicate token": (
        "item",
        DUPLICATE_ROW,
        ("embed", "split", "run"),
        r"appears? on (more than one row|lines \[2, )",
    ),
    "item empty file": ("item", EMPTY, ("embed", "split", "run"), r"\.item is empty"),
    "item header only": (
        "item",
        HEADER_ONLY,
        ("embed", "split", "run"),
        r"(missing from ml-slice\.item|no rows after its header)",
    ),
    "item untyped header": (
        "item",
        UNTYPED_HEADER,
        ("embed", "split", "run"),
        r"header column 'item_id' has no ':type'",
    ),
    "item extra field": (
        "item",
        EXTRA_FIELD,
        ("embed", "split", "run"),
        r"more tab-separated fields than the header's 4",
    ),
    "item short row": (
        "item",
        SHORT_ROW,
        ("embed", "split", "run"),
        r"line 4: fewer tab-separated fields than the header's 4",
    ),
    "inter missing column": (
        "inter",
        edit_lines(lambda lines: ["\t".join(cells(line)[:3]) + "\n" for line in lines]),
        ("split", "run"),  # embed reads only the item ids
        r"has no field\(s\) \['timestamp'\]",
    ),
    "inter bad float": (
        "inter",
        edit_row(4, lambda line: "\t".join([*cells(line)[:3], "12x34"]) + "\n"),
        ("split", "run"),
        r"(line 4: the float field 'timestamp' holds '12x34'|non-numeric timestamp)",
    ),
    "inter empty file": ("inter", EMPTY, ("embed", "split", "run"), r"\.inter is empty"),
    "inter header only": (
        "inter",
        HEADER_ONLY,
        ("embed", "split", "run"),
        r"(no interactions|no rows after its header|0 users)",
    ),
    "inter untyped header": (
        "inter",
        UNTYPED_HEADER,
        ("embed", "split", "run"),
        r"header column 'user_id' has no ':type'",
    ),
    "inter extra field": (
        "inter",
        EXTRA_FIELD,
        ("embed", "split", "run"),
        r"more tab-separated fields than the header's 4",
    ),
    "inter short row": (
        "inter",
        SHORT_ROW,
        ("embed", "split", "run"),
        r"line 4: fewer tab-separated fields than the header's 4",
    ),
}


def snapshot(folder):
    """Every file under ``folder`` with a hash of its bytes."""
    return {
        str(path.relative_to(folder)): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(folder.rglob("*"))
        if path.is_file()
    }


def run_cli(argv, capsys):
    """Run the command line; return its one error line (failing the test on any other end)."""
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    message = str(exit_info.value.code)
    assert message.startswith("error: ") and "\n" not in message, message
    assert "Traceback" not in capsys.readouterr().err
    return message


@pytest.fixture
def no_encoding(data_copy, monkeypatch):
    """Fail loudly if a malformed input gets as far as encoding text (after the slice's own
    vectors were made)."""

    def encode_texts(*args, **kwargs):
        raise AssertionError("malformed input reached the encoder")

    monkeypatch.setattr(embed_module, "encode_texts", encode_texts)


@pytest.mark.parametrize(
    "case, command",
    [(case, command) for case, (_, _, commands, _) in CASES.items() for command in commands],
)
def test_malformed_atomic_file_fails_cleanly(
    case, command, data_copy, workdir, capsys, no_encoding
):
    suffix, damage, _, pattern = CASES[case]
    root, folder = data_copy
    damage(folder / f"{SLICE}.{suffix}")
    if command == "run" and suffix == "item":
        # The run reads the item text only to build missing vectors.
        (folder / f"{SLICE}.itememb").unlink()
    before = snapshot(root)
    if command == "run":
        config = {**FAST_CONFIG, "data_path": str(root), "epochs": 0}
        with pytest.raises(AlphaFuseError, match=pattern):
            run(model="AlphaFuseSASRec", dataset=SLICE, config_dict=config, saved=False)
        assert not list(workdir.glob("saved/*")), "no checkpoint is written"
    else:
        argv = {
            "embed": ["embed", "--dataset", SLICE],
            "split": ["split", "cold-start", "--dataset", SLICE],
        }[command]
        message = run_cli([*argv, "--data-path", str(root)], capsys)
        assert re.search(pattern, message), message
    assert snapshot(root) == before


LCREC_INTER = {"0": [2, 0, 1], "1": [1, 2]}
LCREC_ITEMS = {"0": {"title": "Red stapler"}, "1": {"title": "Blue pen"}, "2": {"title": "Ink"}}
LCREC_CASES = {
    "truncated inter": ("inter", json.dumps(LCREC_INTER)[:-3], r"Tiny\.inter\.json is not valid"),
    "truncated item": ("item", json.dumps(LCREC_ITEMS)[:-3], r"Tiny\.item\.json is not valid"),
    "not utf-8": ("item", b"\xff\xfe{}", r"Tiny\.item\.json is not valid JSON"),
    "inter is a list": ("inter", json.dumps([[2, 0, 1]]), r"must hold one non-empty JSON object"),
    "history not a list": ("inter", json.dumps({"0": 2}), r"mapping each user id to the list"),
    "item entry not an object": (
        "item",
        json.dumps({**LCREC_ITEMS, "2": "Ink"}),
        r"mapping each item id to an object",
    ),
    "empty object": ("inter", "{}", r"Tiny\.inter\.json must hold one non-empty JSON object"),
}


@pytest.mark.parametrize("case", LCREC_CASES)
def test_malformed_lcrec_json_fails_cleanly(case, tmp_path, capsys):
    which, text, pattern = LCREC_CASES[case]
    source = tmp_path / "source"
    source.mkdir()
    files = {"inter": json.dumps(LCREC_INTER), "item": json.dumps(LCREC_ITEMS), which: text}
    for name, content in files.items():
        path = source / f"Tiny.{name}.json"
        path.write_bytes(content if isinstance(content, bytes) else content.encode())
    root = tmp_path / "data"
    root.mkdir()
    message = run_cli(
        ["convert", "lcrec", "--input", str(source), "--dataset", "Tiny", "--data-path", str(root)],
        capsys,
    )
    assert re.search(pattern, message), message
    assert snapshot(root) == {} and not list(root.iterdir())


def test_well_formed_lcrec_json_still_converts(tmp_path, capsys):
    source = tmp_path / "source"
    source.mkdir()
    (source / "Tiny.inter.json").write_text(json.dumps(LCREC_INTER))
    (source / "Tiny.item.json").write_text(json.dumps(LCREC_ITEMS))
    main(
        [
            "convert",
            "lcrec",
            "--input",
            str(source),
            "--dataset",
            "Tiny",
            "--data-path",
            str(tmp_path),
        ]
    )
    assert (tmp_path / "Tiny" / "Tiny.inter").is_file()
