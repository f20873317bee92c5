import os
import tarfile

import pytest

from pipelines.core.shards import ShardReadError, ShardWriter, iter_shard_samples, tar_size
from tests.pipelines.fixtures import make_sample


def test_count_bound_splits_shards_with_deterministic_names(tmp_path):
    with ShardWriter(str(tmp_path), prefix="part", max_count=3) as writer:
        for index in range(7):
            writer.write(make_sample(index))
    assert writer.shards == ["part-000000.tar", "part-000001.tar", "part-000002.tar"]
    counts = [len(list(iter_shard_samples(str(tmp_path / name)))) for name in writer.shards]
    assert counts == [3, 3, 1]
    assert [row["shard"] for row in writer.rows] == ["part-000000.tar"] * 3 + \
        ["part-000001.tar"] * 3 + ["part-000002.tar"]


def test_size_bound_closes_a_shard_before_it_overflows(tmp_path):
    sample_size = tar_size(make_sample(0).to_wds())
    with ShardWriter(str(tmp_path), max_bytes=int(sample_size * 2.5)) as writer:
        for index in range(6):
            writer.write(make_sample(index))
    assert len(writer.shards) == 3
    for name in writer.shards:  # tar end blocks and record padding come on top
        assert os.path.getsize(tmp_path / name) <= sample_size * 2.5 + 10240


def test_open_shard_is_invisible_until_complete(tmp_path):
    writer = ShardWriter(str(tmp_path), prefix="s", max_count=2)
    writer.write(make_sample(0))
    visible = [n for n in os.listdir(tmp_path) if n.endswith(".tar") and not n.startswith(".")]
    assert visible == []  # only the temporary file exists
    writer.write(make_sample(1))
    writer.write(make_sample(2))  # rolls over: the first shard is renamed into place
    visible = sorted(n for n in os.listdir(tmp_path) if not n.startswith("."))
    assert visible == ["s-000000.tar"]
    writer.close()
    assert sorted(os.listdir(tmp_path)) == ["s-000000.tar", "s-000001.tar"]


def test_abort_leaves_nothing_behind(tmp_path):
    writer = ShardWriter(str(tmp_path))
    writer.write(make_sample(0))
    writer.abort()
    assert os.listdir(tmp_path) == []


def test_same_samples_give_byte_identical_shards(tmp_path):
    for sub in ("a", "b"):
        with ShardWriter(str(tmp_path / sub)) as writer:
            for index in range(4):
                writer.write(make_sample(index))
    assert (tmp_path / "a" / "shard-000000.tar").read_bytes() == \
        (tmp_path / "b" / "shard-000000.tar").read_bytes()


def test_reading_a_truncated_shard_raises_a_clear_error(tmp_path):
    with ShardWriter(str(tmp_path)) as writer:
        for index in range(3):
            writer.write(make_sample(index))
    path = tmp_path / "shard-000000.tar"
    path.write_bytes(path.read_bytes()[:700])
    with pytest.raises(ShardReadError, match="shard-000000.tar"):
        list(iter_shard_samples(str(path)))


def test_members_follow_webdataset_naming(tmp_path):
    sample = make_sample(5)
    with ShardWriter(str(tmp_path)) as writer:
        writer.write(sample)
    with tarfile.open(tmp_path / "shard-000000.tar") as tar:
        names = tar.getnames()
    # md/html are always written (empty when absent): see pipelines.core.schema
    assert names == [f"{sample.key}.{ext}" for ext in ("png", "txt", "md", "html", "json")]
