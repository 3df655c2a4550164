"""The web console in a real browser (Debian's Chromium, driven by Playwright) against a real
API server: signing in and out, the jobs table, a running job's curve growing live, cancelling,
and promoting a model version, each outcome checked again through the API. The registry is
filled the way the trusted processes fill it (orchestrator.registry.store: what the scheduler
and a job driver's reporter write)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml

from orchestrator.registry import store
from orchestrator.registry.models import JobStatus
from tests.api_server import ApiServer
from tests.conftest import REPO, unavailable

try:
    from playwright.sync_api import expect, sync_playwright
except ImportError as exc:  # the browser fixture says so: a skip here, a failure in CI
    PLAYWRIGHT_MISSING: str | None = str(exc)
else:
    PLAYWRIGHT_MISSING = None

pytestmark = pytest.mark.e2e
CHROMIUM = Path("/usr/bin/chromium")
MODEL = "sst2-minilm"
SPEC = yaml.safe_load((REPO / "jobs" / "configs" / "finetune-minilm-sst2.yaml").read_text())


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if PLAYWRIGHT_MISSING:
        unavailable(f"Playwright is not installed ({PLAYWRIGHT_MISSING}): pip install playwright")
    if not CHROMIUM.exists():
        unavailable(f"{CHROMIUM} is missing: apt-get install chromium")
    expect.set_options(timeout=10_000)  # the console refreshes every 2 s
    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=str(CHROMIUM), args=["--no-sandbox"], headless=True
        )
        yield browser
        browser.close()


@dataclass
class Console:
    """One browser tab on the console, and the script errors and CSP refusals it met."""

    page: Any  # playwright.sync_api.Page
    api: ApiServer
    problems: list[str] = field(default_factory=list)

    def sign_in(self, token: str, who: str) -> None:
        self.page.goto(f"{self.api.url}/")  # redirects to /console/
        self.page.fill("#token", token)
        self.page.click("button[type=submit]")
        expect(self.page.locator("#who")).to_have_text(f"signed in as {who}")

    def sign_in_as(self, role: str) -> None:
        self.sign_in(self.api.tokens[role], f"{role}1 ({role})")

    def open(self, route: str) -> None:
        self.page.goto(f"{self.api.url}/console/#{route}")


@pytest.fixture
def console(browser: Any, api_server: ApiServer) -> Iterator[Console]:
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    tab = Console(page, api_server)
    page.on("pageerror", lambda exc: tab.problems.append(f"script error: {exc}"))
    page.on(
        "console",
        lambda msg: (
            tab.problems.append(msg.text) if "Content Security Policy" in msg.text else None
        ),
    )
    yield tab
    context.close()
    assert not tab.problems, tab.problems


def loss_rows(steps: range) -> list[dict[str, Any]]:
    """What a driver's reporter writes for the training loss at these steps."""
    return [
        {"name": "loss", "value": 0.7 / (1 + s / 40), "step": s, "epoch": s / 200, "split": "train"}
        for s in steps
    ]


def report(api: ApiServer, job_id: int, rows: list[dict[str, Any]]) -> None:
    with api.registry.session() as session:
        store.add_metrics(session, job_id, rows)


def running_job(api: ApiServer, owner: str = "member1") -> int:
    """A fine-tune the scheduler started, with its first four loss values."""
    with api.registry.session() as session:
        job_id = store.create_job(
            session,
            kind="finetune",
            name=SPEC["name"],
            spec=SPEC,
            resources={"bundles": [{"CPU": 1.5}]},
            submitted_by=owner,
        ).id
    with api.registry.session() as session:
        store.transition(session, job_id, JobStatus.STARTING, "admitted: 1.5 CPU free")
        store.transition(session, job_id, JobStatus.RUNNING, "driver started")
        store.set_progress(session, job_id, "step 40/200 (train): loss 0.35")
    report(api, job_id, loss_rows(range(10, 41, 10)))
    return job_id


def two_versions(api: ApiServer) -> None:
    """Versions 1 and 2 of MODEL from a finished fine-tune, @production on v1."""
    job_id = running_job(api, owner="admin1")
    with api.registry.session() as session:
        store.transition(session, job_id, JobStatus.SUCCEEDED, "registered")
        dataset = store.upsert_dataset(
            session,
            uri=str(REPO / "jobs" / "sample_data" / "sst2" / "train.tsv"),
            fingerprint="5" * 64,
            format="tsv",
            files=[],
            num_rows={"train": 2000},
            size_bytes=120_000,
        )
        for version, accuracy in ((1, 0.78), (2, 0.79)):
            store.add_model_version(
                session,
                name=MODEL,
                task="text-classification",
                artifact_uri=str(api.settings.home / "artifacts" / MODEL / f"v{version}"),
                job_id=job_id,
                dataset_id=dataset.id,
                base_model="/models/all-MiniLM-L6-v2",
                metrics={"accuracy": accuracy},
            )
        store.set_alias(session, MODEL, 1, "production", moved_by="admin1")


def production_version(api: ApiServer) -> int:
    rows = api.call("GET", f"/api/models?name={MODEL}", role="viewer").json()
    return next(r["version"] for r in rows if "production" in (r["aliases"] or "").split(","))


def test_a_running_jobs_curve_gains_points_without_a_reload(
    console: Console, api_server: ApiServer, tmp_path: Path
) -> None:
    job_id = running_job(api_server)
    console.sign_in_as("admin")
    console.open(f"/jobs/{job_id}")
    page = console.page
    curve = page.locator('polyline[data-series="train-loss"]')
    expect(curve).to_have_attribute("data-points", "4")
    expect(page.locator("#log")).to_contain_text("has not started: no log yet")
    expect(page.locator("#spec")).to_contain_text('"best_metric": "accuracy"')
    page.evaluate("window.notReloaded = true")

    evals = [
        {"name": name, "value": value, "step": step, "split": "eval"}
        for step, acc in ((40, 0.71), (80, 0.77))
        for name, value in (("accuracy", acc), ("loss", 1 - acc))
    ]
    report(api_server, job_id, loss_rows(range(50, 81, 10)) + evals)
    expect(curve).to_have_attribute("data-points", "8")
    expect(page.locator(".chart figcaption").first).to_contain_text("at step 80")
    expect(page.locator('polyline[data-series="eval-accuracy"]')).to_have_attribute(
        "data-points", "2"
    )
    assert page.evaluate("window.notReloaded === true")

    shot = Path(os.environ.get("ORCH_CONSOLE_SCREENSHOT") or tmp_path / "console-job.png")
    shot.parent.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(shot), full_page=True)
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_the_jobs_table_refreshes_itself_and_filters_by_owner(
    console: Console, api_server: ApiServer
) -> None:
    first = running_job(api_server, owner="member1")
    console.sign_in_as("viewer")
    rows = console.page.locator("#jobs tbody tr")
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text("member1")
    expect(rows.first).to_contain_text("RUNNING")

    second = running_job(api_server, owner="admin1")
    expect(rows).to_have_count(2)  # no reload: the table refreshes itself
    console.page.fill("input[name=submitted_by]", "admin1")
    expect(rows).to_have_count(1)
    expect(console.page.locator(f'tr[data-job-id="{second}"]')).to_be_visible()
    expect(console.page.locator(f'tr[data-job-id="{first}"]')).to_have_count(0)


def test_cancel_is_offered_to_the_owner_and_stops_their_job(
    console: Console, api_server: ApiServer
) -> None:
    mine, theirs = running_job(api_server, "member1"), running_job(api_server, "admin1")
    console.sign_in_as("member")
    page = console.page
    console.open(f"/jobs/{theirs}")
    expect(page.locator("h1")).to_contain_text(f"Job {theirs}")
    expect(page.locator("#cancel")).to_be_hidden()

    console.open(f"/jobs/{mine}")
    expect(page.locator("#cancel")).to_be_visible()
    page.click("#cancel")
    page.click("#cancel")  # the second click confirms
    expect(page.get_by_role("status")).to_contain_text("stop requested")
    assert api_server.call("GET", f"/api/jobs/{mine}", role="viewer").json()["cancel_requested"]


def test_an_admin_promotes_a_version_and_the_audit_log_records_it(
    console: Console, api_server: ApiServer
) -> None:
    two_versions(api_server)
    console.sign_in_as("admin")
    console.open(f"/models/{MODEL}:2")
    page = console.page
    expect(page.locator("#lineage")).to_contain_text("train.tsv · train 2000 rows")
    expect(page.locator("#lineage")).to_contain_text("all-MiniLM-L6-v2")
    page.fill("#alias", "production")
    page.click("#promote")
    expect(page.get_by_role("status")).to_contain_text(f"{MODEL}@production moved from v1 to v2")
    expect(page.locator(".facts")).to_contain_text("@production")

    assert production_version(api_server) == 2
    entries = api_server.call("GET", "/api/audit?action=model.promote", role="viewer").json()
    assert [(e["actor"], e["target"], e["after"]) for e in entries] == [
        ("admin1", f"model/{MODEL}@production", {"version": 2})
    ]
    console.open("/models")
    expect(console.page.locator(f'tr[data-model="{MODEL}"][data-version="2"]')).to_contain_text(
        "@production"
    )


def test_a_viewers_promotion_is_refused_with_the_servers_reason(
    console: Console, api_server: ApiServer
) -> None:
    two_versions(api_server)
    console.sign_in_as("viewer")
    console.open(f"/models/{MODEL}:2")
    page = console.page
    page.get_by_text("Promote or roll back (needs the admin role").click()  # folded for viewers
    page.click("#promote")
    expect(page.get_by_role("alert")).to_contain_text(
        "viewer1 is a viewer: this needs the admin role"
    )
    assert production_version(api_server) == 1


def test_a_bad_or_revoked_token_returns_to_sign_in_with_the_reason(
    console: Console, api_server: ApiServer
) -> None:
    page = console.page
    page.goto(f"{api_server.url}/console/")
    page.fill("#token", "orch_not-a-token")
    page.click("button[type=submit]")
    expect(page.get_by_role("alert")).to_contain_text("Sign-in refused: the token is not valid")

    console.sign_in(api_server.add_user("member2", "member"), "member2 (member)")
    revoked = api_server.call("DELETE", "/api/users/member2", role="admin")
    assert revoked.status_code == 200, revoked.text
    expect(page.get_by_role("alert")).to_contain_text("Signed out: the token is not valid")
    expect(page.locator("#token")).to_be_visible()
    expect(page.locator("#who")).to_have_text("")
