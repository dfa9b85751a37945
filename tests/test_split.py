"""The cold-start user split: user-disjoint benchmark files that RecBole runs with no extra flag."""

import pytest
import yaml
from conftest import FAST_CONFIG, SLICE
from recbole.data import data_preparation

from recbole_alphafuse import AlphaFuseError
from recbole_alphafuse.__main__ import main
from recbole_alphafuse.config import Config
from recbole_alphafuse.data.atomic import read_atomic
from recbole_alphafuse.data.prepare import prepare_dataset
from recbole_alphafuse.quick_start import create_dataset, run


@pytest.fixture
def tiny(tmp_path):
    """Ten users; user u has u + 1 interactions, written newest first to test the time order."""
    folder = tmp_path / "tiny"
    folder.mkdir()
    rows = ["user_id:token\titem_id:token\ttimestamp:float"]
    for user in range(10):
        for position in reversed(range(user + 1)):
            rows.append(f"u{user}\ti{user + position}\t{100 + position}")
    (folder / "tiny.inter").write_text("\n".join(rows) + "\n")
    items = ["item_id:token\ttitle:token_seq"] + [f"i{i}\ttitle {i}" for i in range(40)]
    (folder / "tiny.item").write_text("\n".join(items) + "\n")
    return tmp_path


def _split(root, *flags):
    main(["split", "cold-start", "--dataset", "tiny", "--data-path", str(root), *flags])


def _examples(root, split):
    frame, _ = read_atomic(root / "tiny-cold" / f"tiny-cold.{split}.inter")
    return frame


def test_users_are_disjoint_and_examples_follow_the_protocol(tiny):
    _split(tiny, "--ratios", "0.6,0.2,0.2", "--max-history", "3", "--seed", "1")
    splits = {split: _examples(tiny, split) for split in ("train", "valid", "test")}
    users = {split: set(frame["user_id"]) for split, frame in splits.items()}
    # u0 has one interaction and forms no example; the other 9 are split 5/2/2 (rounded shares).
    assert [len(users[s]) for s in ("train", "valid", "test")] == [5, 2, 2]
    assert not (users["train"] & users["valid"] or users["train"] & users["test"])
    assert not users["valid"] & users["test"]
    assert "u0" not in set.union(*users.values())
    for split in ("valid", "test"):
        frame = splits[split]
        assert len(frame) == len(users[split])  # one example per user
        for user, history, target in frame.itertuples(index=False):
            n = int(user[1:])
            assert target == f"i{2 * n}"  # the user's last item in time order
            assert history.split() == [f"i{n + p}" for p in range(max(0, n - 3), n)]
    train = splits["train"]
    for user in users["train"]:
        n = int(user[1:])
        rows = train[train["user_id"] == user]
        assert list(rows["item_id"]) == [f"i{n + p}" for p in range(1, n + 1)]
        assert [len(h.split()) for h in rows["item_id_list"]] == [
            min(p, 3) for p in range(1, n + 1)
        ]


def test_item_text_is_kept_for_used_items_only_and_settings_are_written(tiny):
    _split(tiny)
    folder = tiny / "tiny-cold"
    items, _ = read_atomic(folder / "tiny-cold.item")
    used = set()
    for split in ("train", "valid", "test"):
        frame = _examples(tiny, split)
        used |= set(frame["item_id"]) | {t for h in frame["item_id_list"] for t in h.split()}
    assert set(items["item_id"]) == used
    settings = yaml.safe_load((folder / "tiny-cold.yaml").read_text())
    assert settings["benchmark_filename"] == ["train", "valid", "test"]
    assert settings["MAX_ITEM_LIST_LENGTH"] == 10


@pytest.mark.parametrize(
    "flags, message",
    [
        (["--ratios", "0.8,0.1"], "three non-negative numbers"),
        (["--ratios", "0.8,0.3,0.1"], "summing to 1"),
        (["--ratios", "a,b,c"], "must look like"),
        (["--max-history", "0"], "at least 1"),
        (["--ratios", "0.98,0.01,0.01"], "too few"),
    ],
)
def test_bad_arguments_fail_clearly_and_write_nothing(tiny, flags, message, capsys):
    with pytest.raises(SystemExit) as stop:
        _split(tiny, *flags)
    assert message in str(stop.value)
    assert not (tiny / "tiny-cold").exists()
    assert [p.name for p in tiny.iterdir()] == ["tiny"]


def test_an_existing_split_is_not_overwritten(tiny):
    _split(tiny)
    before = (tiny / "tiny-cold" / "tiny-cold.test.inter").read_text()
    with pytest.raises(SystemExit, match="already exists"):
        _split(tiny, "--seed", "5")
    assert (tiny / "tiny-cold" / "tiny-cold.test.inter").read_text() == before


def test_cold_start_dataset_runs_with_no_extra_flag(data_copy, workdir):
    root, _ = data_copy
    main(["split", "cold-start", "--dataset", SLICE, "--data-path", str(root)])
    settings = {k: v for k, v in FAST_CONFIG.items() if k != "load_col"}
    settings.update(data_path=str(root), group_metrics=True)
    config = Config(model="AlphaFuseSASRec", dataset=f"{SLICE}-cold", config_dict=settings)
    train, valid, test = data_preparation(config, create_dataset(config))
    users = [set(d.dataset.inter_feat["user_id"].tolist()) for d in (train, valid, test)]
    assert [len(u) for u in users] == [48, 6, 6]  # 60 users, 80/10/10
    assert len(test.dataset) == 6 and not users[0] & users[2]

    result = run(model="AlphaFuseSASRec", dataset=f"{SLICE}-cold", config_dict=settings)
    metrics = result["test_result"]
    assert metrics["head_item/share"] + metrics.get("tail_item/share", 0) == pytest.approx(1.0)
    assert 0 <= metrics["ndcg@10"] <= 1


def test_dataset_settings_are_below_the_users(tiny):
    _split(tiny)
    config = Config(
        model="SASRec",
        dataset="tiny-cold",
        config_dict={"data_path": str(tiny), "MAX_ITEM_LIST_LENGTH": 4},
    )
    assert config["benchmark_filename"] == ["train", "valid", "test"]
    assert config["MAX_ITEM_LIST_LENGTH"] == 4
    (tiny / "tiny-cold" / "tiny-cold.train.inter").unlink()
    with pytest.raises(AlphaFuseError, match="tiny-cold.train.inter not found"):
        prepare_dataset(config)
