"""A platform whose transparency log lies: it forks, rewrites, drops or cuts short its
log, changes its key, or shows one witness another history than the other. The company's
command and the witnesses name it, with the two signed checkpoints that prove it, and
never move what they remember to a lying checkpoint."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric import ed25519

from scelle.assistant import transparency
from scelle.cli.main import EXIT_FAILURE, EXIT_OK, run
from scelle.cli.session import Session
from scelle.client.login import SavedLogin, save_login
from scelle.core import authority, certs, merkle, note, tlog
from scelle.core.receipt import Receipt, ReceivedEnvelope, body_sha256, sign_receipt, with_proof
from tests.assistant.hostile import (
    REFERENCE,
    Answer,
    HostilePlatform,
    Request,
    authority_json,
    hostile_platform,
    json_answer,
    me_json,
)
from tests.conftest import NOW

ORIGIN = "marches.example.fr/log"


def _key(seed: str, kind: int = note.ED25519, name: str = ORIGIN) -> note.Signer:
    private = ed25519.Ed25519PrivateKey.from_private_bytes(hashlib.sha256(seed.encode()).digest())
    return note.Signer(name, private, kind)


LOG = _key("the log")


class FakeLog:
    """A log of these entries, served as /log/ serves it, signed with `signer`."""

    def __init__(self, entries: list[bytes], signer: note.Signer = LOG) -> None:
        self.entries = list(entries)
        self.signer = signer
        self.witnessed: dict[str, str] = {}
        self.cosigned: list[str] = []

    @property
    def leaves(self) -> list[bytes]:
        return [merkle.leaf_hash(e) for e in self.entries]

    def checkpoint(self, size: int | None = None) -> str:
        size = len(self.entries) if size is None else size
        tree = tlog.Checkpoint(self.signer.name, size, merkle.root(self.leaves[:size]))
        return tlog.sign_checkpoint(tree, self.signer)

    def proof(self, index: int, size: int) -> tlog.Proof:
        path = merkle.inclusion_proof(index, self.leaves[:size])
        return tlog.Proof(index, tuple(path), self.checkpoint(size))

    def route(self, request: Request) -> Answer:
        text = {"Content-Type": "text/plain; charset=utf-8"}
        if request.path == "/log/checkpoint":
            return 200, text, self.checkpoint().encode()
        if request.path == "/log/witnessed":
            return json_answer({"witnessed": self.witnessed})
        if request.method == "POST" and request.path == "/log/cosignature":
            self.cosigned.append(request.body.decode())
            return json_answer({"kept": []}, 201)
        parsed = tlog.parse_tile_path(request.path.removeprefix("/log/"))
        if parsed is None:
            return json_answer({"detail": "no such tile"}, 404)
        level, index, width = parsed
        if level is None:
            return json_answer({"detail": "no entries here"}, 404)
        span = 1 << (8 * level)
        leaves = self.leaves
        if (index * 256 + width) * span > len(leaves):
            return json_answer({"detail": "no such tile"}, 404)
        data = b"".join(
            merkle.root(leaves[(index * 256 + i) * span : (index * 256 + i + 1) * span])
            for i in range(width)
        )
        return 200, {"Content-Type": "application/octet-stream"}, data


def _entries(count: int, tag: str = "") -> list[bytes]:
    return [tlog.entry("deposit", receipt=hashlib.sha256(f"{tag}{i}".encode()).hexdigest())
            for i in range(count)]  # fmt: skip


@pytest.fixture
def ca() -> authority.Authority:
    return authority.create_authority("Plateforme — autorité", now=NOW - dt.timedelta(days=1))


@pytest.fixture
def platform(ca: authority.Authority, scelle_env: Path) -> Iterator[HostilePlatform]:
    with hostile_platform() as fake:
        fake.set_json("GET", "/api/platform/ca", authority_json(ca))
        fake.set_json("GET", "/api/me", me_json())
        save_login(
            scelle_env,
            SavedLogin(
                url=fake.url, email="offres@btp.fr", token="scl_test_token",
                expires_at=NOW + dt.timedelta(days=90),
                authority_pem=certs.certificate_pem(ca.certificate).decode(),
            ),
        )  # fmt: skip
        yield fake


def _receipt(
    ca: authority.Authority, log: FakeLog, folder: Path, *, index: int, deposit: str = "1"
) -> Path:
    """A receipt signed by the platform, logged as entry `index` of `log`, proven in the
    tree of index + 1 entries."""
    signer = authority.create_signing_identity(ca, "Plateforme — accusés", now=NOW)
    receipt = Receipt(
        platform="Scellé", tender=REFERENCE, bidder="BTP", deposit=deposit, received_at=NOW,
        late=False, envelopes=(ReceivedEnvelope("offre", 10, "a" * 64),),
        log=log.signer.verifier.vkey,
    )  # fmt: skip
    signed = sign_receipt(receipt, signer, [ca.certificate])
    log.entries.insert(index, tlog.entry("deposit", receipt=body_sha256(receipt.to_json())))
    path = folder / f"receipt-{deposit}.json"
    path.write_bytes(with_proof(signed, log.proof(index, index + 1)))
    return path


def scelle(capsys, *args: str, home: Path | None = None) -> tuple[int, str, str]:
    status = run(list(args), Session(home=home, clock=lambda: NOW))
    captured = capsys.readouterr()
    assert "Traceback" not in captured.err
    return status, captured.out, captured.err


def test_a_log_that_forks_rewrites_drops_or_cuts_short_is_named(
    platform: HostilePlatform, ca: authority.Authority, scelle_env: Path, tmp_path: Path, capsys
) -> None:
    honest = FakeLog(_entries(2))
    receipt = _receipt(ca, honest, tmp_path, index=2)
    honest.entries += _entries(3, "later")
    platform.fallback = honest.route
    status, out, err = scelle(capsys, "receipts", "verify", "--online", str(receipt))
    assert status == EXIT_OK, err
    assert "entry 2 of marches.example.fr/log, in its tree of 3 entries" in out
    assert "the log now holds 6 entries" in out
    kept = transparency.remembered(scelle_env, ORIGIN)
    assert kept is not None and kept.checkpoint.size == 6

    rewritten = FakeLog(honest.entries)
    rewritten.entries[2] = tlog.entry("deposit", receipt="0" * 64)  # the receipt replaced
    dropped = FakeLog(honest.entries[:2] + honest.entries[3:] + _entries(2, "more"))
    forked = FakeLog(honest.entries[:3] + _entries(4, "fork"))  # keeps the receipt's tree
    cut = FakeLog(honest.entries[:4])  # below what this workstation saw
    for lying, said in ((rewritten, "contradicts itself"), (dropped, "contradicts itself"),
                        (forked, "contradicts itself"), (cut, "fewer than the 6")):  # fmt: skip
        platform.fallback = lying.route
        status, _out, err = scelle(capsys, "receipts", "verify", "--online", str(receipt))
        assert status == EXIT_FAILURE and said in err, err
        assert "two signed checkpoints that prove it" in err
        assert lying.checkpoint() in err  # the lying tree, signed, to show a judge
        assert "Keep both signed checkpoints" in err
        kept = transparency.remembered(scelle_env, ORIGIN)
        assert kept is not None and kept.checkpoint.size == 6  # never moved to a lie
    # Offline, the receipt still verifies: its proof is the platform's own word.
    assert scelle(capsys, "receipts", "verify", str(receipt))[0] == EXIT_OK

    # A log that changes its key for the same name is refused, not learnt.
    other = FakeLog(_entries(1), _key("another key"))
    again = _receipt(ca, other, tmp_path, index=1, deposit="2")
    platform.fallback = other.route
    status, _out, err = scelle(capsys, "receipts", "verify", "--online", str(again))
    assert status == EXIT_FAILURE and "another key than the one this workstation knows" in err


def test_a_proof_that_lies_is_refused_offline(
    platform: HostilePlatform, ca: authority.Authority, tmp_path: Path, capsys
) -> None:
    log = FakeLog(_entries(5))
    receipt = _receipt(ca, log, tmp_path, index=3)
    document = json.loads(receipt.read_text())
    other = FakeLog(_entries(5), _key("an impostor"))
    for transparency_text, said in (
        (str(log.proof(2, 4)), "does not show this entry"),  # another entry's proof
        (str(other.proof(1, 4)).replace(other.signer.name, ORIGIN), "not signed by the log"),
        ("c2sp.org/tlog-proof@v1\nindex x\n\n", "not a proof"),
        (None, "proof that it is in the platform's transparency log is missing"),
    ):
        if transparency_text is None:
            document.pop("transparency")
        else:
            document["transparency"] = transparency_text
        receipt.write_text(json.dumps(document))
        status, _out, err = scelle(capsys, "receipts", "verify", str(receipt))
        assert status == EXIT_FAILURE and said in err, err


def test_two_witnesses_one_shown_a_fork_and_companies_that_require_them(
    platform: HostilePlatform, ca: authority.Authority, tmp_path: Path, capsys
) -> None:
    honest = FakeLog(_entries(3))
    homes = {name: tmp_path / name for name in ("prefecture", "federation")}
    keys = {}
    for name, home in homes.items():
        status, out, err = scelle(capsys, "witness", "key", "--name", f"{name}.example/w",
                                  home=home)  # fmt: skip
        assert status == EXIT_OK, err
        keys[name] = note.Verifier.parse(out.strip())
        assert keys[name].kind == note.COSIGNATURE
    # Each witness sees the log through its own server: the log can show each its own story.
    with hostile_platform() as to_prefecture, hostile_platform() as to_federation:
        to_prefecture.fallback = honest.route
        to_federation.fallback = honest.route
        servers = {"prefecture": to_prefecture, "federation": to_federation}
        for name, server in servers.items():
            args = ("witness", "run", server.url, "--log-key", LOG.verifier.vkey, "--once")
            status, out, err = scelle(capsys, *args, home=homes[name])
            assert status == EXIT_OK and "Cosigned the log marches.example.fr/log at 3" in err + out
        assert len(honest.cosigned) == 2
        # The log grows for the prefecture (a company's deposit, entry 3, among others),
        # and forks for the federation.
        receipt = _receipt(ca, honest, tmp_path, index=3)
        honest.entries += _entries(2, "later")
        forked = FakeLog(honest.entries[:2] + _entries(5, "fork"))
        to_federation.fallback = forked.route
        status, out, err = scelle(capsys, "witness", "run", to_prefecture.url, "--once",
                                  home=homes["prefecture"])  # fmt: skip
        assert status == EXIT_OK and "at 6 entries" in out + err, err
        status, _out, err = scelle(capsys, "witness", "run", to_federation.url, "--once",
                                   home=homes["federation"])  # fmt: skip
        assert status == EXIT_FAILURE and "contradicts itself" in err
        assert forked.checkpoint() in err and honest.checkpoint(3) in err
        assert forked.cosigned == []  # the fork got no cosignature
    # What each cosigned verifies under its key, over the checkpoint it saw.
    latest = {}
    for sent in honest.cosigned:
        cosigned = tlog.open_checkpoint(sent, LOG.verifier)
        for name, key in keys.items():
            if cosigned.note.signed_by(key):
                latest[name] = sent
    assert tlog.open_checkpoint(latest["prefecture"], LOG.verifier).size == 6
    assert tlog.open_checkpoint(latest["federation"], LOG.verifier).size == 3

    # A company requires witnesses: its receipt is entry 3, proven in the tree of 4.
    honest.witnessed = {keys["prefecture"].name: latest["prefecture"],
                        keys["federation"].name: latest["federation"]}  # fmt: skip
    platform.fallback = honest.route
    need = ("--witness", keys["prefecture"].vkey)
    status, out, err = scelle(capsys, "receipts", "verify", *need, str(receipt))
    assert status == EXIT_OK and "cosigned by prefecture.example/w in its tree of 6" in out, err
    need_both = (*need, "--witness", keys["federation"].vkey)
    status, _out, err = scelle(capsys, "receipts", "verify", *need_both, str(receipt))
    assert status == EXIT_FAILURE and "federation.example/w has not yet cosigned" in err
    # A platform that makes up a witness's cosignature is not believed.
    prefecture_line = latest["prefecture"].split("\n\n")[1].split("\n")[1]
    made_up = prefecture_line.replace("prefecture.example/w", "federation.example/w")
    honest.witnessed[keys["federation"].name] = f"{honest.checkpoint()}{made_up}\n"
    status, _out, err = scelle(capsys, "receipts", "verify", *need_both, str(receipt))
    assert status == EXIT_FAILURE and "has cosigned no checkpoint" in err
