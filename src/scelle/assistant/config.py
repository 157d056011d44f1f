"""The assistant's settings on this workstation: its name, where openings go, and the
PKCS#11 token whose key pairs it uses beside its store's.

Kept in $SCELLE_HOME/assistant.json, changed from the assistant's window or the
command line; never from the platform (DESIGN.md, "Trust": a folder is chosen on
the workstation, never named by the server).
"""

from __future__ import annotations

import json
import os
import platform
import re
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

import platformdirs

from scelle.core.errors import N_, InvalidInputError, StoreError
from scelle.core.files import ensure_private_dir, write_private_file
from scelle.keystore import KeyStore

if TYPE_CHECKING:
    from scelle.keystore.token import PinProvider

CONFIG_FILE = "assistant.json"
_WORKSTATION = re.compile(r"[\w][\w .@()-]{0,63}")


@dataclass(frozen=True)
class AssistantConfig:
    """What the agent sets in Configuration."""

    workstation: str
    """This workstation's name on the pages ("running on POSTE-ACHAT-12")."""
    openings: Path
    """The folder where opened envelopes are written."""
    token: str | None = None
    """A PKCS#11 URI (pkcs11:token=…): new key pairs are made there, and its key pairs are
    listed and used beside the store's."""
    module: str | None = None
    """The token's PKCS#11 module (a file); None: SCELLE_PKCS11_MODULE, else OpenSC's."""


def check_workstation_name(value: str) -> str:
    name = value.strip()
    if not _WORKSTATION.fullmatch(name):
        raise InvalidInputError(
            N_(
                "{value!r} cannot name a workstation: 1 to 64 letters, digits, spaces, dots, "
                "dashes, @ or brackets"
            ),
            value=value[:80],
        )
    return name


def check_openings_folder(value: str | Path) -> Path:
    folder = Path(value).expanduser()
    if not folder.is_absolute():
        raise InvalidInputError(
            N_("{value} is not a full path (such as C:\\Plis or /home/me/Plis)"),
            value=value,
        )
    if folder.exists() and not folder.is_dir():
        raise InvalidInputError(
            N_("{folder} is a file, not a folder"),
            folder=folder,
        )
    return folder


def check_token(value: str | None) -> str | None:
    """A PKCS#11 URI as given, checked; None for none."""
    text = (value or "").strip()
    if not text:
        return None
    from scelle.keystore.token import TokenURI

    return str(TokenURI.parse(text))


def check_module(value: str | Path | None) -> str | None:
    text = str(value or "").strip()
    if not text:
        return None
    if not Path(text).is_absolute():
        raise InvalidInputError(N_("{value} is not a full path to a PKCS#11 module"), value=text)
    return text


def _defaults() -> AssistantConfig:
    name = re.sub(r"[^\w .@()-]", "-", platform.node() or "poste")[:64] or "poste"
    return AssistantConfig(
        workstation=check_workstation_name(name if name[0].isalnum() else f"poste-{name}"[:64]),
        openings=Path(platformdirs.user_documents_dir()) / "Scellé" / "Ouvertures",
    )


def load_config(home: Path) -> AssistantConfig:
    """The saved settings, or this workstation's defaults."""
    path = home / CONFIG_FILE
    defaults = _defaults()
    if not path.is_file():
        return defaults
    try:
        data = json.loads(path.read_text("utf-8"))
        return AssistantConfig(
            workstation=check_workstation_name(str(data.get("workstation", defaults.workstation))),
            openings=check_openings_folder(str(data.get("openings", defaults.openings))),
            token=check_token(data.get("token")),
            module=check_module(data.get("module")),
        )
    except (OSError, ValueError, TypeError, AttributeError, InvalidInputError) as error:
        raise StoreError(
            N_("{path} is damaged: {error}"),
            path=path,
            error=error,
        ) from error


def save_config(home: Path, config: AssistantConfig) -> AssistantConfig:
    checked = replace(
        config,
        workstation=check_workstation_name(config.workstation),
        openings=check_openings_folder(config.openings),
        token=check_token(config.token),
        module=check_module(config.module),
    )
    ensure_private_dir(home)
    document = {
        "workstation": checked.workstation,
        "openings": str(checked.openings),
        "token": checked.token,
        "module": checked.module,
    }
    write_private_file(home / CONFIG_FILE, json.dumps(document, indent=2).encode(), overwrite=True)
    return checked


def window_pin(label: str) -> str:
    """The assistant asks no PIN once it runs: it is typed in its window, or given at start
    (SCELLE_TOKEN_PIN, or on the terminal)."""
    configured = os.environ.get("SCELLE_TOKEN_PIN")
    if configured is not None:
        return configured
    raise InvalidInputError(
        N_(
            "the token {token} is locked: type its PIN in the assistant's window "
            "(Certificate store), then start again"
        ),
        token=label,
    )


def use_token(store: KeyStore, config: AssistantConfig, pin: PinProvider = window_pin) -> None:
    """Make the store use the token the settings name (none: the store alone)."""
    from scelle.keystore.token import Token, TokenURI, module_path

    if store.token is not None:
        store.token.close()
        store.token = None
    if config.token:
        module = config.module or module_path(os.environ)
        store.token = Token(module, TokenURI.parse(config.token), pin)
