"""The workstation against a platform that lies (DESIGN.md, "Trust").

Every case runs the real `scelle` command against a real HTTP server on
127.0.0.1 whose answers lie; each must end in one clear refusal, exit 1, no
traceback, nothing sent that should not be, nothing written outside the
chosen folder and nothing deleted.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import json
import unicodedata
import uuid
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from scelle.cli.main import EXIT_FAILURE, EXIT_OK, run
from scelle.cli.session import Session
from scelle.client.login import SavedLogin, save_login
from scelle.core import certs
from scelle.core.archive import MANIFEST_FORMAT
from scelle.core.rsf import rsf_of_certificates
from scelle.keystore import KeyStore
from tests.assistant.hostile import (
    DEADLINE,
    REFERENCE,
    Buyer,
    HostilePlatform,
    authority_json,
    hostile_platform,
    make_buyer,
    me_json,
    recipient_json,
    seal_bytes,
    sealed_envelope,
    tender_json,
)
from tests.conftest import NOW, STORE_PASSPHRASE, Identity

UNDERSTOOD = "does not understand"
AFTER_DEADLINE = DEADLINE + dt.timedelta(hours=1)


@pytest.fixture
def carol(identities: dict[str, Identity]) -> Identity:
    return identities["carol"]


@pytest.fixture(scope="module")
def buyer() -> Buyer:
    return make_buyer(rsa.generate_private_key(public_exponent=65537, key_size=2048))


@pytest.fixture
def platform(buyer: Buyer, scelle_env: Path) -> Iterator[HostilePlatform]:
    """The fake platform, honest until a test makes it lie; this workstation logged in."""
    with hostile_platform() as fake:
        fake.set_json("GET", "/api/platform/ca", authority_json(buyer.ca))
        fake.set_json("GET", "/api/me", me_json())
        fake.set_json(
            "GET",
            f"/api/tenders/{REFERENCE}",
            tender_json([recipient_json(buyer.certificate, "BICLE")], [buyer.certificate]),
        )
        save_login(
            scelle_env,
            SavedLogin(
                url=fake.url,
                email="x@y.fr",
                token="scl_test_token",
                expires_at=NOW + dt.timedelta(days=90),
                authority_pem=certs.certificate_pem(buyer.ca.certificate).decode(),
            ),
        )
        yield fake


def scelle(capsys, *args: str, clock: dt.datetime = NOW) -> tuple[int, str, str]:
    status = run(list(args), Session(clock=lambda: clock))
    captured = capsys.readouterr()
    assert "Traceback" not in captured.err
    return status, captured.out, captured.err


@pytest.fixture
def bid(tmp_path: Path) -> list[str]:
    (tmp_path / "offre").mkdir()
    (tmp_path / "offre" / "memoire.txt").write_text("Notre offre\n")
    (tmp_path / "DC1.txt").write_text("DC1\n")
    return [
        "--envelope",
        f"candidature={tmp_path / 'DC1.txt'}",
        "--envelope",
        f"offre={tmp_path / 'offre'}",
    ]


def _with_intruder(buyer: Buyer, intruder: Identity, *, issued_by_platform: bool) -> dict[str, Any]:
    recipients = [
        recipient_json(buyer.certificate, "BICLE"),
        recipient_json(intruder.certificate, "SECOURS", issued_by_platform=issued_by_platform),
    ]
    # A careful liar: the RSF it states is the one its certificates give.
    return tender_json(recipients, [buyer.certificate, intruder.certificate])


# --- deposits: whom the bid is sealed to ----------------------------------------------------


def test_an_extra_recipient_referenced_as_is_needs_the_notice_s_code(
    platform: HostilePlatform, buyer: Buyer, carol: Identity, bid: list[str], capsys
) -> None:
    lie = _with_intruder(buyer, carol, issued_by_platform=False)
    platform.set_json("GET", f"/api/tenders/{REFERENCE}", lie)
    status, _, err = scelle(capsys, "deposit", REFERENCE, *bid)
    assert status == EXIT_FAILURE
    assert "was not issued by the platform's CA" in err and "--expect-rsf" in err
    # The buyer's notice gives the honest set's code: the lie is caught by it.
    honest = rsf_of_certificates([buyer.certificate])
    status, _, err = scelle(capsys, "deposit", REFERENCE, *bid, "--expect-rsf", honest)
    assert status == EXIT_FAILURE
    assert f"not the {honest} expected: nothing was sent" in err
    assert platform.asked("POST", "/api/uploads") == []


def test_an_extra_recipient_said_to_be_the_platform_s_is_refused(
    platform: HostilePlatform, buyer: Buyer, carol: Identity, bid: list[str], capsys
) -> None:
    lie = _with_intruder(buyer, carol, issued_by_platform=True)
    platform.set_json("GET", f"/api/tenders/{REFERENCE}", lie)
    status, _, err = scelle(capsys, "deposit", REFERENCE, *bid, "--expect-rsf", lie["rsf"])
    assert status == EXIT_FAILURE
    assert "the certificate of SECOURS was not issued by the platform's CA" in err
    assert platform.asked("POST", "/api/uploads") == []


def test_a_stated_rsf_its_certificates_do_not_give(
    platform: HostilePlatform, buyer: Buyer, carol: Identity, bid: list[str], capsys
) -> None:
    lie = tender_json([recipient_json(buyer.certificate, "BICLE")], [carol.certificate])
    platform.set_json("GET", f"/api/tenders/{REFERENCE}", lie)
    for command in (["deposit", REFERENCE, *bid], ["tenders", "show", REFERENCE]):
        status, _, err = scelle(capsys, *command)
        assert status == EXIT_FAILURE
        assert f"states {lie['rsf']}" in err and "certificates it lists give" in err
    assert platform.asked("POST", "/api/uploads") == []


def test_a_wrong_expected_code_sends_nothing(
    platform: HostilePlatform, buyer: Buyer, bid: list[str], capsys
) -> None:
    status, _, err = scelle(
        capsys, "deposit", REFERENCE, *bid, "--expect-rsf", "RSF 0000-0000-0000-0000-0000"
    )
    assert status == EXIT_FAILURE and "nothing was sent" in err
    status, _, err = scelle(capsys, "deposit", REFERENCE, *bid, "--expect-rsf", "not a code")
    assert status == EXIT_FAILURE and "is not a recipient-set fingerprint" in err
    assert platform.asked("POST", "/api/uploads") == []


def _deep(depth: int) -> bytes:
    return b'{"a":' * depth + b"1" + b"}" * depth


MALFORMED_TENDERS = {
    "missing field": lambda t: {k: v for k, v in t.items() if k != "deadline"},
    "wrong type": lambda t: {**t, "deadline": 5},
    "a number as text": lambda t: {**t, "max_deposit_bytes": "1073741824"},
    "key pairs not a list": lambda t: {**t, "key_pairs": {"BICLE": 1}},
    "a kind that is a path": lambda t: {**t, "envelopes": ["candidature", "../offre"]},
    "a deadline without offset": lambda t: {**t, "deadline": "2027-01-01T12:00"},
    "control characters": lambda t: {**t, "title": "Travaux\x1b[2J\x1b[31m"},
    "a certificate that is not one": lambda t: {
        **t,
        "key_pairs": [{**t["key_pairs"][0], "certificate_pem": "-----BEGIN CERTIFICATE-----"}],
    },
}


@pytest.mark.parametrize("case", sorted(MALFORMED_TENDERS))
def test_malformed_tenders_are_refused_whole(
    platform: HostilePlatform, buyer: Buyer, bid: list[str], capsys, case: str
) -> None:
    honest = tender_json([recipient_json(buyer.certificate, "BICLE")], [buyer.certificate])
    platform.set_json("GET", f"/api/tenders/{REFERENCE}", MALFORMED_TENDERS[case](honest))
    for command in (["deposit", REFERENCE, *bid], ["tenders", "show", REFERENCE]):
        status, out, err = scelle(capsys, *command)
        assert status == EXIT_FAILURE, (case, out)
        assert "platform" in err and ("understand" in err or "certificate" in err), err
        assert "\x1b" not in err + out
    assert platform.asked("POST", "/api/uploads") == []


RAW_ANSWERS = {
    "deep JSON": (200, {"Content-Type": "application/json"}, _deep(100_000)),
    "huge JSON": (200, {"Content-Type": "application/json"}, b'["' + b"x" * (33 << 20) + b'"]'),
    "not JSON": (200, {"Content-Type": "text/html"}, b"<html>hello</html>"),
    "a redirect to another host": (302, {"Location": "https://evil.example/api/tenders/AO-1"}, b""),
    "an error with escapes": (
        409,
        {"Content-Type": "application/json"},
        json.dumps({"detail": "refus\x1b]0;pwned\x07" + "x" * 10_000}).encode(),
    ),
}


@pytest.mark.parametrize("case", sorted(RAW_ANSWERS))
def test_raw_hostile_answers(
    platform: HostilePlatform, bid: list[str], capsys, case: str, tmp_path: Path
) -> None:
    platform.set("GET", f"/api/tenders/{REFERENCE}", RAW_ANSWERS[case])
    for command in (
        ["deposit", REFERENCE, *bid],
        ["tenders", "show", REFERENCE],
        ["open", REFERENCE, "--out", str(tmp_path / "plis")],
    ):
        status, out, err = scelle(capsys, *command, clock=AFTER_DEADLINE)
        assert status == EXIT_FAILURE, (case, command)
        assert "\x1b" not in err + out and "\x07" not in err + out
        assert len(err) < 2000
    assert platform.asked("POST", "/api/uploads") == []
    assert not (tmp_path / "plis").exists()
    assert [r.path for r in platform.requests if "evil" in r.path] == []


@pytest.mark.parametrize(
    "answer",
    [
        {"token": "t", "expires_at": "soon", "user": me_json()},
        {"token": "t", "expires_at": NOW.isoformat()},
        {"token": "t\nX-Injected: 1", "expires_at": NOW.isoformat(), "user": me_json()},
        [1, 2, 3],
    ],
)
def test_a_malformed_login_answer(
    platform: HostilePlatform, scelle_env: Path, tmp_path: Path, capsys, answer: object
) -> None:
    (scelle_env / "platform.json").unlink()
    password = tmp_path / "pw"
    password.write_text("Mot-de-passe-Agent-2026!\n")
    platform.set_json("POST", "/api/auth/login", answer)
    status, _, err = scelle(
        capsys, "login", platform.url, "--email", "a@b.fr", "--password-file", str(password)
    )
    assert status == EXIT_FAILURE and UNDERSTOOD in err
    assert not (scelle_env / "platform.json").exists()


# --- opening: ids, kinds, names and bytes from the server -----------------------------------


@pytest.fixture
def buyer_station(platform: HostilePlatform, buyer: Buyer, scelle_env: Path) -> KeyStore:
    store = KeyStore(scelle_env, lambda _new: STORE_PASSPHRASE)
    store.add("BICLE", buyer.key, buyer.certificate, exportable=True, origin="generated", now=NOW)
    return store


def _deposit_json(
    deposit_id: str, bidder: str, envelopes: dict[str, bytes], *, at: int = 0
) -> dict[str, object]:
    return {
        "id": deposit_id,
        "tender": REFERENCE,
        "bidder": bidder,
        "received_at": (NOW + dt.timedelta(minutes=at)).isoformat(),
        "late": False,
        "envelopes": [
            {
                "kind": kind,
                "size": len(data),
                "sha256": hashlib.sha256(data).hexdigest(),
                "recipients": [],
                "upload": None,
            }
            for kind, data in envelopes.items()
        ],
    }


def _serve_deposits(
    platform: HostilePlatform, deposits: list[tuple[str, str, dict[str, bytes]]]
) -> None:
    """The deposits list and each envelope's bytes, served as the platform would."""
    platform.set_json(
        "GET",
        f"/api/tenders/{REFERENCE}/deposits",
        [_deposit_json(i, bidder, env, at=n) for n, (i, bidder, env) in enumerate(deposits)],
    )
    for deposit_id, _bidder, envelopes in deposits:
        for kind, data in envelopes.items():
            path = f"/api/deposits/{deposit_id}/envelopes/{kind}"
            platform.set("GET", path, (200, {}, data))
            platform.set("POST", f"{path}/opened", (204, {}, b""))


def _honest_bid(tmp_path: Path, bidder: str, buyer: Buyer) -> dict[str, bytes]:
    folder = tmp_path / f"bid-{hashlib.sha256(bidder.encode()).hexdigest()[:8]}"
    (folder / "candidature").mkdir(parents=True)
    (folder / "candidature" / "DC1.txt").write_text(f"DC1 de {bidder}\n")
    (folder / "offre").mkdir()
    (folder / "offre" / "offre.txt").write_text(f"Offre de {bidder}\n")
    return {
        kind: sealed_envelope(folder / kind, kind, bidder, [buyer.certificate])
        for kind in ("candidature", "offre")
    }


def _tree(folder: Path) -> set[str]:
    return {p.relative_to(folder).as_posix() for p in folder.rglob("*")}


@pytest.mark.parametrize(
    "deposit_id", ["../../x", "/etc/scelle", "C:\\Windows\\x", "CON", "", "A" * 36]
)
def test_deposit_ids_that_are_not_uuids(
    platform: HostilePlatform, buyer_station: KeyStore, tmp_path: Path, capsys, deposit_id: str
) -> None:
    out = tmp_path / "work" / "plis"
    out.parent.mkdir()
    before = _tree(tmp_path)
    _serve_deposits(platform, [(deposit_id, "BTP", {"offre": b"x" * 100})])
    status, _, err = scelle(capsys, "open", REFERENCE, "--out", str(out), clock=AFTER_DEADLINE)
    assert status == EXIT_FAILURE and UNDERSTOOD in err
    assert _tree(tmp_path) == before  # nothing written, nothing deleted


def test_a_hostile_listing_fails_alone_and_honest_bids_open(
    platform: HostilePlatform,
    buyer: Buyer,
    buyer_station: KeyStore,
    tmp_path: Path,
    capsys,
    carol: Identity,
) -> None:
    out = tmp_path / "plis"
    out.mkdir()
    sentinel = tmp_path / "keep.txt"
    sentinel.write_text("not yours")
    honest = str(uuid.uuid4())
    empty, outsider, longer, foreign = (str(uuid.uuid4()) for _ in range(4))
    outside_ok = sealed_envelope(
        _bid_folder(tmp_path, "Double"),
        "offre",
        "Double SARL",
        [buyer.certificate, carol.certificate],
    )
    deposits = [
        (honest, "BTP Normandie", _honest_bid(tmp_path, "BTP Normandie", buyer)),
        (empty, "Vide", {"offre": b""}),  # a size of 0: deletes nothing, opens nothing
        (outsider, "Double SARL", {"offre": outside_ok}),
        (longer, "Bavard", {"offre": _honest_bid(tmp_path, "Bavard", buyer)["offre"]}),
        (foreign, "Autre", {"annexe": b"x"}),  # a kind the tender does not have
    ]
    _serve_deposits(platform, deposits)
    # The server sends more bytes than it recorded for one envelope.
    recorded = deposits[3][2]["offre"]
    platform.set("GET", f"/api/deposits/{longer}/envelopes/offre", (200, {}, recorded + b"!" * 10))
    status, _, err = scelle(capsys, "open", REFERENCE, "--out", str(out), clock=AFTER_DEADLINE)
    assert status == EXIT_FAILURE
    assert sentinel.read_text() == "not yours"
    opened = out / "BTP Normandie" / honest
    assert (opened / "offre" / "offre.txt").read_text() == "Offre de BTP Normandie\n"
    assert (out / "Double SARL" / outsider / "offre" / "memoire.txt").is_file()
    assert f"FAILED Vide — offre (deposit {empty})" in err
    assert f"FAILED Bavard — offre (deposit {longer})" in err and "longer than" in err
    assert f"FAILED Autre — annexe (deposit {foreign})" in err
    assert "this tender does not have" in err
    assert "WARNING Double SARL — offre" in err and "outside the tender's set" in err
    assert "carol" in err
    assert "Summary: 3 opened, 0 already opened, 3 failed, 1 outside the tender's set." in err
    # Every opening was reported to the platform before its files appeared.
    reported = {r.path for r in platform.asked("POST", "/api/deposits/")}
    assert f"/api/deposits/{honest}/envelopes/offre/opened" in reported
    assert f"/api/deposits/{outsider}/envelopes/offre/opened" in reported
    assert all(p.is_relative_to(out) for p in out.rglob("*"))
    # Again: what opened is kept and reported again; the failures fail again.
    status, _, err = scelle(capsys, "open", REFERENCE, "--out", str(out), clock=AFTER_DEADLINE)
    assert status == EXIT_FAILURE
    assert "Summary: 0 opened, 3 already opened, 3 failed" in err


def _bid_folder(tmp_path: Path, label: str) -> Path:
    folder = tmp_path / f"folder-{label}"
    folder.mkdir()
    (folder / "memoire.txt").write_text(f"Mémoire {label}\n")
    return folder


@pytest.mark.parametrize(
    ("bidder", "folder"),
    [
        ("CON", "_CON"),
        ("lpt1.txt", "_lpt1.txt"),
        ("../../evil", "_.._evil"),
        ("..", "_"),
        ("a/b\\c:d", "a_b_c_d"),
        (" BTP. ", "BTP"),
        ("É" * 300, "É" * 80),
    ],
)
def test_company_names_become_safe_folders(
    platform: HostilePlatform,
    buyer: Buyer,
    buyer_station: KeyStore,
    tmp_path: Path,
    capsys,
    bidder: str,
    folder: str,
) -> None:
    out = tmp_path / "plis"
    deposit_id = str(uuid.uuid4())
    _serve_deposits(platform, [(deposit_id, bidder, _honest_bid(tmp_path, bidder, buyer))])
    status, _, err = scelle(capsys, "open", REFERENCE, "--out", str(out), clock=AFTER_DEADLINE)
    assert status == EXIT_OK, err
    assert (out / folder / deposit_id / "offre" / "offre.txt").is_file()
    assert {p.name for p in out.iterdir()} == {folder}


def test_names_that_clean_alike_get_their_own_folders(
    platform: HostilePlatform, buyer: Buyer, buyer_station: KeyStore, tmp_path: Path, capsys
) -> None:
    out = tmp_path / "plis"
    names = ["BTP", "btp", "B/T", "B:T"]
    deposits = [(str(uuid.uuid4()), name, _honest_bid(tmp_path, name, buyer)) for name in names]
    _serve_deposits(platform, deposits)
    status, _, err = scelle(capsys, "open", REFERENCE, "--out", str(out), clock=AFTER_DEADLINE)
    assert status == EXIT_OK, err
    assert sorted(p.name for p in out.iterdir()) == ["BTP", "B_T", "B_T (2)", "btp (2)"]


# --- hostile archives: each fails alone --------------------------------------------------------


def _crafted(bidder: str, files: list[tuple[str, bytes]], *, lie_sizes: bool = False) -> bytes:
    """A ZIP laid out as ours, with a manifest, whatever names and sizes it is given."""
    manifest = {
        "format": MANIFEST_FORMAT,
        "tender": REFERENCE,
        "envelope": "offre",
        "bidder": bidder,
        "files": [
            {
                "name": name,
                "size": len(data) * (2 if lie_sizes else 1),
                "sha256": hashlib.sha256(data).hexdigest(),
            }
            for name, data in files
        ],
    }
    content = io.BytesIO()
    with zipfile.ZipFile(content, "w", zipfile.ZIP_STORED) as zipped:
        zipped.writestr("manifest.json", json.dumps(manifest))
        for name, data in files:
            zipped.writestr(name, data)
    return content.getvalue()


HOSTILE_ARCHIVES = {
    "a file and a folder of one name": [("a", b"1"), ("a/b", b"2")],
    "a 300-byte name": [("x" * 300, b"1")],
    "names differing by case": [("Offre.pdf", b"1"), ("offre.pdf", b"2")],
    "names differing by normalisation": [
        (unicodedata.normalize("NFC", "é.txt"), b"1"),
        (unicodedata.normalize("NFD", "é.txt"), b"2"),
    ],
    "100,000 tiny files": [(f"f{i}", b"") for i in range(100_000)],
}


def test_hostile_archives_fail_alone(
    platform: HostilePlatform, buyer: Buyer, buyer_station: KeyStore, tmp_path: Path, capsys
) -> None:
    out = tmp_path / "plis"
    deposits = [(str(uuid.uuid4()), "Honnête", _honest_bid(tmp_path, "Honnête", buyer))]
    for n, (_case, files) in enumerate(sorted(HOSTILE_ARCHIVES.items())):
        bidder = f"Hostile {n}"
        archive = _crafted(bidder, files)
        deposits.append(
            (str(uuid.uuid4()), bidder, {"offre": seal_bytes(archive, [buyer.certificate])})
        )
    liar = "Hostile sizes"
    lying = _crafted(liar, [("a.txt", b"abc")], lie_sizes=True)
    deposits.append((str(uuid.uuid4()), liar, {"offre": seal_bytes(lying, [buyer.certificate])}))
    _serve_deposits(platform, deposits)
    status, _, err = scelle(capsys, "open", REFERENCE, "--out", str(out), clock=AFTER_DEADLINE)
    assert status == EXIT_FAILURE
    assert (out / "Honnête" / deposits[0][0] / "offre" / "offre.txt").is_file()
    for n, case in enumerate(sorted(HOSTILE_ARCHIVES)):
        assert f"FAILED Hostile {n} — offre" in err, case
    assert "FAILED Hostile sizes — offre" in err
    assert "both as a file and as a folder" in err and "too long" in err
    assert "twice" in err and "at most 20000" in err
    assert f"Summary: 2 opened, 0 already opened, {len(HOSTILE_ARCHIVES) + 1} failed" in err
    # Nothing of a failed envelope stays: only the honest company's folders.
    assert {p.name for p in out.iterdir()} == {"Honnête", ".scelle-work"}


def test_an_envelope_our_keys_cannot_open_says_so_uniformly(
    platform: HostilePlatform,
    buyer: Buyer,
    buyer_station: KeyStore,
    tmp_path: Path,
    capsys,
    carol: Identity,
) -> None:
    out = tmp_path / "plis"
    honest = _honest_bid(tmp_path, "BTP", buyer)
    folder = _bid_folder(tmp_path, "Autre")
    elsewhere = sealed_envelope(folder, "offre", "Autre", [carol.certificate])
    deposits = [
        (str(uuid.uuid4()), "BTP", honest),
        (str(uuid.uuid4()), "Autre", {"offre": elsewhere}),
    ]
    _serve_deposits(platform, deposits)
    status, _, err = scelle(capsys, "open", REFERENCE, "--out", str(out), clock=AFTER_DEADLINE)
    assert status == EXIT_FAILURE
    assert "FAILED Autre — offre" in err and "cannot be opened" in err
    assert "archive" not in err and "manifest" not in err  # no hint of which step failed
    assert (out / "BTP").is_dir() and not (out / "Autre").exists()


def test_launch_says_which_key_pairs_it_cannot_vouch_for(
    platform: HostilePlatform, buyer: Buyer, scelle_env: Path, capsys, carol: Identity
) -> None:
    store = KeyStore(scelle_env, lambda _new: STORE_PASSPHRASE)
    store.add("BICLE", buyer.key, buyer.certificate, exportable=True, origin="generated", now=NOW)
    # The platform assigned, beside ours, a personal key pair nobody here holds.
    answer = _with_intruder(buyer, carol, issued_by_platform=True)
    platform.set_json("POST", f"/api/tenders/{REFERENCE}/launch", answer)
    status, _, err = scelle(capsys, "tenders", "launch", REFERENCE, "--key", "BICLE")
    assert status == EXIT_OK, err
    assert f"Recipient-set fingerprint: {answer['rsf']}" in err
    assert "the personal key pair SECOURS is not in this workstation's store" in err
    assert "personal key pair BICLE is not" not in err
    assert store.tender_record(platform.url, REFERENCE) == (
        answer["rsf"],
        sorted(certs.fingerprint_sha256(c) for c in (buyer.certificate, carol.certificate)),
    )


def test_a_receipt_fetched_again_must_be_the_one_asked_for(
    platform: HostilePlatform, buyer: Buyer, capsys, tmp_path: Path
) -> None:
    """A platform answering with another deposit's receipt (valid, and under that other
    deposit's id) is refused, and nothing is written."""
    from scelle.core import authority
    from scelle.core.receipt import Receipt, ReceivedEnvelope, sign_receipt

    signer = authority.create_signing_identity(buyer.ca, "Scellé — accusés", now=NOW)
    asked, other = str(uuid.uuid4()), str(uuid.uuid4())

    def answer_for(deposit: str) -> dict[str, Any]:
        receipt = Receipt(
            platform="Scellé", tender=REFERENCE, bidder="BTP", deposit=deposit,
            received_at=NOW, late=False, envelopes=(ReceivedEnvelope("offre", 10, "a" * 64),),
        )  # fmt: skip
        return {
            "id": deposit, "tender": REFERENCE, "bidder": "BTP", "received_at": NOW.isoformat(),
            "late": False, "envelopes": [{"kind": "offre", "size": 10, "sha256": "a" * 64,
                                          "recipients": [], "upload": None}],
            "receipt": sign_receipt(receipt, signer, [buyer.ca.certificate]).decode(),
        }  # fmt: skip

    target = tmp_path / "accuse.json"
    platform.set_json("GET", f"/api/deposits/{asked}", answer_for(other))
    status, _, err = scelle(capsys, "deposits", "receipt", asked, "-o", str(target))
    assert status == EXIT_FAILURE and "receipt of another deposit" in err
    assert not target.exists()
    platform.set_json("GET", f"/api/deposits/{asked}", answer_for(asked))
    status, _, err = scelle(capsys, "deposits", "receipt", asked, "-o", str(target))
    assert status == EXIT_OK and target.exists(), err


# --- the test tender: a key the platform says it publishes -------------------------------


def _pem(key: rsa.RSAPrivateKey) -> str:
    from cryptography.hazmat.primitives import serialization

    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()


def test_a_test_key_that_is_not_what_it_claims_opens_nothing(
    platform: HostilePlatform, buyer: Buyer, carol: Identity, capsys, tmp_path: Path
) -> None:
    tender = tender_json([recipient_json(buyer.certificate, "BICLE")], [buyer.certificate])
    out = tmp_path / "ouverts"
    # A real tender: the test key is not even asked for.
    platform.set_json("GET", f"/api/tenders/{REFERENCE}", tender)
    status, _, err = scelle(capsys, "open", REFERENCE, "--test-key", "--out", str(out))
    assert status == EXIT_FAILURE and "is not a test tender" in err
    assert not platform.asked("GET", f"/api/tenders/{tender['id']}/test-key")
    platform.set_json("GET", f"/api/tenders/{REFERENCE}", {**tender, "test": True})
    answer = {
        "tender": tender["id"], "reference": REFERENCE, "pfx_password": "x", "deposit_hours": 48,
        "certificate_pem": certs.certificate_pem(buyer.certificate).decode(),
    }  # fmt: skip
    for private_key_pem, said in [
        ("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n", "cannot be read"),
        (_pem(carol.key), "does not match its certificate"),  # a key for another certificate
    ]:
        path = f"/api/tenders/{tender['id']}/test-key"
        platform.set_json("GET", path, {**answer, "private_key_pem": private_key_pem})
        status, _, err = scelle(capsys, "open", REFERENCE, "--test-key", "--out", str(out))
        assert status == EXIT_FAILURE and said in err, err
        assert not platform.asked("GET", "/api/deposits") and not out.exists()


def test_openings_are_reported_together_and_a_refusal_fails_only_its_envelope(
    platform: HostilePlatform, buyer: Buyer, buyer_station: KeyStore, tmp_path: Path, capsys
) -> None:
    """The envelopes opened together are reported in one request (rule 7: their files appear
    after it); a report refused as a whole is sent again envelope by envelope, and the one
    the platform refuses fails alone, its files never shown."""
    out = tmp_path / "plis"
    first, second, refused = (str(uuid.uuid4()) for _ in range(3))
    bids = {name: _honest_bid(tmp_path, name, buyer) for name in ("Alpha", "Beta", "Gamma")}
    _serve_deposits(platform, [(first, "Alpha", bids["Alpha"]), (second, "Beta", bids["Beta"]),
                               (refused, "Gamma", bids["Gamma"])])  # fmt: skip
    platform.set("POST", "/api/opened-envelopes", (409, {}, b'{"detail": "non", "hint": null}'))
    platform.set("POST", f"/api/deposits/{refused}/envelopes/offre/opened",
                 (409, {}, b'{"detail": "refused by the platform", "hint": null}'))  # fmt: skip
    status, _, err = scelle(capsys, "open", REFERENCE, "--out", str(out), clock=AFTER_DEADLINE)
    assert status == EXIT_FAILURE
    assert f"FAILED Gamma — offre (deposit {refused}): refused by the platform" in err
    assert "Summary: 5 opened, 0 already opened, 1 failed" in err
    gamma = out / "Gamma" / refused
    assert (gamma / "candidature").is_dir() and not (gamma / "offre").exists()  # never shown
    assert not any(out.glob(".scelle-work/*.opened"))  # nor stayed in the work folder
    together = platform.asked("POST", "/api/opened-envelopes")
    assert together, "the six envelopes, opened at once, were reported together"
    named = {(e["deposit"], e["kind"]) for r in together for e in json.loads(r.body)["envelopes"]}
    assert (refused, "offre") in named and len(named) >= 2


@pytest.mark.parametrize(
    ("answer", "said"),
    [
        ((302, {"Location": "https://evil.example/x.p7m"}, b""), "a redirect (HTTP 302)"),
        ((409, {"Content-Type": "application/json"},
          json.dumps({"detail": "refus\x1b]0;pwned\x07" + "x" * 10_000}).encode()), "refus"),
        ((500, {"Content-Type": "text/html"}, b"<html>" + b"x" * (33 << 20)), "HTTP 500"),
    ],
)  # fmt: skip
def test_an_envelope_download_answered_wrongly_fails_alone(
    platform: HostilePlatform,
    buyer: Buyer,
    buyer_station: KeyStore,
    tmp_path: Path,
    capsys,
    answer: tuple[int, dict[str, str], bytes],
    said: str,
) -> None:
    """The envelope's download (the standard library's client, not httpx) follows no
    redirect, prints no escape, reads no unbounded error, and fails that envelope only."""
    out = tmp_path / "plis"
    honest, hostile = str(uuid.uuid4()), str(uuid.uuid4())
    bids = {name: _honest_bid(tmp_path, name, buyer) for name in ("Alpha", "Beta")}
    _serve_deposits(platform, [(honest, "Alpha", bids["Alpha"]), (hostile, "Beta", bids["Beta"])])
    platform.set("GET", f"/api/deposits/{hostile}/envelopes/offre", answer)
    status, out_text, err = scelle(capsys, "open", REFERENCE, "--out", str(out),
                                   clock=AFTER_DEADLINE)  # fmt: skip
    assert status == EXIT_FAILURE
    assert f"FAILED Beta — offre (deposit {hostile})" in err and said in err
    assert "\x1b" not in err + out_text and "\x07" not in err + out_text
    assert (out / "Alpha" / honest / "offre").is_dir()
    assert [r.path for r in platform.requests if "evil" in r.path] == []


def test_a_fault_while_reporting_ends_the_opening_and_shows_nothing(
    platform: HostilePlatform, buyer: Buyer, buyer_station: KeyStore, tmp_path: Path, capsys,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    """A fault of the reporter's own (not the platform's refusal) reaches the command instead
    of leaving its workers waiting, and no file appears unreported."""
    from scelle.client import api

    out = tmp_path / "plis"
    deposit = str(uuid.uuid4())
    _serve_deposits(platform, [(deposit, "Alpha", _honest_bid(tmp_path, "Alpha", buyer))])

    def broken(*_args: object, **_kwargs: object) -> None:
        raise RuntimeError("a fault of the reporter's own")

    monkeypatch.setattr(api.PlatformClient, "report_opened", broken)
    monkeypatch.setattr(api.PlatformClient, "report_opened_together", broken)
    with pytest.raises(RuntimeError, match="reporter's own"):
        scelle(capsys, "open", REFERENCE, "--out", str(out), clock=AFTER_DEADLINE)
    assert not (out / "Alpha").exists()
