"""Text cleaning applied to every question, choice, answer and explanation, and the keys used to compare them."""

from __future__ import annotations

import hashlib
import re
import unicodedata

_WHITESPACE = re.compile(r"\s+")
_NOT_WORD = re.compile(r"[\W_]+")


def clean_text(text: str) -> str:
    """Return `text` NFKC-normalised, without control or format characters, with whitespace collapsed.

    NFKC folds compatibility forms, so the micro sign becomes the Greek mu and a superscript 2 becomes a plain 2.
    Line breaks and tabs count as whitespace: a multi-line question becomes one line.
    """
    text = unicodedata.normalize("NFKC", text)
    kept = []
    for char in text:
        if char.isspace():
            kept.append(" ")
        elif unicodedata.category(char) not in ("Cc", "Cf"):
            kept.append(char)
    return _WHITESPACE.sub(" ", "".join(kept)).strip()


def comparison_key(text: str) -> str:
    """Return the form of `text` that duplicate and leakage checks compare: lower case, letters and digits only."""
    return _NOT_WORD.sub("", text.casefold())


def content_hash(*parts: str) -> str:
    """Return a short stable hash of the parts (12 hex digits of SHA-256), used as an id where a source has none."""
    # surrogateescape: text decoded from a file with invalid bytes is hashed before it is rejected.
    digest = hashlib.sha256("\x1f".join(parts).encode("utf-8", "surrogateescape")).hexdigest()
    return digest[:12]
