"""Text: tokenizers and the evaluation protocol."""
