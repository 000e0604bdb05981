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


def test_aes128_block_and_cbc_match_the_standards_vectors() -> None:
    from sandbox.judge.aesgcm import _encrypt_block, _expand, cbc_encrypt

    # FIPS-197 appendix C.1
    key = bytes(range(16))
    block = bytes.fromhex("00112233445566778899aabbccddeeff")
    assert _encrypt_block(_expand(key), block).hex() == "69c4e0d86a7b0430d8cdb78070b4c55a"
    # SP 800-38A F.2.1, CBC-AES128.Encrypt (its four blocks; PKCS#7 adds a fifth)
    key = bytes.fromhex("2b7e151628aed2a6abf7158809cf4f3c")
    iv = bytes.fromhex("000102030405060708090a0b0c0d0e0f")
    plain = bytes.fromhex(
        "6bc1bee22e409f96e93d7e117393172aae2d8a571e03ac9c9eb76fac45af8e51"
        "30c81c46a35ce411e5fbc1191a0a52eff69f2445df4f9b17ad2b417be66c3710"
    )
    out = cbc_encrypt(key, iv, plain)
    assert out[:64].hex() == (
        "7649abac8119b246cee98e9b12e9197d5086cb9b507219ee95db113a917678b2"
        "73bed6b8e3c1743b7116e69e222295163ff1caa1681fac09120eca307586e1a7"
    )
    assert len(out) == 80
