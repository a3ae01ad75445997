"""Object uids: random version 4 UUIDs, written as `str(uuid.uuid4())` writes them."""

from __future__ import annotations

import uuid

from clusterset.apiserver.meta.names import generate_suffix, new_uid


def test_uids_are_random_version_4_uuids_in_their_canonical_text() -> None:
    uids = [new_uid() for _ in range(2000)]
    assert len(set(uids)) == len(uids)
    for uid in uids:
        parsed = uuid.UUID(uid)
        assert str(parsed) == uid  # lower-case hex, dashes at 8-4-4-4-12
        assert parsed.version == 4 and parsed.variant == uuid.RFC_4122
    # every one of the 122 random bits takes both values
    bits = [int(u.replace("-", ""), 16) for u in uids]
    fixed = (0xF << 76) | (0x3 << 62)  # the version and variant bits
    assert all(any(b >> i & 1 for b in bits) and not all(b >> i & 1 for b in bits)
               for i in range(128) if not fixed >> i & 1)


def test_generated_name_suffixes_use_apimachinery_alphabet() -> None:
    suffixes = {generate_suffix() for _ in range(500)}
    assert len(suffixes) > 490 and all(len(s) == 5 and set(s) <= set("bcdfghjklmnpqrstvwxz2456789") for s in suffixes)
