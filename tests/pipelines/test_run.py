"""The run directory contract: resumable, accounted, readable by upstream tools."""

import os
import signal
import subprocess
import sys
import tarfile
import textwrap
import time

import pyarrow.parquet as pq
import pytest

from pipelines.core.audit import audit_run
from pipelines.images.pipeline import image_refs
from pipelines.core.run_dir import RunDir, RunDirError
from pipelines.core.runner import retry, run_pipeline
from tests.pipelines.fixtures import write_images

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


@pytest.fixture(scope="module")
def image_run(tmp_path_factory):
    base = tmp_path_factory.mktemp("images")
    paths = write_images(str(base / "in"), 9)
    (base / "in" / "broken.png").write_bytes(b"\x89PNG not really")
    tiny = write_images(str(base / "tiny"), 1, size=4)[0]
    (base / "in" / "tiny.png").write_bytes(open(tiny, "rb").read())
    refs = image_refs(sorted(str(p) for p in (base / "in").iterdir()))
    out = str(base / "run")
    stats = run_pipeline("images", refs, {"min_side": 16}, out, task_size=3,
                         max_count=4)
    return out, stats, paths


def test_every_input_is_accounted_for(image_run):
    out, stats, _ = image_run
    assert (stats["inputs"], stats["written"], stats["dropped"], stats["errors"]) == (11, 9, 1, 1)
    report = audit_run(out)
    assert report.ok, report
    assert report.errors_by_reason == {"LoadImages:UnidentifiedImageError": 1}
    assert report.dropped_by_reason == {"LoadImages:too_small": 1}
    assert os.path.exists(os.path.join(out, "_SUCCESS"))


def test_batched_labeling_keeps_every_task_whole(tmp_path):
    # Several tasks in one bundle, drops and errors passing the label stage's held batch.
    paths = write_images(str(tmp_path / "in"), 5)
    (tmp_path / "in" / "broken.png").write_bytes(b"not an image")
    tiny = write_images(str(tmp_path / "tiny"), 1, size=4)[0]
    refs = image_refs(sorted(paths + [tiny, str(tmp_path / "in" / "broken.png")]))
    out = str(tmp_path / "run")
    stats = run_pipeline("images", refs, {"label": True}, out, task_size=2)
    assert (stats["written"], stats["dropped"], stats["errors"]) == (5, 1, 1)
    assert audit_run(out).ok
    assert all(s.meta["taxonomy"]["version"] for s in RunDir(out).iter_samples())


def test_manifest_matches_samples(image_run):
    out, _, _ = image_run
    run = RunDir(out)
    rows = run.manifest().to_pylist()
    samples = list(run.iter_samples())
    assert sorted(r["key"] for r in rows) == sorted(s.key for s in samples)
    assert all(r["image_sha256"] and r["bytes"] > 0 for r in rows)


def test_audit_catches_a_deleted_sample(image_run, tmp_path):
    out = _copy_run(image_run[0], tmp_path)
    shard = sorted(n for n in os.listdir(out) if n.endswith(".tar"))[0]
    _rewrite_tar(os.path.join(out, shard), drop_first_group=True)
    report = audit_run(out)
    assert not report.ok
    assert any("not in the shard" in p for p in report.shard_problems)
    cli = subprocess.run([sys.executable, "-m", "pipelines.cli", "audit", out],
                         capture_output=True, text=True, cwd=ROOT)
    assert cli.returncode == 1 and "FAILED" in cli.stdout


def test_audit_catches_a_corrupted_shard(image_run, tmp_path):
    out = _copy_run(image_run[0], tmp_path)
    shard = os.path.join(out, sorted(n for n in os.listdir(out) if n.endswith(".tar"))[0])
    data = bytearray(open(shard, "rb").read())
    data[100:600] = b"\x00" * 500  # wipes the first member's header
    open(shard, "wb").write(bytes(data))
    report = audit_run(out)
    assert not report.ok and report.shard_problems


def test_audit_catches_an_unaccounted_input(image_run, tmp_path):
    out = _copy_run(image_run[0], tmp_path)
    table = pq.read_table(os.path.join(out, "outcomes.parquet"))
    pq.write_table(table.slice(1), os.path.join(out, "outcomes.parquet"))
    report = audit_run(out, verify_shards=False)
    assert len(report.unaccounted) == 1 and not report.ok


def test_retry_reruns_only_failed_items_and_merges(tmp_path):
    paths = write_images(str(tmp_path / "in"), 4)
    broken = tmp_path / "in" / "later.png"
    broken.write_bytes(b"not yet an image")
    out = str(tmp_path / "run")
    refs = image_refs(sorted(paths + [str(broken)]))
    first = run_pipeline("images", refs, {}, out, task_size=2)
    assert first["errors"] == 1 and first["written"] == 4
    shards_before = sorted(n for n in os.listdir(out) if n.endswith(".tar"))
    fixed = write_images(str(tmp_path / "fix"), 1)[0]
    broken.write_bytes(open(fixed, "rb").read())  # the cause went away (say, an outage)
    second = retry(out)
    assert (second["written"], second["errors"], second["inputs"]) == (5, 0, 5)
    shards_after = sorted(n for n in os.listdir(out) if n.endswith(".tar"))
    assert set(shards_before) < set(shards_after)  # old shards untouched, one new shard
    assert [n for n in shards_after if n not in shards_before][0].startswith("images-r1-")
    assert audit_run(out).ok


def test_rerun_of_a_finished_run_changes_nothing(image_run):
    out, stats, _ = image_run
    refs = RunDir(out).input_refs()
    before = RunDir(out).manifest().to_pylist()
    again = run_pipeline("images", refs, {"min_side": 16}, out, task_size=3, max_count=4)
    assert again["written"] == stats["written"]
    assert RunDir(out).manifest().to_pylist() == before


def test_different_inputs_into_the_same_run_dir_are_refused(image_run, tmp_path):
    out = _copy_run(image_run[0], tmp_path)
    refs = image_refs(write_images(str(tmp_path / "other"), 2))
    with pytest.raises(RunDirError, match="different run"):
        run_pipeline("images", refs, {}, out)


def test_readers_refuse_unfinished_runs(image_run, tmp_path):
    out = _copy_run(image_run[0], tmp_path)
    os.remove(os.path.join(out, "_SUCCESS"))
    with pytest.raises(RunDirError, match="not finished"):
        RunDir(out).require_complete()


KILL_DRIVER = textwrap.dedent("""
    import sys, time
    sys.path.insert(0, {tests!r})
    from pipelines.core import runner
    from pipelines.images.pipeline import LoadImagesFn, image_refs

    class SlowLoadImagesFn(LoadImagesFn):
        def process_sample(self, seed):
            time.sleep(0.15)
            yield from super().process_sample(seed)

    def build_stages(config):
        return [SlowLoadImagesFn()]

    runner.PIPELINES["images"] = "__main__:build_stages"
    import glob
    refs = image_refs(sorted(glob.glob({images!r} + "/*.png")))
    runner.run_pipeline("images", refs, {{}}, sys.argv[1], task_size=2, max_count=3)
""")


@pytest.mark.slow
def test_killed_run_rerun_gives_the_same_samples_without_duplicates(tmp_path):
    write_images(str(tmp_path / "in"), 24)
    driver = tmp_path / "driver.py"
    driver.write_text(KILL_DRIVER.format(tests=ROOT, images=str(tmp_path / "in")))
    env = {**os.environ, "PYTHONPATH": ROOT}

    clean = str(tmp_path / "clean")
    subprocess.run([sys.executable, str(driver), clean], check=True, env=env,
                   capture_output=True)

    killed = str(tmp_path / "killed")
    proc = subprocess.Popen([sys.executable, str(driver), killed], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    while time.time() < deadline:
        tasks_dir = os.path.join(killed, "tasks")
        done = [n for n in os.listdir(tasks_dir) if n.endswith(".json")] \
            if os.path.isdir(tasks_dir) else []
        if len(done) >= 2:
            break
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not os.path.exists(os.path.join(killed, "_SUCCESS")), "run finished before the kill"
    done_at_kill = len([n for n in os.listdir(os.path.join(killed, "tasks"))
                        if n.endswith(".json")])
    assert 2 <= done_at_kill < 12

    rerun = subprocess.run([sys.executable, str(driver), killed], env=env,
                           capture_output=True, text=True)
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    manifest = lambda d: sorted((r["key"], r["shard"], r["image_sha256"])  # noqa: E731
                                for r in RunDir(d).manifest().to_pylist())
    assert manifest(killed) == manifest(clean)
    assert len({k for k, _, _ in manifest(killed)}) == 24
    names = sorted(os.listdir(killed))
    assert not [n for n in names if ".tmp-" in n]
    assert sorted(n for n in names if n.endswith(".tar")) == \
        sorted(n for n in os.listdir(clean) if n.endswith(".tar"))
    assert audit_run(killed).ok


def _copy_run(src: str, tmp_path) -> str:
    import shutil

    dst = str(tmp_path / "copy")
    shutil.copytree(src, dst)
    return dst


def _rewrite_tar(path: str, drop_first_group: bool) -> None:
    with tarfile.open(path) as tar:
        members = [(m, tar.extractfile(m).read()) for m in tar.getmembers()]
    first_key = members[0][0].name.split(".")[0]
    import io

    with tarfile.open(path, "w") as tar:
        for member, data in members:
            if drop_first_group and member.name.startswith(first_key):
                continue
            tar.addfile(member, io.BytesIO(data))
