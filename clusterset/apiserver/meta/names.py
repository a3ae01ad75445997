"""Generated object names (`metadata.generateName`), as kube-apiserver's SimpleNameGenerator makes them."""

from __future__ import annotations

import uuid

_GENERATE_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"


def generate_suffix() -> str:
    """Five random characters from apimachinery's alphabet (no vowels: no words)."""
    return "".join(_GENERATE_ALPHABET[b % len(_GENERATE_ALPHABET)] for b in uuid.uuid4().bytes[:5])
