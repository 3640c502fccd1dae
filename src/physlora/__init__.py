"""physlora: adapt language models to physics question answering with LoRA, and measure the result."""

__version__ = "0.1.0"
