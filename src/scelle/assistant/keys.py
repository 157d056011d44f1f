"""Key pairs of the workstation and the platform's registry: generating, publishing,
moving them between workstations as .pfx files.

The command (`scelle keys generate --publish`, `scelle keys publish`, `scelle keys
export`, `import`), the assistant's jobs (Ajouter un bi-clé) and its window (Magasin de
certificats) call these same functions.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from scelle.client import api
from scelle.core import authority, certs, pkcs12
from scelle.core.errors import N_, DuplicateKeyError
from scelle.core.passwords import check_password_strength
from scelle.keystore import KeyStore, StoredKey, check_key_name


@dataclass(frozen=True)
class Published:
    """A key pair of the store now in the platform's registry."""

    stored: StoredKey
    """As the store holds it now (with the platform CA's certificate unless as-is)."""
    registered: api.PublishedKeyPair


def generate_key_pair(
    store: KeyStore, name: str, common_name: str, *, bits: int, days: int, now: dt.datetime
) -> StoredKey:
    """A new key pair in the store (on its token when it has one), with a self-signed
    certificate until it is published."""
    name = check_key_name(name)
    common_name = certs.check_common_name(common_name)
    if store.token is not None:
        store.check_name_free(name)
        return store.token.generate(name, common_name, bits=bits, days=days, now=now)
    # A taken name or a wrong passphrase fails before the slow generation; add()
    # checks the name again under the store's lock.
    store.check_name_free(name)
    store.unlock()
    private_key = certs.generate_private_key(bits)
    certificate = certs.self_signed_certificate(private_key, common_name, days=days, now=now)
    return store.add(name, private_key, certificate, origin="generated", now=now)


def free_name(store: KeyStore, wanted: str) -> str:
    """`wanted` as a store name, with " (2)", " (3)"… when a key pair already has it."""
    base = check_key_name(wanted)
    for number in range(1, 1000):
        candidate = base if number == 1 else check_key_name(f"{base[:90]} ({number})")
        try:
            store.check_name_free(candidate)
        except DuplicateKeyError:
            continue
        return candidate
    raise DuplicateKeyError(
        N_("the store holds too many key pairs named {base!r}"),
        base=base,
    )


def publish_key_pair(
    client: api.PlatformClient,
    store: KeyStore,
    name: str,
    *,
    service: str,
    backup: bool,
    designation: str | None,
    as_is: bool,
) -> Published:
    """Reference the store's key pair `name` in a service's registry.

    The certificate request is signed by the private key: the platform's proof that
    this workstation holds it (DESIGN.md, threats: certificate swap). Unless `as_is`,
    the platform CA issues the certificate, which then replaces the self-signed one
    in the store.
    """
    stored = store.get(name)
    request = authority.build_csr(store.private_key(stored.name), stored.cn)
    registered = client.publish_key_pair(
        service=service,
        role="backup" if backup else "personal",
        designation=designation or stored.name,
        csr_pem=request,
        certificate_pem=certs.certificate_pem(stored.certificate) if as_is else None,
        on_token=stored.token is not None,
    )
    if not as_is:
        certificate = certs.load_certificate(registered["certificate_pem"].encode())
        chain = [certs.load_certificate(pem.encode()) for pem in registered["chain_pem"]]
        stored = store.replace_certificate(stored.name, certificate, chain)
    return Published(stored, registered)


def import_key_pair(
    store: KeyStore,
    data: bytes,
    password: str,
    *,
    name: str | None,
    source: str,
    exportable: bool,
    now: dt.datetime,
) -> StoredKey:
    """A .pfx's key pair into the store, named `name`, else by the file's friendly name,
    else by its CN."""
    bundle = pkcs12.import_pkcs12(data, password, source=source)
    chosen = name or bundle.friendly_name or certs.common_name(bundle.certificate.subject)
    return store.add(
        chosen, bundle.private_key, bundle.certificate, bundle.chain,
        exportable=exportable, origin="imported", now=now,
    )  # fmt: skip


def export_key_pair(
    store: KeyStore, name: str, password: str, *, legacy: bool = False
) -> tuple[StoredKey, bytes]:
    """The key pair `name`, private key included, as a .pfx protected by `password` (strong
    enough, checked first): PBES2 AES-256, or 3DES/SHA-1 with `legacy` for old Windows."""
    check_password_strength(password)
    stored = store.get(name)
    return stored, pkcs12.export_pkcs12(store.export_bundle(stored.name), password, legacy=legacy)
