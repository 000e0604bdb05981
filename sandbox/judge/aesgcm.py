"""AES-256-GCM and AES-128-CBC encryption, pure Python, for honeytokens only:
Chromium's ``v10`` password blobs are AES-GCM under the ``Local State`` key on
Windows and AES-128-CBC under a fixed key on a Linux desktop without a keyring, and
a stealer that finds one it cannot decrypt to text stops before it sends anything.
The host has no crypto library (the core's dependencies stay small) and this
encrypts a few dozen bytes per run, so speed does not matter; never use it for real
secrets.
"""

from __future__ import annotations


def _sbox() -> tuple[list[int], int]:
    """The AES S-box, generated (FIPS-197 §5.1.1: inverse in GF(2^8), then affine)."""
    box = [0] * 256
    p = q = 1
    while True:
        p = (p ^ (p << 1) ^ (0x1B if p & 0x80 else 0)) & 0xFF  # p * 3
        q ^= q << 1
        q ^= q << 2
        q ^= q << 4
        q &= 0xFF
        if q & 0x80:
            q ^= 0x09  # q / 3
        x = q
        for shift in (1, 2, 3, 4):
            x ^= ((q << shift) | (q >> (8 - shift))) & 0xFF
        box[p] = x ^ 0x63
        if p == 1:
            break
    box[0] = 0x63
    return box, 0


_SBOX, _ = _sbox()


def _xtime(b: int) -> int:
    return ((b << 1) ^ (0x1B if b & 0x80 else 0)) & 0xFF


def _expand(key: bytes) -> list[list[int]]:
    """Round keys of AES-128 or AES-256 (11 or 15 of 16 bytes; FIPS-197 §5.2)."""
    if len(key) not in (16, 32):
        raise ValueError("AES-128 or AES-256 only: a 16- or 32-byte key")
    nk = len(key) // 4
    nr = nk + 6
    words = [list(key[i : i + 4]) for i in range(0, len(key), 4)]
    rcon = 1
    for i in range(nk, 4 * (nr + 1)):
        t = list(words[i - 1])
        if i % nk == 0:
            t = [_SBOX[b] for b in t[1:] + t[:1]]
            t[0] ^= rcon
            rcon = _xtime(rcon)
        elif nk > 6 and i % nk == 4:
            t = [_SBOX[b] for b in t]
        words.append([a ^ b for a, b in zip(words[i - nk], t, strict=True)])
    return [[b for w in words[r * 4 : r * 4 + 4] for b in w] for r in range(nr + 1)]


def _encrypt_block(rounds: list[list[int]], block: bytes) -> bytes:
    last = len(rounds) - 1
    s = [b ^ k for b, k in zip(block, rounds[0], strict=True)]
    for r in range(1, last + 1):
        s = [_SBOX[b] for b in s]
        # ShiftRows: byte (row, col) sits at col * 4 + row
        s = [s[((c + row) % 4) * 4 + row] for c in range(4) for row in range(4)]
        if r != last:
            mixed = []
            for c in range(4):
                a = s[c * 4 : c * 4 + 4]
                all_ = a[0] ^ a[1] ^ a[2] ^ a[3]
                mixed += [a[i] ^ all_ ^ _xtime(a[i] ^ a[(i + 1) % 4]) for i in range(4)]
            s = mixed
        s = [b ^ k for b, k in zip(s, rounds[r], strict=True)]
    return bytes(s)


def _gmul(x: int, y: int) -> int:
    """Multiplication in GCM's GF(2^128) (NIST SP 800-38D, algorithm 1)."""
    z, v = 0, y
    for i in range(127, -1, -1):
        if (x >> i) & 1:
            z ^= v
        v = (v >> 1) ^ (0xE1 << 120) if v & 1 else v >> 1
    return z


def encrypt(key: bytes, nonce: bytes, plaintext: bytes) -> tuple[bytes, bytes]:
    """(ciphertext, 16-byte tag) of AES-256-GCM with a 12-byte *nonce* and no AAD."""
    if len(nonce) != 12:
        raise ValueError("a 12-byte nonce only")
    rounds = _expand(key)
    h = int.from_bytes(_encrypt_block(rounds, bytes(16)), "big")
    out = bytearray()
    for i in range(0, len(plaintext), 16):
        counter = nonce + (i // 16 + 2).to_bytes(4, "big")
        stream = _encrypt_block(rounds, counter)
        out += bytes(a ^ b for a, b in zip(plaintext[i : i + 16], stream, strict=False))
    x = 0
    padded = bytes(out) + bytes(-len(out) % 16)
    for i in range(0, len(padded), 16):
        x = _gmul(x ^ int.from_bytes(padded[i : i + 16], "big"), h)
    x = _gmul(x ^ (len(out) * 8), h)  # len(A) = 0 in the high half
    tag = int.from_bytes(_encrypt_block(rounds, nonce + b"\x00\x00\x00\x01"), "big") ^ x
    return bytes(out), tag.to_bytes(16, "big")


def cbc_encrypt(key: bytes, iv: bytes, plaintext: bytes) -> bytes:
    """AES-CBC of *plaintext*, PKCS#7-padded (the key's length picks AES-128 or -256)."""
    if len(iv) != 16:
        raise ValueError("a 16-byte IV only")
    rounds = _expand(key)
    pad = 16 - len(plaintext) % 16
    data = plaintext + bytes([pad]) * pad
    out, prev = bytearray(), iv
    for i in range(0, len(data), 16):
        prev = _encrypt_block(rounds, bytes(a ^ b for a, b in zip(data[i : i + 16], prev, strict=True)))
        out += prev
    return bytes(out)
