"""Labeling throughput (samples/s) of the taxonomy labeler, baseline vs batched, side by side.

Makes N samples like a real mix: content-pipeline samples that a task rule labels (PDF
pages with a text layer, charts, web screenshots with HTML) and SFT conversations whose
prompt goes through the MiniLM classifier. Every prompt is distinct (object words are
varied) so the embedding cache cannot flatter the numbers; the cache is cleared between
modes. Modes:

* ``per-sample, float`` (the baseline): one `label_sample` call per sample with the float
  model — what a stage that embeds inside ``process`` would cost.
* ``batched, float`` / ``batched, int8``: `label_samples` over batches of --batch (what
  `LabelTaxonomyFn` does), with the float and the dynamic-int8 model (the default).
* ``prompts-only``: batched int8, every sample an SFT prompt (the worst case).

    .venv/bin/python bench/label.py [--n 2000] [--prompt-share 0.5] [--threads 2] [--batch 64]

Goal: >= 300 samples/s on 2 cores for the batched mix.
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from pipelines.core.sample import Sample  # noqa: E402
from pipelines.label.samples import label_sample, label_samples  # noqa: E402

PROMPTS = [
    "What colour is the {o} in this picture?", "How many {o}s can you count?",
    "Describe the {o} in detail.", "Write HTML that reproduces this {o} page.",
    "Which year has the highest {o} sales in the bar chart?", "Transcribe the text on the {o}.",
    "Why is this {o} meme funny?", "Is this photo of a {o} real or AI-generated?",
    "Solve the equation written next to the {o}.", "What will the {o} do next?",
    "Spot the differences between the two {o} pictures.", "What is this {o} used for?",
    "Write a poem about the {o}.", "Give matplotlib code for this {o} chart.",
    "Where is the {o} located in the image?", "Is there a defect on this {o}?",
]
OBJECTS = ["cat", "dog", "car", "lamp", "bottle", "chair", "tree", "phone", "bridge", "robot",
           "guitar", "kettle", "boat", "train", "clock", "flower", "helmet", "camera", "laptop",
           "bicycle", "window", "sofa", "pizza", "bird", "horse", "river", "tower", "drum"]
PNG = (b"\x89PNG\r\n\x1a\n" + b"\x00" * 64)  # rules only look at meta, not pixels


def make_samples(n: int, prompt_share: float, seed: int = 0) -> list[Sample]:
    rng = random.Random(seed)
    samples = []
    for i in range(n):
        if rng.random() < prompt_share:
            text = rng.choice(PROMPTS).format(o=f"{rng.choice(OBJECTS)} {rng.choice(OBJECTS)}")
            meta = {"sft": {"conversation": [
                {"role": "user", "content": f"<image_placeholder>{text} (#{i})"},
                {"role": "assistant", "content": "..."}]}}
            samples.append(Sample.create("sft", f"bench:{i}", image=PNG, meta=meta))
            continue
        kind = rng.choice(("page", "chart", "web"))
        if kind == "page":
            meta = {"pdf": {"kind": "page", "needs_ocr": False,
                            "lines": [{"box": [0, 0, 1, 1], "text": "x"}]}}
            samples.append(Sample.create("pdf", f"bench:{i}", image=PNG, meta=meta))
        elif kind == "chart":
            meta = {"chart": {"charts": [{"type": "bar", "series": []}]}}
            samples.append(Sample.create("pdf", f"bench:{i}", image=PNG, meta=meta))
        else:
            samples.append(Sample.create("web", f"bench:{i}", image=PNG, html="<p>x</p>",
                                         meta={"web": {"url": "http://x"}}))
    return samples


def timed(labeler, samples, batch: int | None) -> tuple[float, float, int]:
    """(samples per wall second, samples per CPU second of this process, unlabeled)."""
    labeler._cache.clear()  # reference vectors live in the labeler already
    start, cpu_start = time.perf_counter(), time.process_time()
    if batch is None:
        labels = [label_sample(labeler, s) for s in samples]
    else:
        labels = [l for i in range(0, len(samples), batch)
                  for l in label_samples(labeler, samples[i:i + batch])]
    elapsed, cpu = time.perf_counter() - start, time.process_time() - cpu_start
    return (len(samples) / elapsed, len(samples) / max(cpu, 1e-9),
            sum(1 for l in labels if l.leaf == "unlabeled"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=2000, help="samples per mode (default 2000)")
    parser.add_argument("--prompt-share", type=float, default=0.5,
                        help="share of SFT prompt samples in the mix (default 0.5)")
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads (default 2)")
    parser.add_argument("--batch", type=int, default=64, help="batch size (default 64)")
    args = parser.parse_args()

    import torch

    torch.set_num_threads(args.threads)
    from taxonomy.labeler import Labeler

    start = time.perf_counter()
    float_labeler = Labeler(batch_size=args.batch, quantize=False).open()
    int8_labeler = Labeler(batch_size=args.batch).open()
    print(f"open (model load + {len(int8_labeler._texts)} reference texts, both variants): "
          f"{time.perf_counter() - start:.1f}s; torch threads {torch.get_num_threads()}, "
          f"cpu count {os.cpu_count()}, load average {os.getloadavg()[0]:.1f}")
    mix = make_samples(args.n, args.prompt_share)
    prompts = make_samples(args.n, 1.0, seed=1)
    base_n = max(100, args.n // 5)  # the baseline is slow; time a slice of the same mix
    rows = [("per-sample, float (baseline)", *timed(float_labeler, mix[:base_n], None), base_n),
            (f"batched x{args.batch}, float", *timed(float_labeler, mix, args.batch), len(mix)),
            (f"batched x{args.batch}, int8 (default)", *timed(int8_labeler, mix, args.batch),
             len(mix)),
            ("prompts-only batched, int8", *timed(int8_labeler, prompts, args.batch),
             len(prompts))]
    baseline = rows[0][1]
    print(f"\n{'mode':36s} {'samples':>8s} {'samples/s':>10s} {'vs baseline':>12s} "
          f"{'per CPU-s':>10s} {'vs baseline':>12s} {'unlabeled':>10s}")
    cpu_baseline = rows[0][2]
    for name, rate, cpu_rate, unlabeled, n in rows:
        print(f"{name:36s} {n:8d} {rate:10.0f} {rate / baseline:11.2f}x {cpu_rate:10.0f} "
              f"{cpu_rate / cpu_baseline:11.2f}x {unlabeled:10d}")
    print("\nper CPU-s: samples per CPU-second this process got; on a shared machine it is "
          "the steadier figure, and with --threads 1 two workers (Beam "
          "--direct_num_workers=2) on 2 idle cores give about twice it.")
    print(f"\nmix: {args.prompt_share:.0%} SFT prompts (embedding), the rest rule-labeled; "
          f"goal >= 300 samples/s batched on 2 cores; load average now "
          f"{os.getloadavg()[0]:.1f} (the machine is shared: compare rows, not runs)")


if __name__ == "__main__":
    main()
