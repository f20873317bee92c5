"""Forward+backward throughput of the model presets vs the CNN hybrid baseline.

    .venv/bin/python bench/model_forward.py [--batch-size 8] [--steps 10] [--repeats 3]
                                            [--threads 1] [--json]

CPU: the ``tiny`` (SigLIP + SAM hybrid) and ``tiny-siglip`` presets and the CNN hybrid
baseline with a classification head, all on the same collated batch (one image + a short
conversation per sample), printed as samples/s and as a ratio to the CNN baseline. Each
model is timed `--repeats` times interleaved with the others and the best run is kept,
since a shared machine is noisy. GPU (only when CUDA is available): the ``1.3b`` preset in
bf16 with random weights on 384px images (576 image tokens), and ``tiny`` on the GPU.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import torch  # noqa: E402


def make_samples(count: int):
    import io

    from PIL import Image, ImageDraw

    from pipelines.core.sample import Sample

    samples = []
    for i in range(count):
        image = Image.new("RGB", (640, 480), (250, 250, 250))
        ImageDraw.Draw(image).rectangle((40 + i, 40, 400, 300), fill=(200, 30 + 10 * i % 200, 30))
        buffer = io.BytesIO()
        image.save(buffer, "PNG")
        conversation = [{"role": "user", "content": "<image_placeholder> What is in the image?"},
                        {"role": "assistant", "content": f"A red rectangle, number {i}, on white."}]
        samples.append(Sample.create("bench", f"bench://{i}", image=buffer.getvalue(),
                                     meta={"sft": {"conversation": conversation}, "label": i % 2}))
    return samples


def time_steps(step, steps: int, warmup: int = 2) -> float:
    """Seconds per fwd+bwd step (mean over `steps` after `warmup`)."""
    for _ in range(warmup):
        step()
    start = time.perf_counter()
    for _ in range(steps):
        step()
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    return (time.perf_counter() - start) / steps


def lm_step(model, inputs):
    def step():
        model.zero_grad(set_to_none=True)
        model(**inputs).loss.backward()
    return step


def task_step(model, batch):
    def step():
        model.zero_grad(set_to_none=True)
        model(batch).loss.backward()
    return step


def cpu_bench(args) -> list[dict]:
    from model.build import init_model
    from model.cnn_baseline import CNNHybridBaseline
    from model.collate import VLCollator, model_inputs
    from model.heads import build_task_model, meta_target

    samples = make_samples(args.batch_size)
    contenders = {}
    processors = {}
    for name in ("tiny", "tiny-siglip"):
        model, processor = init_model(name)
        processors[name] = processor
        batch = VLCollator(processor)(samples)
        contenders[name] = (lm_step(model.train(), model_inputs(batch)), batch["input_ids"].shape)
    processor = processors["tiny"]
    batch = VLCollator(processor, target_fn=meta_target("label", classes=[0, 1]))(samples)
    baseline = build_task_model(CNNHybridBaseline.for_processor(processor), "classification",
                                num_classes=2)
    contenders["cnn-baseline"] = (task_step(baseline.train(), batch), batch["input_ids"].shape)

    best = {name: float("inf") for name in contenders}
    for _ in range(args.repeats):  # interleaved so load spikes hit every contender alike
        for name, (step, _) in contenders.items():
            best[name] = min(best[name], time_steps(step, args.steps))
    rows = []
    for name, (_, shape) in contenders.items():
        rows.append({"device": "cpu", "model": name, "batch": args.batch_size,
                     "seq_len": int(shape[1]), "step_s": best[name],
                     "samples_per_s": args.batch_size / best[name]})
    base = next(r for r in rows if r["model"] == "cnn-baseline")["samples_per_s"]
    for row in rows:
        row["vs_cnn_baseline"] = row["samples_per_s"] / base
    return rows


def gpu_bench(args) -> list[dict]:
    from model.collate import VLCollator, model_inputs
    from model.presets import build_config, model_class_for
    from model.processor import build_processor
    from model.tokenizer import train_tiny_tokenizer

    rows = []
    samples = make_samples(args.batch_size)
    # The published tokenizer is not available offline: the tiny one encodes the text, and
    # its image token id is what the 1.3b config is given (the vocabulary stays 102400).
    tokenizer = train_tiny_tokenizer()
    for name, dtype in (("1.3b", torch.bfloat16), ("tiny", torch.bfloat16)):
        processor = build_processor(name, tokenizer)
        vocab = None if name == "1.3b" else len(tokenizer)
        config = build_config(name, vocab_size=vocab, image_token_id=processor.image_token_id)
        with torch.device("cuda"):
            model = model_class_for(config)(config).to(dtype).train()
        batch = VLCollator(processor)(samples)
        inputs = {k: v.to("cuda") for k, v in model_inputs(batch).items()}
        for key in ("pixel_values", "high_res_pixel_values"):
            if key in inputs:
                inputs[key] = inputs[key].to(dtype)
        seconds = min(time_steps(lm_step(model, inputs), args.steps) for _ in range(args.repeats))
        rows.append({"device": torch.cuda.get_device_name(), "model": f"{name} (bf16)",
                     "batch": args.batch_size, "seq_len": int(batch["input_ids"].shape[1]),
                     "step_s": seconds, "samples_per_s": args.batch_size / seconds,
                     "peak_mem_gib": torch.cuda.max_memory_allocated() / 2**30})
        del model, inputs
        torch.cuda.empty_cache()
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--steps", type=int, default=10, help="timed steps per repeat")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1,
                        help="torch CPU threads (default 1: toy models only lose from more "
                        "threads on a shared machine; 0 keeps torch's default)")
    parser.add_argument("--no-gpu", action="store_true", help="skip the GPU part")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    with tempfile.TemporaryDirectory():
        rows = cpu_bench(args)
        if torch.cuda.is_available() and not args.no_gpu:
            rows += gpu_bench(args)
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    print(f"fwd+bwd, batch {args.batch_size}, best of {args.repeats} x {args.steps} steps, "
          f"{torch.get_num_threads()} CPU thread(s)")
    print(f"{'device':<24} {'model':<16} {'seq':>5} {'s/step':>9} {'samples/s':>10} {'vs CNN':>8}")
    for r in rows:
        ratio = f"{r['vs_cnn_baseline']:.2f}x" if "vs_cnn_baseline" in r else "-"
        print(f"{r['device'][:24]:<24} {r['model']:<16} {r['seq_len']:>5} {r['step_s']:>9.4f} "
              f"{r['samples_per_s']:>10.1f} {ratio:>8}")
    if not torch.cuda.is_available():
        print("GPU part skipped: CUDA is not available")
    return 0


if __name__ == "__main__":
    sys.exit(main())
