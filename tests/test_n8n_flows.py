"""Offline checks of the n8n flow files: n8n's own packages validate every node (type, typeVersion,
parameters, credential slots, connections), and the project's rules hold (dedupe before any email,
no n8n attribution, addresses from settings/variables, no secrets in the credential templates).
The n8n part needs the pinned install (scripts/n8n-install.sh); it skips without it, except under CI."""

from __future__ import annotations

import copy
import json
import re
import subprocess
from pathlib import Path

import pytest

from conftest import unavailable
from doubles.n8n import FLOWS, find_install

WORKFLOWS = sorted((FLOWS / "workflows").glob("*.json"))
TEMPLATE = FLOWS / "credentials.template.json"
VALIDATOR = FLOWS / "tools" / "validate.mjs"


def load(path: Path) -> dict:
    return json.loads(path.read_text())


def nodes_of(workflow: dict, type_: str) -> list[dict]:
    return [n for n in workflow["nodes"] if n["type"] == f"n8n-nodes-base.{type_}"]


def validate(*files: Path) -> dict[str, dict]:
    install = find_install()
    if install is None:
        unavailable("n8n is not installed (run scripts/n8n-install.sh)")
    done = subprocess.run([str(install.node), str(VALIDATOR), "--app", str(install.app), "--credentials", str(TEMPLATE),
                           *map(str, files)], capture_output=True, timeout=120)
    assert done.returncode in (0, 1), done.stderr.decode()
    report = json.loads(done.stdout)
    return {Path(entry["file"]).name: entry for entry in report["files"]}


def test_there_are_flows():
    # The shop flow (WooCommerce webhooks) was retired: the plugin hooks the shops' paid-order actions
    # and queues kyc.link_requested through the bridge, which this flow emails.
    assert [p.name for p in WORKFLOWS] == ["kyc-events.json"]


def test_every_flow_passes_n8n_validation():
    for name, entry in validate(*WORKFLOWS).items():
        assert entry["errors"] == [], name
        assert entry["warnings"] == [], name


BREAKAGES = {
    "typeVersion that does not exist": (lambda wf: node(wf, "Send email").update(typeVersion=9), "has no typeVersion 9"),
    "unknown node type": (lambda wf: node(wf, "Send email").update(type="n8n-nodes-base.emailSnd"), "unknown node type"),
    "missing required parameter": (lambda wf: node(wf, "Send email")["parameters"].pop("toEmail"), '"toEmail"'),
    "misspelt parameter": (lambda wf: node(wf, "Drop repeats")["parameters"].update(dedupValue="x"),
                           'unknown parameter "dedupValue"'),
    "misspelt option": (lambda wf: node(wf, "Send email")["parameters"]["options"].update(appendAtribution=False),
                        'unknown option "options.appendAtribution"'),
    "wrong credential slot": (lambda wf: node(wf, "Send email").update(
        credentials={"httpHeaderAuth": {"id": "kycBridgeToken01", "name": "KYC bridge token"}}),
        'credential slot "httpHeaderAuth" is not used'),
    "required credential missing": (lambda wf: node(wf, "Send email").pop("credentials"), 'credential "smtp" missing'),
    "unknown credential id": (lambda wf: node(wf, "KYC event")["credentials"]["httpHeaderAuth"].update(id="nope"),
                              'credential id "nope" is not in the credentials file'),
    "connection to nowhere": (lambda wf: wf["connections"]["Settings"]["main"][0].append(
        {"node": "Ghost", "type": "main", "index": 0}), '"Ghost" does not reference an existing node'),
    "output that does not exist": (lambda wf: wf["connections"]["Drop repeats"]["main"].append(
        [{"node": "Already handled", "type": "main", "index": 0}]), 'has no main output 1'),
    "orphan node": (lambda wf: wf["nodes"].append({**copy.deepcopy(node(wf, "Accepted")), "name": "Orphan",
                                                   "id": "00000000-0000-4000-8000-000000000000"}),
                    'node "Orphan" is not connected'),
}


def node(workflow: dict, name: str) -> dict:
    return next(n for n in workflow["nodes"] if n["name"] == name)


def test_validation_catches_each_kind_of_breakage(tmp_path):
    """The check is only worth having if it fails on broken flows: one broken copy per kind."""
    files = {}
    for label, (breakage, _) in BREAKAGES.items():
        workflow = load(FLOWS / "workflows" / "kyc-events.json")
        breakage(workflow)
        path = tmp_path / (re.sub(r"\W+", "-", label) + ".json")
        path.write_text(json.dumps(workflow))
        files[path.name] = label
    report = validate(*(tmp_path / name for name in files))
    for name, label in files.items():
        expected = BREAKAGES[label][1]
        assert any(expected in error for error in report[name]["errors"]), (label, report[name]["errors"])


# ------------------------------------------------------------------------------ project rules (no n8n needed)


def successors(workflow: dict, name: str) -> list[str]:
    outputs = workflow["connections"].get(name, {}).get("main", [])
    return [target["node"] for targets in outputs for target in targets or []]


def paths_to(workflow: dict, start: str, goal_type: str) -> list[list[str]]:
    """Every path from `start` to a node of `goal_type` (the flows are acyclic)."""
    found: list[list[str]] = []

    def walk(name: str, path: list[str]) -> None:
        if node(workflow, name)["type"] == f"n8n-nodes-base.{goal_type}":
            found.append(path)
            return
        for nxt in successors(workflow, name):
            walk(nxt, path + [nxt])

    walk(start, [start])
    return found


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: p.name)
def test_every_email_comes_after_signature_check_and_dedupe(path):
    workflow = load(path)
    [webhook] = nodes_of(workflow, "webhook")
    routes = paths_to(workflow, webhook["name"], "emailSend")
    assert routes
    for route in routes:
        types = [node(workflow, name) for name in route]
        dedupe = [n for n in types if n["type"] == "n8n-nodes-base.removeDuplicates"
                  and n["parameters"].get("operation") == "removeItemsSeenInPreviousExecutions"]
        assert dedupe, route
        assert dedupe[0]["parameters"]["options"]["scope"] == "workflow"
        assert any(n["type"] == "n8n-nodes-base.crypto" for n in types), route  # signature recomputed


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: p.name)
def test_email_nodes_send_without_attribution_from_configured_addresses(path):
    workflow = load(path)
    emails = nodes_of(workflow, "emailSend")
    assert emails
    for email in emails:
        parameters = email["parameters"]
        assert parameters["options"]["appendAttribution"] is False
        assert parameters["fromEmail"] == "={{ $json.mail_from }}"  # from the Settings node ($vars)
        assert parameters["toEmail"].startswith("={{")
        assert email["credentials"]["smtp"]["id"] == "kycSmtp000000001"
        # a failed send answers 503 so the bridge retries (at-least-once), after forgetting the ids
        error_targets = [t["node"] for t in workflow["connections"][email["name"]]["main"][1]]
        assert email.get("onError") == "continueErrorOutput" and error_targets
    settings = node(workflow, "Settings")["parameters"]["assignments"]["assignments"]
    mail_from = next(a["value"] for a in settings if a["name"] == "mail_from")
    assert "$vars.KYC_MAIL_FROM" in mail_from
    text = json.dumps(workflow)
    assert not re.search(r"[\w.+-]+@(?!example\.com)[\w-]+\.[\w.]+", text)  # no real address baked in


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: p.name)
def test_switches_have_a_connected_fallback_and_responses_cover_every_end(path):
    workflow = load(path)
    for switch in nodes_of(workflow, "switch"):
        rules = switch["parameters"]["rules"]["values"]
        assert switch["parameters"]["options"]["fallbackOutput"] == "extra"
        outputs = workflow["connections"][switch["name"]]["main"]
        assert len(outputs) == len(rules) + 1 and all(outputs), switch["name"]
    ends = [n["name"] for n in workflow["nodes"] if not successors(workflow, n["name"])]
    assert all(node(workflow, name)["type"] == "n8n-nodes-base.respondToWebhook" for name in ends), ends


def test_event_webhook_requires_the_bridge_token():
    workflow = load(FLOWS / "workflows" / "kyc-events.json")
    [webhook] = nodes_of(workflow, "webhook")
    assert webhook["parameters"]["authentication"] == "headerAuth"
    assert webhook["parameters"]["responseMode"] == "responseNode"
    assert webhook["parameters"]["options"]["rawBody"] is True  # the signature covers the raw bytes
    assert webhook["credentials"]["httpHeaderAuth"]["name"] == "KYC bridge token"


def test_ids_and_paths_are_unique_and_stable():
    workflows = [load(p) for p in WORKFLOWS]
    ids = [w["id"] for w in workflows]
    assert len(set(ids)) == len(ids) and all(len(i) <= 21 for i in ids)
    paths = [n["parameters"]["path"] for w in workflows for n in nodes_of(w, "webhook")]
    assert sorted(paths) == ["kyc-events"]


def test_credential_templates_hold_no_secrets():
    template = load(TEMPLATE)
    used = {(c["id"], c["name"], t) for p in WORKFLOWS for n in load(p)["nodes"]
            for t, c in n.get("credentials", {}).items()}
    assert {(c["id"], c["name"], c["type"]) for c in template} == used
    secrets = {"value", "hmacSecret", "password", "user", "host"}
    for credential in template:
        for key, value in credential["data"].items():
            if key in secrets:
                assert re.fullmatch(r"(Bearer )?\$\{[A-Z0-9_]+\}", str(value)), (credential["name"], key)
