"""Trainer vs data-loader throughput for the tiny preset, and packing vs no packing.

    .venv/bin/python bench/train_throughput.py [--samples 96] [--steps 20] [--batch-size 8]

Prints, side by side:
  1. data loader samples/s (shards → decoded, tokenised, image-processed, padded batches)
     next to the trainer's consumption (forward + backward + AdamW on ready batches), and
     their ratio (goal: loader ≥ 2x trainer, so the loader is never the bottleneck);
  2. end-to-end `train()` samples/s (stage 1) and the fraction of step time spent waiting
     for data;
  3. language tokens/s in stage 2 with and without sequence packing (real tokens only:
     padding is not counted), as a ratio to the unpacked baseline;
  4. end-to-end stage 1 samples/s with `--workers` loader workers vs none (baseline), and
     samples per CPU-second of the whole call, workers' CPU included;
  5. stage 2 samples/s under `torchrun --nproc_per_node 2` (gloo) with --strategy fsdp vs
     ddp (baseline), and samples per CPU-second of all processes (--no-distributed skips).
Fixtures (PNG captions in a finished run directory, a text corpus, a tiny model) are made
in a temporary directory.
"""

from __future__ import annotations

import argparse
import io
import os
import statistics
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import torch  # noqa: E402
from PIL import Image, ImageDraw  # noqa: E402

from pipelines.core.run_dir import RunDir  # noqa: E402
from pipelines.core.runner import input_ref  # noqa: E402
from pipelines.core.sample import Sample  # noqa: E402
from pipelines.core.shards import ShardWriter  # noqa: E402

WORDS = ("red green blue yellow square circle bar chart table page text line value axis "
         "figure caption document scan photo screen").split()


def png(index: int, size: int = 256) -> bytes:
    """A photo-sized PNG (the processor resizes it, as it would a real image)."""
    image = Image.new("RGB", (size, size), (250, 250, 250))
    draw = ImageDraw.Draw(image)
    for k in range(6):
        x = (index * 37 + k * 41) % (size - 40)
        draw.rectangle((x, 10 + k * 35, x + 40, 40 + k * 35),
                       fill=((index * 50 + k * 30) % 255, (k * 80) % 255, (index * 20) % 255))
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def make_run(path: str, count: int) -> str:
    run = RunDir(path)
    samples = []
    for i in range(count):
        caption = " ".join(WORDS[(i * 7 + j) % len(WORDS)] for j in range(12 + i % 9))
        ref = input_ref("bench", f"bench://{i}")  # the ids the run's plan records
        samples.append(Sample.create("bench", f"bench://{i}", image=png(i), text=caption,
                                     lineage={"input_id": ref["input_id"],
                                              "item_id": ref["item_id"]}))
    (task,) = run.plan("bench", [input_ref("bench", s.locator) for s in samples], {},
                       task_size=count)
    writer = ShardWriter(run.url, prefix=f"bench-{task.task_id}", max_count=32)
    for sample in samples:
        writer.write(sample)
    run.write_task(task.task_id, writer.close(), writer.rows, [])
    run.finalize()
    return path


def make_text(path: str, docs: int = 400) -> str:
    with open(path, "w", encoding="utf-8") as handle:
        for i in range(docs):
            # documents of very different lengths: what packing is for
            n = 8 + (i * 37) % 120
            handle.write(" ".join(WORDS[(i + j * 3) % len(WORDS)] for j in range(n)) + "\n\n")
    return path


def loader_rate(run: str, processor, batch_size: int, batches: int) -> tuple[float, float]:
    """(samples per wall second, samples per CPU second) of the data loader."""
    from model.collate import VLCollator
    from training.data import SampleBatches, run_streams

    stream = run_streams([run], {}, seed=0, rank=0, world_size=1, shuffle_buffer=64)
    source = SampleBatches(stream, batch_size, VLCollator(processor, max_length=96))
    source.next_batch()  # open the first shard
    began, cpu = time.perf_counter(), time.process_time()
    for _ in range(batches):
        source.next_batch()
    samples = batches * batch_size
    return (samples / (time.perf_counter() - began), samples / (time.process_time() - cpu))


def trainer_rate(model, processor, run: str, batch_size: int, steps: int) -> tuple[float, float]:
    """Samples per wall / CPU second of forward+backward+AdamW on ready batches (stage 1)."""
    from model.collate import VLCollator, model_inputs
    from training.data import SampleBatches, run_streams
    from training.stages import stage_preset
    from training.trainable import apply_trainable

    stream = run_streams([run], {}, seed=0, rank=0, world_size=1, shuffle_buffer=64)
    source = SampleBatches(stream, batch_size, VLCollator(processor, max_length=96))
    ready = [source.next_batch()[0] for _ in range(steps + 2)]
    apply_trainable(model, stage_preset(1).trainable)
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-4)
    times, cpu_times = [], []
    for batch in ready:
        began, cpu = time.perf_counter(), time.process_time()
        model(**model_inputs(batch)).loss.backward()
        optimizer.step()
        optimizer.zero_grad()
        times.append(time.perf_counter() - began)
        cpu_times.append(time.process_time() - cpu)
    return (batch_size / statistics.median(times[2:]),
            batch_size / statistics.median(cpu_times[2:]))


def train_metrics(stage: int, model_dir: str, out: str, parallel=None, **kw) -> list[dict]:
    from training.loop import train
    from training.metrics import read_metrics
    from training.stages import stage_preset

    data, text = kw.pop("data", []), kw.pop("text", [])
    config = stage_preset(stage).replace(save_every=10_000, **kw)
    train(config, model_dir=model_dir, out=out, data=data, text=text, progress=False,
          save_model=False, parallel=parallel)
    return read_metrics(out)[2:]  # the first steps include warm-up of caches


def cpu_seconds() -> float:
    """CPU time of this process and of its finished (waited-for) children."""
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system


def torchrun_rate(strategy: str, model_dir: str, run: str, text: str, out: str,
                  args) -> tuple[float, float]:
    """(median samples/s of the steps, samples per CPU-second of all processes)."""
    import subprocess

    from training.metrics import read_metrics

    binary = os.path.join(os.path.dirname(sys.executable), "torchrun")
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}
    command = [binary, "--standalone", "--nproc_per_node", "2", "-m", "training", "train",
               "--stage", "2", "--model", model_dir, "--data", run, "--text", text,
               "--out", out, "--max-steps", str(args.steps + 2), "--batch-size",
               str(args.batch_size), "--seq-len", str(args.seq_len), "--language-ratio",
               "0.5", "--save-every", "10000", "--no-progress", "--strategy", strategy]
    cpu = cpu_seconds()
    subprocess.run(command, check=True, capture_output=True, env=env)
    cpu = cpu_seconds() - cpu
    rows = read_metrics(out)
    return (statistics.median(r["samples_per_s"] for r in rows[2:]),
            sum(r["samples"] for r in rows) / cpu)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--samples", type=int, default=96, help="caption samples in the run")
    parser.add_argument("--steps", type=int, default=20, help="optimizer steps per measurement")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--seq-len", type=int, default=128, help="stage 2 text sequence length")
    parser.add_argument("--workers", type=int, default=2, help="loader workers for section 4")
    parser.add_argument("--no-distributed", action="store_true",
                        help="skip section 5 (two torchrun jobs)")
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")

    from model.build import init_model_dir
    from model.loading import load_model

    with tempfile.TemporaryDirectory() as tmp:
        model_dir = str(init_model_dir("tiny", os.path.join(tmp, "model")))
        run = make_run(os.path.join(tmp, "run"), args.samples)
        text = make_text(os.path.join(tmp, "corpus.txt"))
        model, processor = load_model(model_dir)
        print(f"tiny preset, batch {args.batch_size}, {args.steps} steps, torch threads "
              f"{torch.get_num_threads()}, load average {os.getloadavg()[0]:.1f} on "
              f"{os.cpu_count()} CPUs")

        loader, loader_cpu = loader_rate(run, processor, args.batch_size, args.steps)
        trainer, trainer_cpu = trainer_rate(model, processor, run, args.batch_size, args.steps)
        print("\n1. loader vs trainer (stage 1)       samples/s  ratio   samples/CPU-s  ratio")
        print(f"   {'trainer (fwd+bwd+AdamW)':34s} {trainer:9.1f}   1.00x  {trainer_cpu:12.1f}"
              "   1.00x  (baseline)")
        print(f"   {'data loader (read+decode+collate)':34s} {loader:9.1f}  {loader / trainer:5.2f}x"
              f"  {loader_cpu:12.1f}  {loader_cpu / trainer_cpu:5.2f}x  "
              f"{'OK' if min(loader / trainer, loader_cpu / trainer_cpu) >= 2 else 'BELOW 2x GOAL'}")

        rows = train_metrics(1, model_dir, os.path.join(tmp, "s1"), data=[run],
                             max_steps=args.steps + 2, batch_size=args.batch_size)
        e2e = statistics.median(r["samples_per_s"] for r in rows)
        waiting = statistics.mean(r["data_fraction"] for r in rows)
        print("\n2. end-to-end train() stage 1")
        print(f"   samples/s {e2e:.1f} ({e2e / trainer:.2f}x the trainer alone); "
              f"time waiting for data {100 * waiting:.0f}% of each step")

        rates = {}
        for packing in (False, True):
            rows = train_metrics(2, model_dir, os.path.join(tmp, f"s2-{packing}"), text=[text],
                                 max_steps=args.steps + 2, batch_size=args.batch_size,
                                 seq_len=args.seq_len, packing=packing,
                                 language_ratio_start=1.0, language_ratio_target=1.0)
            rates[packing] = (statistics.median(r["tokens_per_s"] for r in rows),
                              statistics.mean(r["tokens"] for r in rows))
        print(f"\n3. stage 2 language tokens/s (real tokens, seq_len {args.seq_len})")
        base = rates[False][0]
        for packing, label in ((False, "without packing (padded rows)"),
                               (True, "with packing (full rows)")):
            rate, tokens = rates[packing]
            print(f"   {label:34s} {rate:9.0f}   {rate / base:.2f}x  "
                  f"({tokens:.0f} real tokens per step)")

        from training.parallel import ParallelConfig

        print("\n4. loader workers, end-to-end stage 1   samples/s  ratio   samples/CPU-s  "
              "ratio   waiting for data")
        loaders = {}
        for workers in (0, args.workers):
            cpu = cpu_seconds()
            rows = train_metrics(1, model_dir, os.path.join(tmp, f"w{workers}"), data=[run],
                                 max_steps=args.steps + 2, batch_size=args.batch_size,
                                 parallel=ParallelConfig(loader_workers=workers))
            cpu = cpu_seconds() - cpu
            loaders[workers] = (statistics.median(r["samples_per_s"] for r in rows),
                                (args.steps + 2) * args.batch_size / cpu,
                                statistics.mean(r["data_fraction"] for r in rows))
        for workers, label in ((0, "no workers (baseline)"),
                               (args.workers, f"{args.workers} loader workers")):
            rate, per_cpu, waiting = loaders[workers]
            print(f"   {label:37s} {rate:9.1f}  {rate / loaders[0][0]:5.2f}x  {per_cpu:12.1f}  "
                  f"{per_cpu / loaders[0][1]:5.2f}x   {100 * waiting:3.0f}%")

        if not args.no_distributed:
            print("\n5. torchrun 2 ranks (gloo), stage 2     samples/s  ratio   samples/CPU-s  "
                  "ratio")
            rates = {strategy: torchrun_rate(strategy, model_dir, run, text,
                                             os.path.join(tmp, f"tr-{strategy}"), args)
                     for strategy in ("ddp", "fsdp")}
            for strategy, label in (("ddp", "ddp (baseline)"), ("fsdp", "fsdp (FSDP2)")):
                rate, per_cpu = rates[strategy]
                print(f"   {label:37s} {rate:9.1f}  {rate / rates['ddp'][0]:5.2f}x  "
                      f"{per_cpu:12.1f}  {per_cpu / rates['ddp'][1]:5.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
