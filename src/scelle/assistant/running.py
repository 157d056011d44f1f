"""Running the assistant on a workstation: its settings kept, its heartbeat, its window,
its loop until stopped, and its goodbye to the platform. `scelle assistant` calls these
and says what happens."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

from scelle.assistant.config import AssistantConfig, load_config, save_config
from scelle.assistant.remote import Assistant
from scelle.assistant.window import Window
from scelle.client import api
from scelle.core.clock import Clock
from scelle.core.errors import N_, NotAuthenticatedError
from scelle.keystore import KeyStore


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
