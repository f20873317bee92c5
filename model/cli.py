"""`vlforge model info|init`: inspect presets and write ready-to-train model directories.

    vlforge model info --preset 7b [--json]     config summary + parameters per component,
                                                computed on the meta device (no weights)
    vlforge model init --preset tiny --out DIR  config, weights, processor, tokenizer
    vlforge model init --preset 1.3b --out DIR --tokenizer TOKDIR [--weights WEIGHTSDIR]
"""

from __future__ import annotations

import argparse
import json
import logging
from collections import Counter
from typing import Any

log = logging.getLogger(__name__)


def add_model_arguments(parser: argparse.ArgumentParser) -> None:
    from model.presets import PRESETS

    parser.epilog = __doc__
    sub = parser.add_subparsers(dest="action", required=True, metavar="{info,init}")
    info = sub.add_parser("info", help="config summary and parameter counts of a preset")
    source = info.add_mutually_exclusive_group(required=True)
    source.add_argument("--preset", choices=sorted(PRESETS), help="a named preset")
    source.add_argument("--model", help="a model directory (reads only its config)")
    info.add_argument("--json", action="store_true", help="print JSON for scripts")

    init = sub.add_parser("init", help="write a ready-to-train model directory")
    init.add_argument("--preset", choices=sorted(PRESETS) + ["cnn-hybrid"], required=True,
                      help="a DeepSeek-VL preset, or cnn-hybrid: the seed design's CNN "
                           "hybrid (model/cnn_baseline.py) for `vlforge train --head`")
    init.add_argument("--out", required=True, help="directory to write (created)")
    init.add_argument("--tokenizer", help="local tokenizer directory (required for 1.3b/7b "
                      "unless --weights holds one); tiny presets train their own")
    init.add_argument("--tokenizer-corpus", nargs="+", metavar="FILE",
                      help="text files to train the tiny tokenizer on (default: bundled text)")
    init.add_argument("--weights", help="published weights to start from: a local directory in "
                      "the transformers or the original deepseek-ai layout")
    init.add_argument("--seed", type=int, default=0, help="seed of the random initialisation")
    init.add_argument("--json", action="store_true", help="print the written card as JSON")


def describe_config(config) -> dict[str, Any]:
    """Architecture summary + parameter counts per component, without allocating weights."""
    import torch

    from model.presets import (
        component_of,
        family_of,
        model_class_for,
        num_image_tokens_of,
    )

    with torch.device("meta"):  # shapes only: a 7B model costs no memory here
        model = model_class_for(config)(config)
    counts: Counter = Counter()
    for name, parameter in model.named_parameters():  # tied weights are listed once
        counts[component_of(name)] += parameter.numel()
    total = sum(counts.values())
    text, vision = config.text_config, config.vision_config
    summary: dict[str, Any] = {
        "preset": getattr(config, "vlforge_preset", None),
        "model_type": config.model_type,
        "family": family_of(config),
        "class": type(model).__name__,
        "image_token_id": config.image_token_id,
        "num_image_tokens": num_image_tokens_of(config),
        "language_model": {
            "layers": text.num_hidden_layers, "hidden_size": text.hidden_size,
            "heads": text.num_attention_heads, "kv_heads": text.num_key_value_heads,
            "intermediate_size": text.intermediate_size, "vocab_size": text.vocab_size,
            "max_position_embeddings": text.max_position_embeddings,
            "tie_word_embeddings": bool(config.tie_word_embeddings),
        },
        "vision": {
            "tower": "siglip", "image_size": vision.image_size, "patch_size": vision.patch_size,
            "hidden_size": vision.hidden_size, "layers": vision.num_hidden_layers,
            "heads": vision.num_attention_heads, "intermediate_size": vision.intermediate_size,
        },
        "parameters": dict(sorted(counts.items())),
        "parameters_total": total,
        "weights_bytes": {"bf16": 2 * total, "fp32": 4 * total},
    }
    if config.model_type == "deepseek_vl_hybrid":
        high = config.high_res_vision_config
        summary["high_res_vision"] = {
            "tower": "sam", "image_size": high.image_size, "patch_size": high.patch_size,
            "hidden_size": high.hidden_size, "layers": high.num_hidden_layers,
            "heads": high.num_attention_heads, "window_size": high.window_size,
            "global_attn_indexes": list(high.global_attn_indexes),
            "output_channels": high.output_channels,
        }
    return summary


def _human(n: int) -> str:
    for unit, size in (("B", 1e9), ("M", 1e6), ("K", 1e3)):
        if n >= size:
            return f"{n / size:.3f}{unit}"
    return str(n)


def print_summary(summary: dict[str, Any]) -> None:
    lm, vis = summary["language_model"], summary["vision"]
    print(f"preset {summary['preset']}  ({summary['class']}, family {summary['family']})")
    print(f"  image tokens per image: {summary['num_image_tokens']}  "
          f"(image token id {summary['image_token_id']})")
    print(f"  low-res  SigLIP: {vis['image_size']}px / patch {vis['patch_size']}, "
          f"{vis['layers']} layers x {vis['hidden_size']}, {vis['heads']} heads")
    if "high_res_vision" in summary:
        hi = summary["high_res_vision"]
        print(f"  high-res SAM:    {hi['image_size']}px / patch {hi['patch_size']}, "
              f"{hi['layers']} layers x {hi['hidden_size']}, window {hi['window_size']}, "
              f"global attention at {hi['global_attn_indexes']}")
    print(f"  LM (Llama):      {lm['layers']} layers x {lm['hidden_size']}, {lm['heads']} heads, "
          f"FFN {lm['intermediate_size']}, vocab {lm['vocab_size']}")
    print("  parameters:")
    for component, count in summary["parameters"].items():
        print(f"    {component:<18} {count:>14,}  ({_human(count)})")
    total = summary["parameters_total"]
    print(f"    {'total':<18} {total:>14,}  ({_human(total)}; "
          f"{summary['weights_bytes']['bf16'] / 2**30:.2f} GiB in bf16)")


def model_command(args: argparse.Namespace, extra: list[str]) -> int:
    if args.action == "info":
        if args.preset:
            from model.presets import build_config

            config = build_config(args.preset)
        else:
            from transformers import AutoConfig

            from model.convert import detect_layout

            if detect_layout(args.model) == "original":
                raise ValueError(f"{args.model} is in the original deepseek-ai layout: use "
                                 "--preset 1.3b|7b, or convert it with model init --weights")
            config = AutoConfig.from_pretrained(args.model)
        summary = describe_config(config)
        if args.json:
            print(json.dumps(summary, indent=2))
        else:
            print_summary(summary)
        return 0
    from model.build import MODEL_CARD, init_model_dir
    from model.cnn_dir import CNN_PRESET, init_cnn_dir

    if args.preset == CNN_PRESET:
        out = init_cnn_dir(args.out, tokenizer_corpus=args.tokenizer_corpus, seed=args.seed)
        card = json.loads((out / MODEL_CARD).read_text())
        print(json.dumps({"out": str(out), **card}, indent=2) if args.json else
              f"wrote {out}: {CNN_PRESET}, {card['parameters']:,} parameters (train it with "
              "vlforge train --stage 3 --head classification ...)")
        return 0
    out = init_model_dir(args.preset, args.out, tokenizer_dir=args.tokenizer,
                         weights_dir=args.weights, tokenizer_corpus=args.tokenizer_corpus,
                         seed=args.seed)
    card = json.loads((out / MODEL_CARD).read_text())
    if args.json:
        print(json.dumps({"out": str(out), **card}, indent=2))
    else:
        print(f"wrote {out}: preset {card['preset']}, {card['parameters']:,} parameters, "
              f"{card['num_image_tokens']} image tokens per image")
    return 0
