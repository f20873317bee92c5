"""vlforge model package: DeepSeek-VL presets, processor, labels, task heads, checkpoints.

The generative model is transformers' own implementation
(`DeepseekVLHybridForConditionalGeneration` for the SigLIP+SAM hybrid, 7B and ``tiny``;
`DeepseekVLForConditionalGeneration` for the SigLIP-only 1.3B and ``tiny-siglip``). This
package wraps it; nothing here re-implements the model.

API for the trainer and other callers::

    from model.presets import PRESETS, get_preset, build_config   # "tiny", "tiny-siglip", "1.3b", "7b"
    from model.build import init_model_dir, save_model_dir         # `vlforge model init`
    from model.loading import load_model                           # dir -> (model, processor)
    from model.collate import VLCollator, model_inputs, IGNORE_INDEX

    init_model_dir("tiny", "runs/model-tiny")     # config + weights + processor + tokenizer
    model, processor = load_model("runs/model-tiny")
    collate = VLCollator(processor, max_length=512)   # a DataLoader collate_fn over Samples
    batch = collate(samples)                           # None if every sample was skipped
    loss = model(**model_inputs(batch)).loss           # answer-only next-token loss
    save_model_dir(model, processor, "runs/ckpt-100")  # a checkpoint load_model reopens

Batches (`VLCollator.__call__`): ``input_ids``, ``attention_mask``, ``labels`` [b, t]
(labels -100 on padding, bos, image tokens, system prompt, user turns and ``Assistant:``
prefixes); when the batch has images, ``pixel_values`` [n_images, 3, s, s] (SigLIP,
mean/std 0.5) and, for the hybrid family, ``high_res_pixel_values`` [n_images, 3, S, S]
(SAM, CLIP mean/std), plus ``image_sample_index`` [n_images]; ``targets`` [b] when a
``target_fn`` is given. Samples are encoded as:

- ``meta["sft"]["conversation"]`` -> DeepSeek-VL chat format, loss on answers + eos only;
- images + ``text``/``markdown`` (captions, OCR pairs) -> ``<bos><image tokens>text<eos>``;
  a text holding one ``<image_placeholder>`` per image (interleaved documents) gets each
  image's block where its placeholder stands;
- text only -> ``<bos>text<eos>``.

Unusable samples (no text, undecodable image, placeholder/image count mismatch) are
skipped and counted in ``collate.skipped[reason]`` (``on_error="raise"`` to raise instead);
images past ``max_images`` or cut by ``max_length`` are dropped whole and counted there too.
``sample.images`` fill the ``<image_placeholder>`` of user turns in order; a conversation
with images and no placeholder gets them at the start of its first user turn.

Also here: `model.heads` (classification/regression heads over the fused representation,
any preset), `model.cnn_baseline` (the original design's CNN hybrid), `model.convert`
(original deepseek-ai weight layout), `model.cli` (`vlforge model info|init`), `model.chat`
(`vlforge chat`).

Freezing for the training stages goes by parameter name prefixes of the transformers model:
``model.vision_model`` (SigLIP), ``model.high_res_vision_model`` (SAM ViT incl. its neck),
``model.high_res_vision_neck`` / ``model.high_res_vision_proj`` / ``model.high_res_vision_alpha``
(DeepSeek's SAM neck + downsampling convs: adaptor side in the paper), ``model.aligner``
(adaptor), ``model.language_model`` + ``lm_head`` (LLM). `model.presets.COMPONENT_PREFIXES`
lists them per component.
"""
