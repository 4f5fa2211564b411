"""Fine-tuning Qwen2.5-VL with TRL: SFT (:mod:`.sft`) then GRPO (:mod:`.grpo`, :mod:`.rewards`), and export
(:mod:`.export`).

What both trainers share: the settings (:mod:`.model_config`), set-up, several processes, resume and saving
(:mod:`.runtime`), models and processors (:mod:`.modeling`), data and prompts (:mod:`.data`, :mod:`.prompts`); the
random test models (:mod:`.tiny_model`). Reads datasets by their columns, never the builder's code.
"""
