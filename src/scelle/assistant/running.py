"""Running the assistant on a workstation: its settings kept, its heartbeat, its window,
its loop until stopped, and its goodbye to the platform. `scelle assistant` calls these
and says what happens."""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

from scelle.assistant.config import AssistantConfig, load_config, save_config
from scelle.assistant.remote import Assistant
from scelle.assistant.window import Window
from scelle.client import api
from scelle.core.clock import Clock
from scelle.core.errors import N_, InvalidInputError, NotAuthenticatedError
from scelle.keystore import KeyStore

if TYPE_CHECKING:
    from scelle.keystore.token import PinProvider


def settings(
    home: Path, *, workstation: str | None, openings: Path | None, token: str | None = None
) -> AssistantConfig:
    """The assistant's settings, those given now kept for the next runs (an empty `token`
    forgets the token)."""
    config = load_config(home)
    if workstation is None and openings is None and token is None:
        return config
    return save_config(
        home,
        replace(
            config,
            workstation=workstation or config.workstation,
            openings=openings.resolve() if openings else config.openings,
            token=config.token if token is None else token,
        ),
    )


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


@dataclass
class Running:
    """An assistant that told the platform it runs, and its window on this workstation."""

    helper: Assistant
    window: Window


def start(
    client: api.PlatformClient,
    store: KeyStore,
    config: AssistantConfig,
    home: Path,
    *,
    clock: Clock,
    say: Callable[[str], None],
) -> Running:
    """Tell the platform the assistant runs (its first heartbeat), open its window."""
    helper = Assistant(client, store, config, clock=clock, say=say)
    helper.beat()
    window = Window(helper, home)
    window.start()
    return Running(helper, window)


def serve_until_stopped(running: Running, stop: threading.Event | None = None) -> None:
    """Take the platform's jobs until `stop` is set, Ctrl-C, or the login ends; then close
    the window and say goodbye, so that the pages show at once that it stopped."""
    stop = stop or threading.Event()
    try:
        running.helper.run(stop)
    except NotAuthenticatedError as error:
        raise NotAuthenticatedError(
            N_("the platform no longer accepts this workstation's login ({reason})"),
            hint=N_("Your login expired or was revoked: run `scelle login URL --email E` again."),
            reason=error.message,
        ) from None
    finally:
        stop.set()
        running.window.close()
        running.helper.goodbye()
        running.helper.client.close()
        if running.helper.store.token is not None:
            running.helper.store.token.close()
