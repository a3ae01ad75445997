"""Placeholder until the controllers land."""

from __future__ import annotations

from clusterset.apiserver.controllers.manager import Controller


def endpoint_controllers() -> list[Controller]:
    return []
