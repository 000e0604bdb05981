"""The honeytokens' AES-256-GCM (Chromium v10 blobs): NIST known answers."""

from __future__ import annotations

import pytest

from sandbox.judge import aesgcm


@pytest.mark.parametrize(
    ("plaintext", "ciphertext", "tag"),
    [
        # SP 800-38D test cases 13 and 14: zero key, zero nonce
        (b"", "", "530f8afbc74536b9a963b4f1c4cb738b"),
        (bytes(16), "cea7403d4d606b6e074ec5d3baf39d18", "d0d1c8a799996bf0265b98b5d48ab919"),
    ],
)
def test_known_answers(plaintext: bytes, ciphertext: str, tag: str) -> None:
    c, t = aesgcm.encrypt(bytes(32), bytes(12), plaintext)
    assert (c.hex(), t.hex()) == (ciphertext, tag)


def test_test_case_16_with_a_real_key() -> None:
    # SP 800-38D test case 15 (AES-256, 64-byte plaintext, no AAD)
    key = bytes.fromhex("feffe9928665731c6d6a8f9467308308feffe9928665731c6d6a8f9467308308")
    nonce = bytes.fromhex("cafebabefacedbaddecaf888")
    plaintext = bytes.fromhex(
        "d9313225f88406e5a55909c5aff5269a86a7a9531534f7da2e4c303d8a318a72"
        "1c3c0c95956809532fcf0e2449a6b525b16aedf5aa0de657ba637b391aafd255"
    )
    c, t = aesgcm.encrypt(key, nonce, plaintext)
    assert c.hex() == (
        "522dc1f099567d07f47f37a32a84427d643a8cdcbfe5c0c97598a2bd2555d1aa"
        "8cb08e48590dbb3da7b08b1056828838c5f61e6393ba7a0abcc9f662898015ad"
    )
    assert t.hex() == "b094dac5d93471bdec1a502270e3cc6c"
