"""`scelle agents …`: Habilitations, for agents who administer a service."""

from __future__ import annotations

from pathlib import Path

import click

from scelle.cli.console import ask_password, password_file_option, say
from scelle.cli.remote import connect, json_option, print_json, print_table
from scelle.cli.session import Session, pass_session
from scelle.client import api
from scelle.core.errors import NotFoundError
from scelle.i18n import _


@click.group()
def agents() -> None:
    """Your organisation's agents and their permissions (needs `administer`)."""


def _agent(found: api.Agents, email: str) -> api.Agent:
    wanted = email.strip().casefold()
    for agent in found["agents"]:
        if agent["email"].casefold() == wanted:
            return agent
    raise NotFoundError(f"no agent {email} in your organisation")


def _service(found: api.Agents, name: str) -> api.Service:
    for service in found["services"]:
        if service["name"].casefold() == name.strip().casefold():
            return service
    names = ", ".join(service["name"] for service in found["services"])
    raise NotFoundError(f"you administer no service named {name!r} (you administer: {names})")


@agents.command(name="list")
@json_option
@pass_session
def list_agents(session: Session, as_json: bool) -> None:
    """List the agents and their permissions on the services you administer."""
    with connect(session) as client:
        found = client.agents()
    if as_json:
        print_json(found)
        return
    names = {service["id"]: service["name"] for service in found["services"]}
    print_table(
        [_("Agent"), _("Active"), _("Permissions")],
        [
            [
                agent["email"],
                _("yes") if agent["active"] else _("no"),
                "; ".join(
                    f"{names.get(service, service)}: {', '.join(held)}"
                    for service, held in agent["permissions"].items()
                ),
            ]
            for agent in found["agents"]
        ],
    )


@agents.command(name="create")
@click.argument("email")
@password_file_option("Read the agent's first password from the first line of this file.")
@pass_session
def create_agent(session: Session, email: str, password_file: Path | None) -> None:
    """Create an agent of your organisation (no permission yet)."""
    password = ask_password(
        _("First password of {email}", email=email), password_file=password_file, confirm=True
    )
    with connect(session) as client:
        agent = client.create_agent(email, password)
    say(_("The agent {email} was created.", email=agent["email"]))


PERMISSIONS = click.Choice(["manage_keys", "manage_tenders", "open", "administer"])
service_required = click.option(
    "--service", required=True, help="The service, which you administer."
)


@agents.command(name="grant")
@click.argument("email")
@click.argument("permission", type=PERMISSIONS)
@service_required
@pass_session
def grant(session: Session, email: str, permission: str, service: str) -> None:
    """Give an agent a permission on a service."""
    _change(session, email, permission, service, granted=True)
    say(_("{email} now holds {permission} on {service}.", email=email, permission=permission,
          service=service))  # fmt: skip


@agents.command(name="revoke")
@click.argument("email")
@click.argument("permission", type=PERMISSIONS)
@service_required
@pass_session
def revoke(session: Session, email: str, permission: str, service: str) -> None:
    """Take a permission back."""
    _change(session, email, permission, service, granted=False)
    say(_("{email} no longer holds {permission} on {service}.", email=email,
          permission=permission, service=service))  # fmt: skip


def _change(session: Session, email: str, permission: str, service: str, *, granted: bool) -> None:
    with connect(session) as client:
        found = client.agents()
        change = client.grant if granted else client.revoke
        change(_agent(found, email)["id"], _service(found, service)["id"], permission)


@agents.command(name="deactivate")
@click.argument("email")
@pass_session
def deactivate(session: Session, email: str) -> None:
    """Deactivate an agent who leaves: logins and tokens stop working; nothing is deleted."""
    with connect(session) as client:
        client.deactivate(_agent(client.agents(), email)["id"])
    say(_("The agent {email} is deactivated.", email=email))
