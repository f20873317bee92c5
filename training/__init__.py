"""vlforge training: DeepSeek-VL's three stages as data, run by one loop.

    stages.py       StageConfig (validated) + Table 4 presets; LR and language-ratio schedules
    trainable.py    freeze all, unfreeze the stage's parameter groups by name prefix
    data.py         streaming shards of finished runs and text files; exact positions; packing
    modality.py     modality-group batches (each step all-language or all-multimodal)
    loop.py         `train()`: AdamW, clipping, accumulation, bf16 on GPU, checkpoints, metrics
    checkpoint.py   the one-dict checkpoint and `--resume auto`
    metrics.py      metrics.jsonl, TensorBoard, loss/LR plots
    distributed.py  torchrun DDP (gloo on CPU, nccl on GPU)
    heads.py        classification/regression head fine-tuning (model/heads.py)
    evaluate.py     loss per taxonomy category, multiple choice by option perplexity
    cli.py, eval_cli.py, __main__.py   `vlforge train`, `vlforge eval`, `python -m training`
"""
