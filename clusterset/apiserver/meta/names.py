"""Generated names: object uids, and `metadata.generateName` suffixes as kube-apiserver's SimpleNameGenerator makes
them."""

from __future__ import annotations

import os

_GENERATE_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"


def new_uid() -> str:
    """A random (version 4) UUID's text, as `str(uuid.uuid4())` gives it in half its time: every object a server
    creates takes one, and a new cluster is born with dozens (`uuid.UUID` checks and converts what this builds)."""
    raw = bytearray(os.urandom(16))
    raw[6] = (raw[6] & 0x0F) | 0x40  # version 4
    raw[8] = (raw[8] & 0x3F) | 0x80  # the RFC 4122 variant
    text = raw.hex()
    return f"{text[:8]}-{text[8:12]}-{text[12:16]}-{text[16:20]}-{text[20:]}"


def generate_suffix() -> str:
    """Five random characters from apimachinery's alphabet (no vowels: no words)."""
    return "".join(_GENERATE_ALPHABET[b % len(_GENERATE_ALPHABET)] for b in os.urandom(5))
