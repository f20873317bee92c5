"""The text-only corpus: the language share of training, built from runs' main text."""
