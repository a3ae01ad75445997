"""Structured log lines: key=value in the message, or JSON with the fields as keys."""

from __future__ import annotations

import json
import logging

import pytest

from clusterset.runtime.logs import JsonFormatter, bind


def test_bound_fields_reach_text_and_json_lines(caplog: pytest.LogCaptureFixture) -> None:
    log = bind(logging.getLogger("clusterset.test"), controller="c1").bind(cluster="member-1")
    with caplog.at_level(logging.INFO, logger="clusterset.test"):
        log.info("reconcile failed", key="ns/name", error="it broke", skipped=None)
        log.debug("not shown")
    [record] = caplog.records
    assert record.getMessage() == 'reconcile failed controller=c1 cluster=member-1 key=ns/name error="it broke"'
    line = json.loads(JsonFormatter().format(record))
    assert line["msg"] == "reconcile failed" and line["level"] == "info"
    assert {k: line[k] for k in ("controller", "cluster", "key", "error")} == {
        "controller": "c1", "cluster": "member-1", "key": "ns/name", "error": "it broke"}
    assert "skipped" not in line
