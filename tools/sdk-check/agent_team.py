#!/usr/bin/env python3
"""SDK check: a small planner/executor/reviewer agent team driven by the official
Cycles Python SDK (`runcycles`) against a running Tally gateway.

What it checks:
  * the SDK's reserve -> commit path (decorated function returns) and its
    reserve -> release path (decorated function raises) work against Tally;
  * a 409 BUDGET_EXCEEDED reaches the program as `BudgetExceededError`, both when an
    agent's own budget runs out and when the shared workspace cap binds first; the
    program degrades to a cheaper fake model, then stops when nothing is left;
  * the SDK heartbeat (POST .../extend) moves `expires_at_ms` forward;
  * the async decorator path (AsyncCyclesClient) settles too;
  * every create/commit/release/extend success body passes the SDK's own strict
    models (the SDK silently retries or refuses bodies with unknown fields or nulls),
    and no commit is left pending in the SDK's commit journal;
  * the server allowed/denied each reservation exactly when a local model of the
    spec's ledger math says it must;
  * GET /v1/balances afterwards shows exact allocated/spent/reserved/remaining for the
    workspace scope and each agent scope.

Setup goes through the admin plane with the stdlib (`urllib`): a fresh tenant per run
(random suffix), a tenant API key, and the four budgets.

Env: TALLY_HTTP (default http://127.0.0.1:7878), TALLY_ADMIN_HTTP
(default http://127.0.0.1:7979), TALLY_ADMIN_KEY (required).
Exit status: 0 all good, 1 a check failed, 2 setup/configuration problem.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import secrets
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from runcycles import (
    AsyncCyclesClient,
    BudgetExceededError,
    CommitResponse,
    CyclesClient,
    CyclesConfig,
    CyclesProtocolError,
    ReleaseResponse,
    ReservationCreateResponse,
    ReservationExtendResponse,
    cycles,
    get_cycles_context,
    set_default_client,
)

UNIT = "USD_MICROCENTS"
RUNTIME = os.environ.get("TALLY_HTTP", "http://127.0.0.1:7878").rstrip("/")
ADMIN = os.environ.get("TALLY_ADMIN_HTTP", "http://127.0.0.1:7979").rstrip("/")
ADMIN_KEY = os.environ.get("TALLY_ADMIN_KEY", "")

WORKSPACE = "research"
# The workspace cap is smaller than the sum of the agent budgets (62k < 90k), as in
# the guide's pattern 2: the workspace scope is the hard cap.
WORKSPACE_CAP = 62_000
AGENT_BUDGETS = {"planner": 30_000, "executor": 40_000, "reviewer": 20_000}

# Estimates per call, in USD_MICROCENTS.
PLANNER_ESTIMATE = 10_000
EXECUTOR_ESTIMATE = 12_000
REVIEW_ESTIMATE = 6_000
CHEAP_ESTIMATE = 2_000

log = logging.getLogger("agent_team")


class CheckFailed(Exception):
    pass


class SetupFailed(Exception):
    pass


# --------------------------------------------------------------------------- admin plane


def admin_post(path: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    req = urllib.request.Request(
        ADMIN + path,
        data=json.dumps(body).encode(),
        method="POST",
        headers={"Content-Type": "application/json", "X-Admin-API-Key": ADMIN_KEY},
    )
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            status, raw = resp.status, resp.read()
    except urllib.error.HTTPError as err:
        status, raw = err.code, err.read()
    except urllib.error.URLError as err:
        raise SetupFailed(f"admin plane unreachable at {ADMIN}: {err.reason}") from err
    try:
        payload = json.loads(raw) if raw else {}
    except ValueError:
        payload = {"_raw": raw.decode(errors="replace")}
    return status, payload


def setup_tenant() -> tuple[str, str]:
    tenant = f"sdk-team-{secrets.token_hex(4)}"
    status, body = admin_post("/v1/admin/tenants", {"tenant_id": tenant, "name": f"SDK check team {tenant}"})
    if status != 201:
        raise SetupFailed(f"POST /v1/admin/tenants for a new tenant: expected 201, got {status} {body}")
    status, body = admin_post(
        "/v1/admin/api-keys",
        {
            "tenant_id": tenant,
            "name": "sdk-check agent team",
            "permissions": [
                "reservations:create",
                "reservations:commit",
                "reservations:release",
                "reservations:extend",
                "reservations:list",
                "balances:read",
            ],
        },
    )
    secret = body.get("key_secret") if isinstance(body, dict) else None
    if not (200 <= status < 300) or not isinstance(secret, str) or not secret:
        raise SetupFailed(f"POST /v1/admin/api-keys: expected 2xx with key_secret, got {status} {body}")
    return tenant, secret


def create_budget(tenant: str, scope: str, amount: int) -> None:
    # Same shape as the guide's curl commands, plus tenant_id, which the spec (5.6)
    # requires when the admin key creates a budget.
    status, body = admin_post(
        "/v1/admin/budgets",
        {"tenant_id": tenant, "scope": scope, "unit": UNIT, "allocated": {"amount": amount, "unit": UNIT}},
    )
    if status != 201:
        raise SetupFailed(f"POST /v1/admin/budgets {scope}: expected 201, got {status} {body}")


# --------------------------------------------------------------------------- local ledger model


@dataclass
class ScopeModel:
    allocated: int
    spent: int = 0
    reserved: int = 0

    @property
    def remaining(self) -> int:
        return self.allocated - self.spent - self.reserved


@dataclass
class LedgerModel:
    """What the spec says the budgets must hold (no overdraft, actual <= estimate)."""

    scopes: dict[str, ScopeModel] = field(default_factory=dict)

    def budgeted(self, path: list[str]) -> list[str]:
        return [s for s in path if s in self.scopes]

    def blocking_scope(self, path: list[str], estimate: int) -> str | None:
        for scope in self.budgeted(path):  # canonical order: outermost first
            if self.scopes[scope].remaining < estimate:
                return scope
        return None

    def commit(self, path: list[str], actual: int) -> None:
        for scope in self.budgeted(path):
            self.scopes[scope].spent += actual


@dataclass
class Coverage:
    commits: int = 0
    releases: int = 0
    agent_denials: int = 0
    workspace_denials: int = 0
    degraded_calls: int = 0
    extends_seen: int = 0
    async_commits: int = 0
    stopped_for_budget: bool = False


# --------------------------------------------------------------------------- recording clients


class Recorder:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.calls: list[tuple[str, int, Any]] = []

    def add(self, op: str, response: Any) -> Any:
        with self.lock:
            self.calls.append((op, response.status, response.body))
        return response


RECORDER = Recorder()


class RecordingClient(CyclesClient):
    """The SDK's own client; it only remembers what the server answered."""

    def create_reservation(self, request):  # type: ignore[override]
        return RECORDER.add("create", super().create_reservation(request))

    def commit_reservation(self, reservation_id, request):  # type: ignore[override]
        return RECORDER.add("commit", super().commit_reservation(reservation_id, request))

    def release_reservation(self, reservation_id, request):  # type: ignore[override]
        return RECORDER.add("release", super().release_reservation(reservation_id, request))

    def extend_reservation(self, reservation_id, request):  # type: ignore[override]
        return RECORDER.add("extend", super().extend_reservation(reservation_id, request))


class RecordingAsyncClient(AsyncCyclesClient):
    async def create_reservation(self, request):  # type: ignore[override]
        return RECORDER.add("create", await super().create_reservation(request))

    async def commit_reservation(self, reservation_id, request):  # type: ignore[override]
        return RECORDER.add("commit", await super().commit_reservation(reservation_id, request))

    async def release_reservation(self, reservation_id, request):  # type: ignore[override]
        return RECORDER.add("release", await super().release_reservation(reservation_id, request))

    async def extend_reservation(self, reservation_id, request):  # type: ignore[override]
        return RECORDER.add("extend", await super().extend_reservation(reservation_id, request))


# --------------------------------------------------------------------------- fake LLM


@dataclass
class LlmResult:
    text: str
    model: str
    tokens_in: int
    tokens_out: int
    cost: int  # USD_MICROCENTS


FAKE_MODELS = {
    # model name: (fixed cost per call, extra cost per prompt word)
    "fake:large": (7_500, 10),
    "fake:medium": (4_000, 10),
    "fake:small": (1_400, 2),
}


def call_llm(prompt: str, model: str = "fake:large") -> LlmResult:
    """Deterministic stand-in for an LLM call; never touches the network."""
    base, per_word = FAKE_MODELS[model]
    words = len(prompt.split())
    text = f"[{model}] " + " ".join(reversed(prompt.split()[:8]))
    return LlmResult(text=text, model=model, tokens_in=words, tokens_out=len(text.split()), cost=base + per_word * words)


class ToolCrashed(RuntimeError):
    pass


# --------------------------------------------------------------------------- the team


class Team:
    def __init__(self, tenant: str, client: CyclesClient, aclient: AsyncCyclesClient) -> None:
        self.tenant = tenant
        self.model = LedgerModel()
        self.cov = Coverage()
        self.ws_scope = f"tenant:{tenant}/workspace:{WORKSPACE}"
        self.model.scopes[self.ws_scope] = ScopeModel(WORKSPACE_CAP)
        for agent, amount in AGENT_BUDGETS.items():
            self.model.scopes[self.agent_scope(agent)] = ScopeModel(amount)
        self.review_attempts = 0
        self._build(aclient)

    def agent_scope(self, agent: str) -> str:
        return f"{self.ws_scope}/agent:{agent}"

    def path(self, agent: str) -> list[str]:
        return [f"tenant:{self.tenant}", self.ws_scope, self.agent_scope(agent)]

    def _build(self, aclient: AsyncCyclesClient) -> None:
        tenant = self.tenant
        cost_of = lambda result: result.cost  # noqa: E731  actual = what the fake model billed

        @cycles(estimate=lambda prompt: PLANNER_ESTIMATE, actual=cost_of, action_kind="llm.completion",
                action_name="fake:large", tenant=tenant, workspace=WORKSPACE, agent="planner")
        def planner_call(prompt: str) -> LlmResult:
            return call_llm(prompt, "fake:large")

        @cycles(estimate=EXECUTOR_ESTIMATE, actual=cost_of, action_kind="llm.completion",
                action_name="fake:large", tenant=tenant, workspace=WORKSPACE, agent="executor")
        def executor_call(prompt: str) -> LlmResult:
            return call_llm(prompt, "fake:large")

        @cycles(estimate=lambda prompt, agent: CHEAP_ESTIMATE, actual=cost_of, action_kind="llm.completion",
                action_name="fake:small", tenant=tenant, workspace=WORKSPACE,
                agent=lambda prompt, agent: agent)
        def cheap_call(prompt: str, agent: str) -> LlmResult:
            return call_llm(prompt, "fake:small")

        @cycles(estimate=REVIEW_ESTIMATE, actual=cost_of, action_kind="tool.review", action_name="fake:medium",
                tenant=tenant, workspace=WORKSPACE, agent="reviewer")
        def reviewer_call(draft: str) -> LlmResult:
            self.review_attempts += 1
            if self.review_attempts == 1:
                # The linter tool the reviewer depends on crashes: nothing was spent,
                # so the SDK must release the reservation.
                raise ToolCrashed("lint tool exited with status 137")
            return call_llm("review: " + draft, "fake:medium")

        @cycles(estimate=REVIEW_ESTIMATE, actual=cost_of, action_kind="tool.review", action_name="fake:medium",
                tenant=tenant, workspace=WORKSPACE, agent="reviewer", ttl_ms=5_000)
        def long_review(draft: str) -> LlmResult:
            # A slow review: a short lease makes the SDK heartbeat extend it at once;
            # wait (at most 4 s) until the new expiry shows up in the context.
            ctx = get_cycles_context()
            first = ctx.expires_at_ms if ctx else None
            deadline = time.monotonic() + 4.0
            while ctx is not None and ctx.expires_at_ms == first and time.monotonic() < deadline:
                time.sleep(0.05)
            if ctx is not None and first is not None and ctx.expires_at_ms is not None and ctx.expires_at_ms > first:
                self.cov.extends_seen += 1
            return call_llm("deep review: " + draft, "fake:medium")

        @cycles(estimate=REVIEW_ESTIMATE, actual=cost_of, action_kind="tool.review", action_name="fake:small",
                tenant=tenant, workspace=WORKSPACE, agent="reviewer", client=aclient)
        async def second_opinion(draft: str) -> LlmResult:
            await asyncio.sleep(0)
            return call_llm("second opinion: " + draft, "fake:small")

        self.planner_call = planner_call
        self.executor_call = executor_call
        self.cheap_call = cheap_call
        self.reviewer_call = reviewer_call
        self.long_review = long_review
        self.second_opinion = second_opinion

    # One guarded call, cross-checked against the local model.
    def guarded(self, agent: str, estimate: int, fn, *args):
        path = self.path(agent)
        blocker = self.model.blocking_scope(path, estimate)
        try:
            result = fn(*args)
        except BudgetExceededError as err:
            if blocker is None:
                raise CheckFailed(f"{agent}: server denied a {estimate} reservation the budgets allow "
                                  f"({self.describe(path)}): {err}") from err
            if err.status != 409 or err.error_code != "BUDGET_EXCEEDED":
                raise CheckFailed(f"{agent}: denial should be 409 BUDGET_EXCEEDED, got {err.status} {err.error_code}")
            if blocker == self.ws_scope:
                self.cov.workspace_denials += 1
            else:
                self.cov.agent_denials += 1
            print(f"  {agent}: denied {estimate} (binding scope {blocker})")
            raise
        if blocker is not None:
            raise CheckFailed(f"{agent}: server allowed a {estimate} reservation although {blocker} "
                              f"has only {self.model.scopes[blocker].remaining} left")
        self.model.commit(path, result.cost)
        self.cov.commits += 1
        print(f"  {agent}: {result.model} charged {result.cost} (estimate {estimate})")
        return result

    def describe(self, path: list[str]) -> str:
        return ", ".join(f"{s} remaining {self.model.scopes[s].remaining}" for s in self.model.budgeted(path))

    def think(self, agent: str, prompt: str, big_fn, big_estimate: int) -> LlmResult | None:
        """The guide's 'handling denials gracefully': big model, else cheap model, else stop."""
        try:
            return self.guarded(agent, big_estimate, big_fn, prompt)
        except BudgetExceededError:
            pass
        try:
            result = self.guarded(agent, CHEAP_ESTIMATE, self.cheap_call, prompt, agent)
            self.cov.degraded_calls += 1
            return result
        except BudgetExceededError:
            self.cov.stopped_for_budget = True
            return None

    def run(self) -> None:
        print("planner: initial plan")
        plan = self.think("planner", "break the quarterly report into research steps", self.planner_call,
                          PLANNER_ESTIMATE)
        assert plan is not None

        print("executor: working through the steps")
        steps = ["collect revenue tables", "summarise churn drivers", "compare regional margins",
                 "draft the risk section", "list open questions"]
        for step in steps:
            self.think("executor", f"execute step: {step} for {plan.text}", self.executor_call, EXECUTOR_ESTIMATE)

        print("reviewer: review (first attempt crashes, SDK releases)")
        try:
            self.guarded("reviewer", REVIEW_ESTIMATE, self.reviewer_call, "draft v1")
            raise CheckFailed("reviewer: the crashing tool call did not raise")
        except ToolCrashed:
            self.cov.releases += 1
            print("  reviewer: tool crashed, reservation released")
        self.guarded("reviewer", REVIEW_ESTIMATE, self.reviewer_call, "draft v1")

        print("reviewer: long review (heartbeat extends the reservation)")
        self.guarded("reviewer", REVIEW_ESTIMATE, self.long_review, "draft v1")

        print("reviewer: async second opinion")
        path = self.path("reviewer")
        blocker = self.model.blocking_scope(path, REVIEW_ESTIMATE)
        if blocker is not None:
            raise CheckFailed(f"scenario error: async review would be denied at {blocker}")
        result = asyncio.run(self.second_opinion("draft v1"))
        self.model.commit(path, result.cost)
        self.cov.commits += 1
        self.cov.async_commits += 1
        print(f"  reviewer: {result.model} charged {result.cost} (async)")

        print("planner: re-planning until the workspace cap stops the team")
        for round_no in range(1, 9):
            if self.think("planner", f"revise the plan, round {round_no}", self.planner_call,
                          PLANNER_ESTIMATE) is None:
                print(f"  planner: no budget left in round {round_no}, team stops")
                break


# --------------------------------------------------------------------------- final checks


def amount_of(item: dict[str, Any], name: str) -> int | None:
    value = item.get(name)
    if value is None:
        return None
    if not isinstance(value, dict) or value.get("unit") != UNIT or not isinstance(value.get("amount"), int):
        raise CheckFailed(f"balance {item.get('scope_path')}: field {name} is not a {UNIT} Amount: {value!r}")
    return value["amount"]


def has_null(value: Any) -> bool:
    if value is None:
        return True
    if isinstance(value, dict):
        return any(has_null(v) for v in value.values())
    if isinstance(value, list):
        return any(has_null(v) for v in value)
    return False


SUCCESS_SHAPES = {
    "create": (200, ReservationCreateResponse),
    "commit": (200, CommitResponse),
    "release": (200, ReleaseResponse),
    "extend": (200, ReservationExtendResponse),
}


def check_wire(problems: list[str]) -> None:
    """The SDK only treats exact, schema-valid bodies as success (unknown fields,
    nulls, or another 2xx status make it retry or refuse). Hold Tally to that."""
    for op, status, body in RECORDER.calls:
        expected_status, model = SUCCESS_SHAPES[op]
        if 200 <= status < 300:
            if status != expected_status:
                problems.append(f"{op}: success status {status}, the SDK only accepts {expected_status}")
                continue
            if has_null(body):
                problems.append(f"{op}: success body contains JSON null (the SDK rejects it): {body}")
                continue
            try:
                model.model_validate_json(json.dumps(body), strict=True)
            except Exception as err:  # pydantic.ValidationError
                problems.append(f"{op}: success body fails the SDK's strict {model.__name__}: {err}")
        elif op == "create" and status == 409:
            if not isinstance(body, dict) or body.get("error") != "BUDGET_EXCEEDED":
                problems.append(f"create denial body lacks error=BUDGET_EXCEEDED: {body}")
            elif not all(isinstance(body.get(k), str) and body.get(k) for k in ("message", "request_id")):
                problems.append(f"create denial body lacks message/request_id: {body}")
        else:
            problems.append(f"{op}: unexpected HTTP {status}: {body}")


def check_journal(journal_dir: Path, problems: list[str]) -> None:
    leftovers = sorted(p.name for p in journal_dir.rglob("*.json"))
    if leftovers:
        problems.append(f"SDK commit journal still holds {len(leftovers)} unsettled commit(s): {leftovers}")


def check_balances(team: Team, client: CyclesClient, problems: list[str]) -> None:
    resp = client.get_balances(tenant=team.tenant, workspace=WORKSPACE)
    if resp.status != 200 or not isinstance(resp.body, dict) or not isinstance(resp.body.get("balances"), list):
        problems.append(f"GET /v1/balances: expected 200 with a balances list, got {resp.status} {resp.body}")
        return
    items = {b.get("scope_path"): b for b in resp.body["balances"] if isinstance(b, dict)}
    expected = team.model.scopes
    if set(items) != set(expected):
        problems.append(f"GET /v1/balances scopes: expected {sorted(expected)}, got {sorted(items)}")
    print("balances:")
    for scope, want in expected.items():
        item = items.get(scope)
        if item is None:
            continue
        got = {name: amount_of(item, name) for name in ("allocated", "spent", "reserved", "remaining", "debt")}
        print(f"  {scope}: allocated {got['allocated']} spent {got['spent']} reserved {got['reserved']} "
              f"remaining {got['remaining']}")
        wants = {"allocated": want.allocated, "spent": want.spent, "reserved": 0, "remaining": want.remaining}
        for name, value in wants.items():
            if got[name] != value:
                problems.append(f"{scope}: {name} expected {value}, got {got[name]}")
        if got["debt"] not in (None, 0):
            problems.append(f"{scope}: debt expected 0/absent, got {got['debt']}")
        if item.get("is_over_limit") not in (None, False):
            problems.append(f"{scope}: is_over_limit expected false/absent, got {item.get('is_over_limit')}")
        leaf = scope.rsplit("/", 1)[-1]
        if item.get("scope") != leaf:
            problems.append(f"{scope}: scope expected leaf segment {leaf!r}, got {item.get('scope')!r}")


# The scenario is deterministic (fake model prices, fixed prompts), so the model's
# final figures are known in advance; a change here means the scenario changed.
EXPECTED_SPENT = {"": 60_826, "/agent:planner": 19_350, "/agent:executor": 31_998, "/agent:reviewer": 9_478}


def check_model(team: Team, problems: list[str]) -> None:
    for suffix, spent in EXPECTED_SPENT.items():
        scope = team.ws_scope + suffix
        if team.model.scopes[scope].spent != spent:
            problems.append(f"scenario drift: local model has {scope} spent {team.model.scopes[scope].spent}, "
                            f"the scenario is designed for {spent}")


def check_coverage(cov: Coverage, problems: list[str]) -> None:
    wanted = [
        (cov.commits >= 10, f"at least 10 commits (got {cov.commits})"),
        (cov.releases == 1, f"exactly 1 release (got {cov.releases})"),
        (cov.agent_denials >= 1, f"an agent-level denial (executor budget; got {cov.agent_denials})"),
        (cov.workspace_denials >= 1, f"a workspace-cap denial (got {cov.workspace_denials})"),
        (cov.degraded_calls >= 2, f"degraded calls to the cheap model (got {cov.degraded_calls})"),
        (cov.extends_seen == 1, f"a heartbeat extend moving expires_at_ms (got {cov.extends_seen})"),
        (cov.async_commits == 1, f"an async decorated commit (got {cov.async_commits})"),
        (cov.stopped_for_budget, "the team stopping once the workspace cap is exhausted"),
    ]
    for ok, what in wanted:
        if not ok:
            problems.append(f"scenario did not produce {what}")
    ops = [op for op, _, _ in RECORDER.calls]
    for op in ("create", "commit", "release", "extend"):
        if op not in ops:
            problems.append(f"the SDK never sent a {op} request")


def main() -> int:
    # The SDK logs the deliberate tool crash with a traceback; keep it quiet unless
    # AGENT_TEAM_LOG (e.g. WARNING, DEBUG) asks for its logs. Wire problems are
    # reported by the checks below either way.
    logging.basicConfig(level=os.environ.get("AGENT_TEAM_LOG", "CRITICAL"),
                        format="%(levelname)s %(name)s: %(message)s")
    if not ADMIN_KEY:
        print("agent_team: TALLY_ADMIN_KEY is not set", file=sys.stderr)
        return 2
    try:
        tenant, api_key = setup_tenant()
        ws = f"tenant:{tenant}/workspace:{WORKSPACE}"
        create_budget(tenant, ws, WORKSPACE_CAP)
        for agent, amount in AGENT_BUDGETS.items():
            create_budget(tenant, f"{ws}/agent:{agent}", amount)
    except SetupFailed as err:
        print(f"agent_team: setup failed: {err}", file=sys.stderr)
        return 2
    print(f"tenant {tenant}: workspace cap {WORKSPACE_CAP}, agent budgets {AGENT_BUDGETS}")

    journal_dir = Path(tempfile.mkdtemp(prefix="sdk-check-journal-"))
    config = CyclesConfig(base_url=RUNTIME, api_key=api_key, journal_dir=str(journal_dir),
                          retry_max_attempts=2, retry_initial_delay=0.2, retry_flush_timeout=3.0)
    client = RecordingClient(config)
    aclient = RecordingAsyncClient(config)
    set_default_client(client)

    team = Team(tenant, client, aclient)
    problems: list[str] = []
    completed = False
    try:
        team.run()
        completed = True
    except CheckFailed as err:
        problems.append(str(err))
    except CyclesProtocolError as err:
        problems.append(f"unexpected SDK error: {type(err).__name__} status={err.status} "
                        f"error={err.error_code}: {err}")

    time.sleep(0.3)  # let any background retry of a commit finish before the final read
    check_wire(problems)
    check_journal(journal_dir, problems)
    check_balances(team, client, problems)
    if completed:  # after an abort these would only repeat the first problem
        check_coverage(team.cov, problems)
        check_model(team, problems)
    client.close()

    if problems:
        print(f"\nagent_team: FAILED ({len(problems)} problem(s)) for tenant {tenant}:", file=sys.stderr)
        for p in problems:
            print(f"  - {p}", file=sys.stderr)
        return 1
    print(f"\nagent_team: OK ({team.cov.commits} commits, {team.cov.releases} release, "
          f"{team.cov.agent_denials} agent denial(s), {team.cov.workspace_denials} workspace denial(s))")
    return 0


if __name__ == "__main__":
    sys.exit(main())
