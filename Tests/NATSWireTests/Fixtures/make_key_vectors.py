#!/usr/bin/env python3
"""Generate known-answer vectors for the NATSWire NKey / XKey / JWT / creds tests.

How to run (from the package root):

    pip install nkeys pynacl
    python3 Tests/NATSWireTests/Fixtures/make_key_vectors.py

The script is deterministic: every key is derived from a fixed label and every
nonce is fixed, so re-running it rewrites byte-identical files:

    Tests/NATSWireTests/Fixtures/nkey_vectors.json
    Tests/NATSWireTests/Fixtures/xkey_vectors.json
    Tests/NATSWireTests/Fixtures/jwt_vectors.json
    Tests/NATSWireTests/Fixtures/user.creds

Sources of truth:
  * Ed25519 NKeys (seed -> public key, signatures): the Python `nkeys` package.
  * XKeys: Python `nkeys` has no curve (X) support, so the seed/public encoding
    uses `nkeys.crc16_checksum` + base32 exactly as Go's nkeys `EncodeSeed` /
    `Encode` do, and the sealed messages are built with `nacl.public.Box`
    in the Go nkeys xkv1 layout: b"xkv1" || 24-byte nonce || box (MAC first).
  * NATS JWTs: built the way github.com/nats-io/jwt/v2 GenericClaims.Encode does
    (Go encoding/json field order and escaping, jti = base32(no padding) of
    SHA-512/256 over the claims-data JSON without jti, nats.version = 2,
    signature = nkeys Ed25519 over "header.payload", all parts base64url without
    padding).
"""

import base64
import hashlib
import json
import os

import nacl.public
import nacl.signing
import nkeys

HERE = os.path.dirname(os.path.abspath(__file__))

PREFIX_CURVE = 23 << 3


def raw_seed(label):
    return hashlib.sha256(b"natswire-key-vectors/" + label.encode()).digest()


def b32(data):
    return base64.b32encode(bytes(data)).decode().rstrip("=")


def b64url(data):
    return base64.urlsafe_b64encode(bytes(data)).decode().rstrip("=")


def encode_key(prefix, raw):
    """Go nkeys Encode: prefix byte || raw || crc16 little-endian, base32 no padding."""
    body = bytes([prefix]) + bytes(raw)
    return b32(body + nkeys.crc16_checksum(body))


def encode_seed_any(prefix, raw):
    """Go nkeys EncodeSeed, also for prefixes Python nkeys refuses (curve)."""
    b1 = nkeys.PREFIX_BYTE_SEED | (prefix >> 5)
    b2 = (prefix & 31) << 3
    body = bytes([b1, b2]) + bytes(raw)
    return b32(body + nkeys.crc16_checksum(body))


# ---------------------------------------------------------------- Go encoding/json


def go_string(s):
    out = ['"']
    for ch in s:
        o = ord(ch)
        if ch == '"':
            out.append('\\"')
        elif ch == "\\":
            out.append("\\\\")
        elif ch == "\n":
            out.append("\\n")
        elif ch == "\r":
            out.append("\\r")
        elif ch == "\t":
            out.append("\\t")
        elif ch == "\b":
            out.append("\\b")
        elif ch == "\f":
            out.append("\\f")
        elif o < 0x20 or ch in "<>&" or o in (0x2028, 0x2029):
            out.append("\\u%04x" % o)
        else:
            out.append(ch)
    out.append('"')
    return "".join(out)


def go_json(v):
    """Go json.Marshal of map[string]interface{} values (maps sorted by key bytes)."""
    if v is None:
        return "null"
    if v is True:
        return "true"
    if v is False:
        return "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        if v.is_integer() and abs(v) < 1e21:
            return str(int(v))
        return repr(v)
    if isinstance(v, str):
        return go_string(v)
    if isinstance(v, list):
        return "[" + ",".join(go_json(x) for x in v) + "]"
    if isinstance(v, dict):
        keys = sorted(v.keys(), key=lambda k: k.encode())
        return "{" + ",".join(go_string(k) + ":" + go_json(v[k]) for k in keys) + "}"
    raise TypeError(type(v))


# Go ClaimsData field order, all `omitempty`.
CLAIMS_ORDER = [("aud", str), ("exp", int), ("jti", str), ("iat", int),
                ("iss", str), ("name", str), ("nbf", int), ("sub", str)]


def claims_data_json(c):
    parts = []
    for key, _ in CLAIMS_ORDER:
        val = c.get(key)
        if val in (None, "", 0):
            continue
        parts.append(go_string(key) + ":" + go_json(val))
    return parts


def make_jwt(signer, claims, nats):
    c = dict(claims)
    c["iss"] = signer.public_key.decode()
    c.pop("jti", None)
    hash_input = "{" + ",".join(claims_data_json(c)) + "}"
    c["jti"] = b32(hashlib.new("sha512_256", hash_input.encode()).digest())
    nats = dict(nats)
    nats["version"] = 2
    parts = claims_data_json(c)
    parts.append('"nats":' + go_json(nats))
    payload = "{" + ",".join(parts) + "}"
    header = '{"typ":"JWT","alg":"ed25519-nkey"}'
    to_sign = b64url(header.encode()) + "." + b64url(payload.encode())
    sig = signer.sign(to_sign.encode())
    return {
        "token": to_sign + "." + b64url(sig),
        "jti_hash_input": hash_input,
        "payload_json": payload,
        "claims": {**c, "nats": nats},
    }


# ---------------------------------------------------------------- NKeys

MESSAGE = "NATSWire known-answer message \u2713 \x00\xff".encode("utf-8")
NONCE = "CBOOa9o9l7f7Ys8"  # shaped like a nats-server INFO nonce

ROLES = [
    ("operator", nkeys.PREFIX_BYTE_OPERATOR, "O"),
    ("account", nkeys.PREFIX_BYTE_ACCOUNT, "A"),
    ("user", nkeys.PREFIX_BYTE_USER, "U"),
    ("server", nkeys.PREFIX_BYTE_SERVER, "N"),
    ("cluster", nkeys.PREFIX_BYTE_CLUSTER, "C"),
]


def nkey_vectors():
    keys = []
    for name, prefix, letter in ROLES:
        raw = raw_seed("nkey-" + name)
        seed = nkeys.encode_seed(raw, prefix)
        kp = nkeys.from_seed(seed)
        pub = kp.public_key.decode()
        assert pub[0] == letter and seed.decode()[:2] == "S" + letter
        sig = kp.sign(MESSAGE)
        assert kp.verify(MESSAGE, sig)
        keys.append({
            "type": name,
            "prefix_char": letter,
            "raw_seed_hex": raw.hex(),
            "seed": seed.decode(),
            "public_key": pub,
            "public_key_raw_hex": bytes(kp._keys.verify_key).hex(),
            "signature_hex": sig.hex(),
            "nonce_signature_b64url": b64url(kp.sign(NONCE.encode())),
        })

    user_raw = raw_seed("nkey-user")
    pub_raw = bytes(nacl.signing.SigningKey(user_raw).verify_key)
    invalid = {
        # Seed-shaped, valid CRC, but the role is the private-key prefix (P).
        "seed_with_private_role": encode_seed_any(nkeys.PREFIX_BYTE_PRIVATE, user_raw),
        # Seed-shaped, valid CRC, but only 31 raw bytes.
        "seed_truncated_payload": encode_seed_any(nkeys.PREFIX_BYTE_USER, user_raw[:31]),
        # A public key (valid CRC) where a seed is expected.
        "public_key_not_seed": encode_key(nkeys.PREFIX_BYTE_USER, pub_raw),
        # A user public key re-encoded with the seed prefix as its first byte.
        "public_key_with_seed_prefix": encode_key(nkeys.PREFIX_BYTE_SEED, pub_raw),
        # A curve seed: valid, but not an Ed25519 role.
        "curve_seed": encode_seed_any(PREFIX_CURVE, user_raw),
    }
    return {
        "message_hex": MESSAGE.hex(),
        "nonce": NONCE,
        "keys": keys,
        "invalid": invalid,
        "crc16": [
            {"input_hex": b"".hex(), "crc": 0},
            {"input_hex": b"123456789".hex(), "crc": nkeys.crc16(b"123456789")},
            {"input_hex": bytes(range(256)).hex(), "crc": nkeys.crc16(bytes(range(256)))},
        ],
        "base32": [
            {"hex": data.hex(), "text": b32(data)}
            for data in [b"", b"f", b"fo", b"foo", b"foob", b"fooba", b"foobar", bytes(range(40))]
        ],
    }


# ---------------------------------------------------------------- XKeys


def xkey(label):
    raw = raw_seed("xkey-" + label)
    sk = nacl.public.PrivateKey(raw)
    return raw, sk, {
        "raw_seed_hex": raw.hex(),
        "seed": encode_seed_any(PREFIX_CURVE, raw),
        "public_key": encode_key(PREFIX_CURVE, bytes(sk.public_key)),
        "public_key_raw_hex": bytes(sk.public_key).hex(),
    }


def xkey_vectors():
    _, alice_sk, alice = xkey("alice")
    _, bob_sk, bob = xkey("bob")
    box = nacl.public.Box(alice_sk, bob_sk.public_key)
    sealed = []
    for i, text in enumerate([b"hello xkeys \xe2\x9c\x93", b"", bytes(range(200))]):
        nonce = hashlib.sha256(b"xkv1-nonce-%d" % i).digest()[:24]
        enc = box.encrypt(text, nonce)  # nonce || mac || ciphertext
        blob = b"xkv1" + bytes(enc)
        assert bytes(enc)[:24] == nonce
        # Check it opens from Bob's side too.
        assert nacl.public.Box(bob_sk, alice_sk.public_key).decrypt(blob[4:]) == text
        sealed.append({
            "plaintext_hex": text.hex(),
            "nonce_hex": nonce.hex(),
            "sealed_b64": base64.b64encode(blob).decode(),
        })
    return {"alice": alice, "bob": bob, "sealed_alice_to_bob": sealed}


# ---------------------------------------------------------------- JWT


def jwt_vectors():
    account = nkeys.from_seed(nkeys.encode_seed(raw_seed("jwt-account"), nkeys.PREFIX_BYTE_ACCOUNT))
    user = nkeys.from_seed(nkeys.encode_seed(raw_seed("nkey-user"), nkeys.PREFIX_BYTE_USER))
    subject = user.public_key.decode()
    iat = 1700000000

    workload = make_jwt(account, {
        "iat": iat, "exp": 4102444800, "name": "echo <service> & co",
        "sub": subject,
    }, {
        "hash": hashlib.sha256(b"workload binary").hexdigest(),
        "type": "generic",
        "tags": ["nex", "workload"],
        "nested": {"zeta": 1, "alpha": "\u2028x\"y\\", "beta": [True, False, None, 2.5]},
    })
    minimal = make_jwt(account, {"iat": iat, "sub": subject}, {})
    expired = make_jwt(account, {"iat": 1000000000, "exp": 1000000600, "sub": subject}, {})
    not_yet = make_jwt(account, {"iat": iat, "nbf": 4000000000, "sub": subject}, {})

    return {
        "signer_seed": account.seed.decode(),
        "signer_public_key": account.public_key.decode(),
        "subject": subject,
        "valid_at_unix": 1800000000,
        "workload": workload,
        "minimal": minimal,
        "expired": expired,
        "not_yet_valid": not_yet,
        "sha512_256": [
            {"input": s, "digest_hex": hashlib.new("sha512_256", s.encode()).hexdigest()}
            for s in ["", "abc", "x" * 200]
        ],
    }


# ---------------------------------------------------------------- creds


def creds_file():
    account = nkeys.from_seed(nkeys.encode_seed(raw_seed("jwt-account"), nkeys.PREFIX_BYTE_ACCOUNT))
    user_seed = nkeys.encode_seed(raw_seed("creds-user"), nkeys.PREFIX_BYTE_USER)
    user = nkeys.from_seed(user_seed)
    jwt = make_jwt(account, {"iat": 1700000000, "name": "creds-user", "sub": user.public_key.decode()}, {
        "pub": {}, "sub": {}, "subs": -1, "data": -1, "payload": -1, "type": "user",
    })["token"]
    text = (
        "-----BEGIN NATS USER JWT-----\n"
        f"{jwt}\n"
        "------END NATS USER JWT------\n"
        "\n"
        "************************* IMPORTANT *************************\n"
        "NKEY Seed printed below can be used to sign and prove identity.\n"
        "NKEYs are sensitive and should be treated as secrets.\n"
        "\n"
        "-----BEGIN USER NKEY SEED-----\n"
        f"{user_seed.decode()}\n"
        "------END USER NKEY SEED------\n"
        "\n"
        "*************************************************************\n"
    )
    meta = {"jwt": jwt, "seed_public_key": user.public_key.decode(), "file": "user.creds"}
    return text, meta


def write_json(name, obj):
    with open(os.path.join(HERE, name), "w", encoding="utf-8") as f:
        json.dump(obj, f, indent=2, ensure_ascii=True, sort_keys=True)
        f.write("\n")


def main():
    write_json("nkey_vectors.json", nkey_vectors())
    write_json("xkey_vectors.json", xkey_vectors())
    jv = jwt_vectors()
    text, meta = creds_file()
    jv["creds"] = meta
    write_json("jwt_vectors.json", jv)
    with open(os.path.join(HERE, "user.creds"), "w", encoding="utf-8", newline="\n") as f:
        f.write(text)
    print("wrote vectors to", HERE)


if __name__ == "__main__":
    main()
