"""deploy/prometheus and deploy/grafana: the alert rules pass `promtool check rules` and
their unit tests, and every metric the rules and the dashboard name is one that a real
`kanal serve` exports on /metrics."""

from __future__ import annotations

import json
import re
import subprocess
import time
import urllib.request
from typing import Any

import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import ROOT, ServerProcess, need_binary, write_config

PROMETHEUS = ROOT / "deploy" / "prometheus"
RULES = PROMETHEUS / "kanal-alerts.yml"
RULE_TESTS = PROMETHEUS / "kanal-alerts.test.yml"
DASHBOARD = ROOT / "deploy" / "grafana" / "kanal.json"
METRIC = re.compile(r"\bkanal_[a-z0-9_]+\b")
SUFFIXES = {"counter": ("_total",), "histogram": ("_bucket", "_sum", "_count"), "gauge": ("",)}


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> set[str]:
    """The series names a `kanal serve` with every service running offers on /metrics."""
    directory = tmp_path_factory.mktemp("serve")
    server = ServerProcess(write_config(directory, f"sqlite:///{directory}/kanal.db"), directory)
    server.start()
    try:
        deadline = time.monotonic() + 10
        while True:  # the workers register their metrics as they start
            text = urllib.request.urlopen(f"{server.base_url}/metrics", timeout=5).read().decode()
            if "kanal_notify_messages_total" in text or time.monotonic() > deadline:
                break
            time.sleep(0.2)
    finally:
        server.stop()
    names = set()
    for family in text_string_to_metric_families(text):
        names.update(family.name + suffix for suffix in SUFFIXES.get(family.type, ("",)))
    return names


def rules() -> list[dict[str, Any]]:
    groups = yaml.safe_load(RULES.read_text())["groups"]
    return [rule for group in groups for rule in group["rules"]]


def test_the_alert_rules_pass_promtool_check_and_their_unit_tests():
    promtool = need_binary("promtool", "prometheus")
    for command in (["check", "rules", RULES.name], ["test", "rules", RULE_TESTS.name]):
        result = subprocess.run(
            [promtool, *command], cwd=PROMETHEUS, capture_output=True, text=True, timeout=60
        )
        assert result.returncode == 0, result.stdout + result.stderr


def test_every_alert_has_a_unit_test_where_it_fires_and_one_where_it_stays_silent():
    fires, silent = set(), set()
    for case in yaml.safe_load(RULE_TESTS.read_text())["tests"]:
        for check in case["alert_rule_test"]:
            (fires if check["exp_alerts"] else silent).add(check["alertname"])
    alerts = {rule["alert"] for rule in rules()}
    assert alerts == fires == silent
    for needed in (
        "kanal_enrichment_oldest_age_seconds",
        "kanal_crm_breaker_open",
        "kanal_poller_up",
        "kanal_normalize_failures_total",
        "kanal_notify_messages_total",
        "kanal_store_up",
    ):
        assert any(needed in rule["expr"] for rule in rules()), needed


def test_the_alert_rules_name_only_metrics_kanal_exports(exported):
    named = {name for rule in rules() for name in METRIC.findall(rule["expr"])}
    assert named and named <= exported, named - exported


def expressions(panel: dict[str, Any]) -> list[str]:
    found = [target["expr"] for target in panel.get("targets", [])]
    for inner in panel.get("panels", []):  # panels folded into a row
        found += expressions(inner)
    return found


def test_the_dashboard_is_json_whose_panels_graph_only_metrics_kanal_exports(exported):
    dashboard = json.loads(DASHBOARD.read_text())
    panels = dashboard["panels"]
    exprs = [expr for panel in panels for expr in expressions(panel)]
    assert exprs and all(METRIC.search(expr) for expr in exprs)
    named = {name for expr in exprs for name in METRIC.findall(expr)}
    assert named <= exported, named - exported
    for needed in (
        "kanal_webhook_requests_total",
        "kanal_webhook_seconds_bucket",
        "kanal_reports_created_total",
        "kanal_enrichment_oldest_age_seconds",
        "kanal_crm_attempts_total",
        "kanal_crm_breaker_open",
        "kanal_notify_messages_total",
        "kanal_poller_up",
    ):
        assert needed in named, needed
    # Every panel reads the dashboard's data source variable, so it imports anywhere.
    assert {v["name"] for v in dashboard["templating"]["list"]} >= {"datasource"}
    for panel in panels:
        if panel.get("type") != "row":
            assert panel["datasource"]["uid"] == "${datasource}", panel["title"]
