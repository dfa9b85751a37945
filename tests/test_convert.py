"""Other dataset layouts (LC-Rec JSON, AlphaFuse DataFrames, raw Amazon) -> atomic files."""

import gzip
import json

import numpy as np
import pandas as pd
import pytest
import yaml
from conftest import SLICE

from recbole_alphafuse import AlphaFuseError
from recbole_alphafuse.__main__ import main
from recbole_alphafuse.config import Config
from recbole_alphafuse.data.atomic import read_atomic
from recbole_alphafuse.data.convert import convert_alphafuse, convert_amazon, convert_lcrec


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
    # The dataset's own settings load the order column, so RecBole needs no load_col from the user.
    config = Config(model="SASRec", dataset="tiny", config_dict={"data_path": str(tmp_path)})
    assert config["load_col"]["inter"] == ["user_id", "item_id", "timestamp"]


def test_converting_again_removes_the_stale_vectors(lcrec, tmp_path):
    convert_lcrec(lcrec, tmp_path, "tiny")
    stale = tmp_path / "tiny" / "tiny.itememb"
    stale.write_text("iid:token\titem_emb:float_seq\n0\t1 2\n")
    convert_lcrec(lcrec, tmp_path, "tiny")
    assert not stale.exists()


def test_lcrec_refuses_items_without_text_entry(lcrec, tmp_path):
    (lcrec / "Tiny.inter.json").write_text(json.dumps({"0": [7]}))
    with pytest.raises(AlphaFuseError, match=r"1 items of the .inter.json have no entry"):
        convert_lcrec(lcrec, tmp_path, "tiny")
    assert not (tmp_path / "tiny").exists()


# The AlphaFuse / DreamRec layout: 7 items (padding id 7), histories of up to 3 items.
ITEM_NUM, PAD = 7, 7
ALPHAFUSE_TRAIN = {
    "seq": [[PAD] * 3, [2, PAD, PAD], [2, 0, PAD], [2, 0, 4], [0, 4, 1]],
    # An empty history is stored as len_seq 1; len_seq may count items beyond seq_size.
    "len_seq": [1, 1, 2, 3, 5],
    "next": [2, 0, 4, 1, 3],
}
# DreamRec's files hold float ids.
ALPHAFUSE_VALID = {"seq": [[5.0, 3.0, PAD]], "len_seq": [2], "next": [1.0]}
ALPHAFUSE_TEST = {"seq": [[1, 5, PAD]], "len_seq": [2], "next": [3]}


def _language_vectors():
    vectors = np.arange(ITEM_NUM * 4, dtype=np.float64).reshape(ITEM_NUM, 4) / 8
    vectors[6] = np.nan  # item 6 is in no example: its vector is never read
    return vectors


@pytest.fixture
def alphafuse(tmp_path):
    source = tmp_path / "source"
    source.mkdir()
    for name, columns in (
        ("train_data.df", ALPHAFUSE_TRAIN),
        ("val_data.df", ALPHAFUSE_VALID),
        ("test_data.df", ALPHAFUSE_TEST),
        ("data_statis.df", {"seq_size": [3], "item_num": [ITEM_NUM]}),
    ):
        pd.DataFrame(columns).to_pickle(source / name)
    pd.to_pickle(list(_language_vectors()), source / "3small_emb.pickle")
    return source


def _edit(path, change):
    change(pd.read_pickle(path)).to_pickle(path)


def _nan_vector(folder, item):
    vectors = _language_vectors()
    vectors[item] = np.nan
    pd.to_pickle(vectors, folder / "3small_emb.pickle")


def test_alphafuse_examples_become_benchmark_files(alphafuse, tmp_path):
    main(
        ["convert", "alphafuse", "--input", str(alphafuse), "--dataset", "af"]
        + ["--data-path", str(tmp_path / "data")]
    )
    folder = tmp_path / "data" / "af"
    train, types = read_atomic(folder / "af.train.inter")
    assert types == {"user_id": "token", "item_id_list": "token_seq", "item_id": "token"}
    assert train.values.tolist() == [
        ["train-1", "2", "0"],
        ["train-2", "2 0", "4"],
        ["train-3", "2 0 4", "1"],
        ["train-4", "0 4 1", "3"],
    ]
    valid, _ = read_atomic(folder / "af.valid.inter")
    test, _ = read_atomic(folder / "af.test.inter")
    assert valid.values.tolist() == [["valid-0", "5 3", "1"]]
    assert test.values.tolist() == [["test-0", "1 5", "3"]]
    settings = yaml.safe_load((folder / "af.yaml").read_text())
    assert settings["MAX_ITEM_LIST_LENGTH"] == 3
    vectors, _ = read_atomic(folder / "af.itememb")
    assert vectors["iid"].tolist() == ["0", "1", "2", "3", "4", "5"]
    row = vectors.set_index("iid").loc["3", "item_emb"]
    assert np.allclose(np.array(row.split(), dtype=float), _language_vectors()[3])


def test_alphafuse_embeddings_option_picks_among_several(alphafuse, tmp_path):
    np.save(alphafuse / "other_emb.npy", _language_vectors()[:, :2])
    (alphafuse / "other_emb.pickle").write_bytes((alphafuse / "3small_emb.pickle").read_bytes())
    with pytest.raises(AlphaFuseError, match=r"exactly one \*_emb.pickle.*--embeddings"):
        convert_alphafuse(alphafuse, tmp_path / "data", "af")
    convert_alphafuse(alphafuse, tmp_path / "data", "af", embeddings=alphafuse / "other_emb.npy")
    vectors, _ = read_atomic(tmp_path / "data" / "af" / "af.itememb")
    assert vectors.set_index("iid").loc["3", "item_emb"] == "1.5 1.625"


ALPHAFUSE_DAMAGES = {
    "missing file": (lambda d: (d / "val_data.df").unlink(), r"lacks \['val_data.df'\]"),
    "no embeddings": (
        lambda d: (d / "3small_emb.pickle").unlink(),
        r"exactly one \*_emb.pickle .* found \[\]",
    ),
    "missing column": (
        lambda d: _edit(d / "test_data.df", lambda f: f.drop(columns="len_seq")),
        r"test_data.df lacks the column\(s\) \['len_seq'\]",
    ),
    "target out of range": (
        lambda d: _edit(d / "train_data.df", lambda f: f.assign(next=[2, 0, 4, 1, ITEM_NUM])),
        r"column next holds ids outside \[0, 6\] such as \[7\]",
    ),
    "history id out of range": (
        lambda d: _edit(d / "test_data.df", lambda f: f.assign(seq=[[1, 9, PAD]])),
        r"column seq holds ids outside \[0, 7\] such as \[9\]",
    ),
    "wrong len_seq": (
        lambda d: _edit(d / "test_data.df", lambda f: f.assign(len_seq=[1])),
        r"row 0 has len_seq=1 but 2 non-padding ids",
    ),
    "short seq": (
        lambda d: _edit(d / "val_data.df", lambda f: f.assign(seq=[[5, 3]])),
        r"row 0 has a seq of 2 ids",
    ),
    "embedding rows": (
        lambda d: pd.to_pickle(_language_vectors()[:6], d / "3small_emb.pickle"),
        r"has 6 rows but data_statis.df says item_num=7",
    ),
    "NaN vector": (lambda d: _nan_vector(d, 4), r"1 items have NaN/inf vectors .*\['4'\]"),
}


@pytest.mark.parametrize("damage", ALPHAFUSE_DAMAGES, ids=list(ALPHAFUSE_DAMAGES))
def test_alphafuse_errors_leave_no_dataset(alphafuse, tmp_path, damage):
    change, message = ALPHAFUSE_DAMAGES[damage]
    change(alphafuse)
    with pytest.raises(AlphaFuseError, match=message):
        convert_alphafuse(alphafuse, tmp_path / "data", "af")
    assert not (tmp_path / "data").exists() or not list((tmp_path / "data").iterdir())


# Raw Amazon files. Item D has no metadata and E no text; (u1, A) is reviewed twice.
REVIEWS = [
    ("u1", "A", 100),
    ("u1", "B", 50),
    ("u2", "A", 100),  # the same time as the first line: file order decides
    ("u2", "B", 200),
    ("u1", "A", 300),
    ("u3", "A", 10),
    ("u3", "D", 20),
    ("u4", "C", 5),
    ("u4", "B", 400),
    ("u2", "E", 60),
]
META_LINES = [
    json.dumps(
        {
            "asin": "A",
            "title": "Red\tpen",
            "brand": "Acme",
            "category": ["Office", "Pens"],
            "description": ["Smooth", "ink\nflow"],
        }
    ),
    # The older files: Python literals with a "categories" list of lists.
    repr({"asin": "B", "title": "Blue pen", "categories": [["Office", "Pens"]]}),
    json.dumps({"asin": "C", "title": "Clip"}),
    json.dumps({"asin": "E", "title": "", "description": []}),
    json.dumps({"asin": "A", "title": "a later duplicate"}),
]


def _review_line(user, item, time):
    return json.dumps({"reviewerID": user, "asin": item, "unixReviewTime": time, "overall": 4.0})


@pytest.fixture
def amazon(tmp_path):
    reviews = tmp_path / "Office.json.gz"
    with gzip.open(reviews, "wt", encoding="utf-8") as f:
        f.write("\n".join(_review_line(*review) for review in REVIEWS) + "\n")
    meta = tmp_path / "meta_Office.json"
    meta.write_text("\n".join(META_LINES) + "\n")
    return reviews, meta


@pytest.mark.parametrize(
    "kcore, expected",
    [
        # u3 and C fall below 2 first; then u4 does, with only B left.
        (2, [("u1", "B", 50), ("u1", "A", 100), ("u2", "A", 100), ("u2", "B", 200)]),
        (
            1,
            [
                ("u4", "C", 5),
                ("u3", "A", 10),
                ("u1", "B", 50),
                ("u1", "A", 100),
                ("u2", "A", 100),
                ("u2", "B", 200),
                ("u4", "B", 400),
            ],
        ),
    ],
)
def test_amazon_k_core_in_time_order(amazon, tmp_path, kcore, expected):
    reviews, meta = amazon
    main(
        ["convert", "amazon", "--reviews", str(reviews), "--meta", str(meta)]
        + ["--dataset", "office", "--data-path", str(tmp_path / "data"), "--kcore", str(kcore)]
    )
    inter, types = read_atomic(tmp_path / "data" / "office" / "office.inter")
    assert types == {
        "user_id": "token",
        "item_id": "token",
        "rating": "float",
        "timestamp": "float",
    }
    assert [(u, i, int(t)) for u, i, _, t in inter.values] == expected
    item, types = read_atomic(tmp_path / "data" / "office" / "office.item")
    assert list(types) == ["item_id", "title", "brand", "category", "description"]
    assert item["item_id"].tolist() == list(dict.fromkeys(i for _, i, _ in expected))
    rows = item.set_index("item_id")
    assert rows.loc["A"].tolist() == ["Red pen", "Acme", "Office, Pens", "Smooth ink flow"]
    assert rows.loc["B"].tolist() == ["Blue pen", "", "Office, Pens", ""]


def test_amazon_nothing_left_in_the_core(amazon, tmp_path):
    with pytest.raises(AlphaFuseError, match="no interaction is left in the 3-core.*--kcore"):
        convert_amazon(*amazon, tmp_path / "data", "office", kcore=3)
    assert not (tmp_path / "data").exists()


def test_amazon_bad_line_is_named(amazon, tmp_path):
    reviews, meta = amazon
    lines = meta.read_text().splitlines()
    lines[2] = '{"asin": "C", "title": '
    meta.write_text("\n".join(lines) + "\n")
    with pytest.raises(AlphaFuseError, match=r"meta_Office.json, line 3: neither JSON nor"):
        convert_amazon(reviews, meta, tmp_path / "data", "office")
    assert not (tmp_path / "data").exists()


def test_amazon_missing_fields_are_named(amazon, tmp_path):
    _, meta = amazon
    reviews = tmp_path / "reviews.json"
    reviews.write_text(
        _review_line("u1", "A", 1) + "\n" + json.dumps({"reviewerID": "u1", "asin": "B"}) + "\n"
    )
    with pytest.raises(AlphaFuseError, match=r"line 2: a review lacks \['unixReviewTime', 'over"):
        convert_amazon(reviews, meta, tmp_path / "data", "office")
    meta.write_text(META_LINES[0] + "\n" + json.dumps({"title": "no asin"}) + "\n")
    with pytest.raises(AlphaFuseError, match=r"meta_Office.json, line 2: .* lacks 'asin'"):
        convert_amazon(amazon[0], meta, tmp_path / "data", "office")
    assert not (tmp_path / "data").exists()


def test_export_writes_the_split_that_convert_alphafuse_reads_back(data_copy, workdir):
    root, _ = data_copy
    main(["split", "cold-start", "--dataset", SLICE, "--data-path", str(root)])
    cold = f"{SLICE}-cold"
    exported = workdir / "official"
    main(
        ["export", "alphafuse", "--dataset", cold, "--data-path", str(root)]
        + ["--output", str(exported)]
    )
    statistics = pd.read_pickle(exported / "data_statis.df")
    seq_size, item_num = int(statistics["seq_size"][0]), int(statistics["item_num"][0])
    train = pd.read_pickle(exported / "train_data.df")
    # Newest item last, padding first, len_seq counting the real items.
    for seq, length in zip(train["seq"], train["len_seq"]):
        assert len(seq) == seq_size and seq[: seq_size - length] == [item_num] * (seq_size - length)
        assert item_num not in seq[seq_size - length :]
    tokens = (exported / "item_tokens.txt").read_text().split()
    assert len(tokens) == item_num == len(pd.read_pickle(exported / "language_emb.pickle"))

    main(
        ["convert", "alphafuse", "--input", str(exported), "--dataset", "back"]
        + ["--data-path", str(root)]
    )
    source_vectors, _ = read_atomic(root / cold / f"{cold}.itememb")
    source_vectors = source_vectors.set_index("iid")["item_emb"]
    back_vectors, _ = read_atomic(root / "back" / "back.itememb")
    for iid, vector in zip(back_vectors["iid"], back_vectors["item_emb"]):
        assert np.allclose(
            np.array(vector.split(), dtype=float),
            np.array(source_vectors[tokens[int(iid)]].split(), dtype=float),
            atol=1e-6,
        )
    for split in ("train", "valid", "test"):
        original, _ = read_atomic(root / cold / f"{cold}.{split}.inter")
        again, _ = read_atomic(root / "back" / f"back.{split}.inter")
        as_tokens = sorted(
            (" ".join(tokens[int(i)] for i in history.split()), tokens[int(target)])
            for history, target in zip(again["item_id_list"], again["item_id"])
        )
        assert as_tokens == sorted(zip(original["item_id_list"], original["item_id"]))


def test_export_refuses_an_existing_output_and_leaves_it_alone(data_copy, workdir):
    root, _ = data_copy
    (workdir / "official").mkdir()
    with pytest.raises(SystemExit, match="official already exists"):
        main(
            ["export", "alphafuse", "--dataset", SLICE, "--data-path", str(root)]
            + ["--output", str(workdir / "official")]
        )
    assert not any((workdir / "official").iterdir())
