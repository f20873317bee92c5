"""vlforge training: DeepSeek-VL's three stages as data, run by one loop.

    stages.py       StageConfig (validated) + Table 4 presets; LR and language-ratio schedules
    trainable.py    freeze all, unfreeze the stage's parameter groups by name prefix
    data.py         streaming shards of finished runs and text files; exact positions; packing
    loader.py       loader workers (decode/collate off the training thread), exact positions,
                    re-division of positions for another world size
    modality.py     modality-group batches (each step all-language or all-multimodal)
    loop.py         `train()`: AdamW, clipping, accumulation, bf16 on GPU, checkpoints, metrics
    checkpoint.py   sharded torch.distributed.checkpoint directories (fsspec) and `--resume auto`
    metrics.py      metrics.jsonl, TensorBoard, loss/LR plots
    distributed.py  torchrun DDP or FSDP2 (gloo on CPU, nccl on GPU), activation checkpointing
    parallel.py     ParallelConfig: strategy (auto: ddp when it fits), checkpointing, compile...
    sharded_load.py meta-device model + each rank reading only its shard of the weights
    heads.py        classification/regression head fine-tuning (model/heads.py)
    evaluate.py     loss per taxonomy category, multiple choice by option perplexity
    cli.py, eval_cli.py, __main__.py   `vlforge train`, `vlforge eval`, `python -m training`
"""
