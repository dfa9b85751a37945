"""The LC-Rec JSON layout -> RecBole atomic files."""

import json

import pytest

from recbole_alphafuse import AlphaFuseError
from recbole_alphafuse.__main__ import main
from recbole_alphafuse.data.atomic import read_atomic
from recbole_alphafuse.data.convert import convert_lcrec


@pytest.fixture
def lcrec(tmp_path):
    source = tmp_path / "source"
    source.mkdir()
    (source / "Tiny.inter.json").write_text(json.dumps({"0": [2, 0, 1], "1": [1, 2]}))
    items = {
        "0": {"title": "Red\tstapler", "brand": "Acme"},
        "1": {"title": "Blue pen", "description": "smooth\nink"},
        "2": {"title": "", "brand": "Acme"},
    }
    (source / "Tiny.item.json").write_text(json.dumps(items))
    return source


def test_lcrec_keeps_order_and_every_text_field(lcrec, tmp_path):
    main(
        [
            "convert",
            "lcrec",
            "--input",
            str(lcrec),
            "--dataset",
            "tiny",
            "--data-path",
            str(tmp_path),
        ]
    )
    inter, types = read_atomic(tmp_path / "tiny" / "tiny.inter")
    assert types == {"user_id": "token", "item_id": "token", "timestamp": "float"}
    assert list(
        inter[inter.user_id == "0"].sort_values("timestamp", key=lambda t: t.astype(float)).item_id
    ) == ["2", "0", "1"]
    item, types = read_atomic(tmp_path / "tiny" / "tiny.item")
    assert list(types) == ["item_id", "title", "brand", "description"]
    row = item.set_index("item_id")
    assert row.loc["0", "title"] == "Red stapler" and row.loc["1", "description"] == "smooth ink"
    assert row.loc["1", "brand"] == ""


def test_lcrec_refuses_items_without_text_entry(lcrec, tmp_path):
    (lcrec / "Tiny.inter.json").write_text(json.dumps({"0": [7]}))
    with pytest.raises(AlphaFuseError, match=r"1 items of the .inter.json have no entry"):
        convert_lcrec(lcrec, tmp_path, "tiny")
    assert not (tmp_path / "tiny").exists()
