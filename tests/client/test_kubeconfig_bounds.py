"""Kubeconfigs are YAML too: an alias bomb is refused before anything expands it (client and runtime)."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from clusterset.client import CredentialError, load_kubeconfig
from clusterset.runtime.providers import read_kubeconfig

BOMB = "\n".join(
    ["apiVersion: v1", "kind: Config", "current-context: x", "a0: &a0 [lol]"]
    + [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 9)}]" for i in range(1, 10)]
) + "\n"


def test_the_client_refuses_a_kubeconfig_alias_bomb(tmp_path: Path) -> None:
    path = tmp_path / "config"
    path.write_text(BOMB)
    started = time.monotonic()
    with pytest.raises(CredentialError, match="document contains excessive aliasing"):
        load_kubeconfig(str(path))
    assert time.monotonic() - started < 2


def test_the_runtime_refuses_a_kubeconfig_alias_bomb(tmp_path: Path) -> None:
    path = tmp_path / "config"
    path.write_text(BOMB)
    with pytest.raises(ValueError, match="document contains excessive aliasing"):
        read_kubeconfig(path)


def test_ordinary_kubeconfigs_still_load(tmp_path: Path) -> None:
    path = tmp_path / "config"
    path.write_text(
        "apiVersion: v1\nkind: Config\ncurrent-context: x\n"
        "clusters: [{name: c, cluster: {server: 'https://127.0.0.1:1'}}]\n"
        "users: [{name: u, user: {token: t}}]\n"
        "contexts: [{name: x, context: {cluster: c, user: u}}]\n"
    )
    assert load_kubeconfig(str(path)).server == "https://127.0.0.1:1"
    assert read_kubeconfig(path)["current-context"] == "x"
