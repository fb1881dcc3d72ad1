"""The dispute explorer (/ui on the challenger) in a real browser: Debian's Chromium, headless, driven by
Playwright, against the whole stack on anvil. Blocks come every second here, as on a real chain, so a
dispute takes long enough to watch it being played.

What a person would check: an honest request shows up and turns final on a page left open; a lying
claim's game shows up, its rounds advance on the page while it is played, and the page ends on the
outcome the JSON API reports; a two-phase game (a graph model's) is drawn as its two phases, phase 1 over
the values with each point named by its node, the link, and phase 2 down to one instruction; the pages read without JavaScript and at phone width, pass basic
accessibility checks, render from an empty registry and with hundreds of games (paginated), and an
unknown game is a 404 page. Screenshots go to test-artifacts/explorer/ for people to look at.
"""

from __future__ import annotations

import re
import time
from pathlib import Path

import httpx
import pytest
from challenger.ui.formatting import duration
from playwright.sync_api import Browser, Page, expect, sync_playwright
from web3 import Web3

from opml.agents.store import AgentStore
from opml.chain.anvil import Anvil, advance_time, dev_key
from opml.chain.client import TransactionManager, connect
from opml.chain.deploy import ProgramImage, deploy_contracts, register_model, register_program, seed_model
from opml.chain.registry import Registry
from opml.protocol.claims import FinalClaim
from opml.protocol.parameters import Parameters
from opml.stack import Stack, StackConfig
from opml.vm.state import State

from .conftest import E2E_BASE, SEVEN, Harness, wait_for

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "explorer"
CHROMIUM = Path("/usr/bin/chromium")  # Debian's; `make install` installs it (Playwright cannot download one here)
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--no-first-run"]  # fmt: skip
# With a block a second, each move spends a second or two of its side's clock: 40 s leaves room for six rounds.
LIAR_ACCOUNT, LIE_FROM_STEP = 3, 1_000_000
PHONE = {"width": 360, "height": 780}


# --- the stack, the browser, a page ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def harness(tmp_path_factory, timing):
    # blocks every second, and a game slow enough to be watched round by round: at least 10 s of window and 40 s
    # of clock, more on a slow machine
    parameters = timing.sized(E2E_BASE, window_floor=10, clock_floor=40)
    config = StackConfig.ephemeral(tmp_path_factory.mktemp("explorer"), parameters=parameters, echo=False,
                                   poll_interval=0.1, block_time=1)  # fmt: skip
    with Stack(config) as stack:
        yield Harness(stack)


@pytest.fixture(scope="module")
def browser():
    assert CHROMIUM.exists(), "Debian's chromium is not installed: `make install` installs it"
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture()
def page(browser: Browser):
    """A desktop-sized page; a script error on it fails the test."""
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    script_errors: list[str] = []
    page.on("pageerror", lambda error: script_errors.append(str(error)))
    yield page
    context.close()
    assert script_errors == []


def shoot(page: Page, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=ARTIFACTS / f"{name}.png", full_page=True)


def stay_marker(page: Page) -> None:
    """Mark the loaded document: the mark survives the page's own updates, not a reload or a navigation."""
    page.evaluate("window.notReloaded = true")


def not_reloaded(page: Page) -> bool:
    return page.evaluate("window.notReloaded === true")


# --- what a person checks on every page -------------------------------------------------------------------

# Basic accessibility, measured in the browser: a language, a title, one h1 and no skipped heading levels,
# named links, regions and pictures, table captions and header scopes, labelled controls, unique ids, and
# every visible text at a contrast of 4.5:1 at least (3:1 for large text) against its actual background.
ACCESSIBILITY_PROBLEMS = """() => {
  const problems = [];
  if (!document.documentElement.lang) problems.push("no lang on <html>");
  if (!document.title.trim()) problems.push("no <title>");
  const h1 = document.querySelectorAll("h1").length;
  if (h1 !== 1) problems.push(`${h1} h1 headings`);
  let level = 0;
  for (const heading of document.querySelectorAll("h1, h2, h3, h4, h5, h6")) {
    const next = Number(heading.tagName[1]);
    if (next > level + 1) problems.push(`heading "${heading.textContent.trim()}" skips from h${level} to h${next}`);
    level = next;
  }
  for (const link of document.querySelectorAll("a")) {
    if (!link.textContent.trim() && !link.getAttribute("aria-label")) problems.push(`unnamed link to ${link.href}`);
  }
  for (const region of document.querySelectorAll("[role=region], section, nav")) {
    if (!region.getAttribute("aria-label") && !region.getAttribute("aria-labelledby")) {
      problems.push(`unnamed ${region.tagName} #${region.id}`);
    }
  }
  for (const svg of document.querySelectorAll("svg")) {
    if (svg.getAttribute("role") !== "img" || !svg.getAttribute("aria-labelledby")) problems.push("unnamed svg");
  }
  for (const table of document.querySelectorAll("table")) {
    if (!table.querySelector("caption")) problems.push(`table without a caption: ${table.className}`);
  }
  for (const header of document.querySelectorAll("th")) {
    if (!header.getAttribute("scope")) problems.push(`th without scope: ${header.textContent.trim()}`);
  }
  for (const control of document.querySelectorAll("input, select, textarea, button")) {
    if (!control.labels?.length && !control.getAttribute("aria-label") && !control.textContent.trim()) {
      problems.push(`unlabelled ${control.tagName}`);
    }
  }
  const ids = [...document.querySelectorAll("[id]")].map((element) => element.id);
  for (const id of new Set(ids)) if (ids.filter((other) => other === id).length > 1) problems.push(`id ${id} twice`);

  const rgba = (colour) => (colour.match(/[\\d.]+/g) || []).map(Number);
  const luminance = ([r, g, b]) => {
    const linear = (value) => { value /= 255; return value <= 0.03928 ? value / 12.92 : ((value + 0.055) / 1.055) ** 2.4; };
    return 0.2126 * linear(r) + 0.7152 * linear(g) + 0.0722 * linear(b);
  };
  const backgroundOf = (element) => {
    for (let at = element; at; at = at.parentElement) {
      const colour = rgba(getComputedStyle(at).backgroundColor);
      if (colour.length === 3 || colour[3] === 1) return colour;
    }
    return [255, 255, 255];
  };
  const ratio = (one, two) => {
    const [light, dark] = [luminance(one), luminance(two)].sort((a, b) => b - a);
    return (light + 0.05) / (dark + 0.05);
  };
  for (const element of document.querySelectorAll("body *")) {
    if (element.closest(".visually-hidden, .skip-link, svg title, svg desc")) continue;
    const text = [...element.childNodes].filter((node) => node.nodeType === 3).map((node) => node.textContent).join("").trim();
    if (!text) continue;
    const style = getComputedStyle(element);
    const inSvg = element.closest("svg") !== null;
    const colour = rgba(inSvg ? style.fill : style.color);
    const size = parseFloat(style.fontSize);
    const large = size >= 24 || (size >= 18.66 && Number(style.fontWeight) >= 700);
    const contrast = ratio(colour, inSvg ? [255, 255, 255] : backgroundOf(element));
    if (contrast < (large ? 3 : 4.5)) problems.push(`contrast ${contrast.toFixed(2)} for "${text.slice(0, 40)}"`);
  }
  return problems;
}"""


def assert_accessible(page: Page) -> None:
    assert page.evaluate(ACCESSIBILITY_PROBLEMS) == []


def assert_fits_phone(page: Page, name: str) -> None:
    """At phone width the page never scrolls sideways (wide tables scroll inside their own box)."""
    page.set_viewport_size(PHONE)
    page.wait_for_timeout(200)
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    shoot(page, name)


def without_javascript(browser: Browser, url: str, name: str) -> Page:
    """The page as a browser without JavaScript gets it: everything but the updates is there."""
    context = browser.new_context(java_script_enabled=False, viewport={"width": 1280, "height": 900})
    page = context.new_page()
    response = page.goto(url)
    assert response is not None and response.status == 200
    expect(page.locator("#freshness")).to_have_text("Reload the page for the latest state.")
    shoot(page, name)
    return page


def seconds(clock: str) -> int:
    """A clock's text (1:02:03, 12:05, 0:42) in seconds."""
    total = 0
    for part in clock.split(":"):
        total = total * 60 + int(part)
    return total


# --- the live story on the real stack -------------------------------------------------------------------


def test_the_honest_request_appears_and_turns_final_on_an_open_page(harness: Harness, page: Page):
    page.goto(f"{harness.url('challenger')}/ui")
    stay_marker(page)
    request_id = harness.request()
    row = page.locator(f'#requests tr[data-request-id="{request_id}"]')
    expect(row).to_be_visible(timeout=30_000)
    statuses = [row.get_attribute("data-status")]
    deadline = time.monotonic() + 120
    while statuses[-1] != "final" and time.monotonic() < deadline:
        page.wait_for_timeout(250)
        status = page.locator(f'#requests tr[data-request-id="{request_id}"]').get_attribute("data-status")
        if status != statuses[-1]:
            statuses.append(status)
    assert statuses[-1] == "final", statuses
    assert "claimed" in statuses  # the page showed the claim's window, then the result
    expect(row.locator("[data-predicted]")).to_have_text("7")
    expect(row.locator(".badge")).to_have_text("final")
    assert not_reloaded(page)
    assert harness.report(request_id)["status"] == "final"
    assert_accessible(page)
    shoot(page, "honest-request-final")


def test_a_lying_claims_game_is_watched_round_by_round_to_the_challengers_win(harness: Harness, browser, page: Page):
    liar = harness.stack.start_service("liar", "submitter", {
        "SUBMITTER_DEV_ACCOUNT": str(LIAR_ACCOUNT), "SUBMITTER_FAULT_LIE": "states",
        "SUBMITTER_FAULT_LIE_FROM_STEP": str(LIE_FROM_STEP),
    })  # fmt: skip
    try:
        page.goto(f"{harness.url('challenger')}/ui")
        stay_marker(page)
        request_id = harness.request()
        # the games appear on the open page: this challenger's, and the honest submitter's (it defends its result)
        game_rows = page.locator(f'#games tr[data-request-id="{request_id}"]')
        expect(game_rows.first).to_be_visible(timeout=60_000)
        game_id = int(game_rows.first.get_attribute("data-game-id"))
        game_row = page.locator(f'#games tr[data-game-id="{game_id}"]')
        assert not_reloaded(page)
        shoot(page, "lying-claim-game-appears")

        game_row.get_by_role("link", name=f"Game {game_id}").click()
        expect(page).to_have_url(re.compile(f"/ui/disputes/{game_id}$"))
        stay_marker(page)
        standing = page.locator("#game-status")
        rounds_seen, midway_shot = [], False
        deadline = time.monotonic() + 180
        while page.locator("body[data-settled]").count() == 0 and time.monotonic() < deadline:
            rounds = int(standing.get_attribute("data-rounds"))
            if standing.get_attribute("data-status") == "active" and rounds not in rounds_seen:
                rounds_seen.append(rounds)
                if rounds >= 2 and not midway_shot:
                    shoot(page, "lying-claim-game-midway")
                    midway_shot = True
            page.wait_for_timeout(200)
        assert page.locator("body[data-settled]").count() == 1, "the game page never settled"
        assert not_reloaded(page)
    finally:
        harness.stack.services.pop("liar")
        liar.stop()

    dispute = harness.dispute(game_id)
    assert dispute["status"] == "challenger_won"
    # the page showed the game in play at two round counts at least, rising: it advanced while watched
    assert len(rounds_seen) >= 2 and rounds_seen == sorted(rounds_seen) and rounds_seen[-1] <= dispute["rounds"]
    expect(standing).to_have_attribute("data-status", "challenger_won")
    expect(standing).to_have_attribute("data-rounds", str(dispute["rounds"]))
    expect(standing).to_contain_text(f"Challenger won after {dispute['rounds']} rounds")
    final_step = dispute["final_step"]
    assert final_step["step"] == LIE_FROM_STEP - 1  # the first made-up state
    expect(page.locator("#final-step")).to_contain_text(f"Step {final_step['step']:,}")
    assembly = page.locator("[data-assembly]").inner_text()
    assert assembly.split(" ")[0] in (final_step["mnemonic"], "nop"), assembly
    expect(page.locator("[data-verdict]")).to_contain_text("the challenger was right")
    expect(page.locator("#final-step")).to_contain_text(final_step["true_post_state_hash"])
    picture = page.locator("#dissection svg")
    expect(picture.locator("g.pic-row")).to_have_count(dispute["rounds"] + 1)  # every round, then the one step
    expect(picture.locator("[data-chosen]")).to_have_count(dispute["rounds"])
    expect(page.locator("#dissection details")).to_have_count(dispute["rounds"])
    expect(page.locator("#bonds tbody tr")).to_have_count(len(dispute["bonds"]))
    if any(bond["kind"] == "burned" for bond in dispute["bonds"]):  # the claim's last game burns what is left
        expect(page.locator("#bonds")).to_contain_text("burned")
    expect(page.locator("#bonds")).to_contain_text("credited")
    # every move against its clock, and each side's least margin
    moves = page.locator("#moves tbody tr")
    expect(moves).to_have_count(len(dispute["moves"]))
    assert moves.evaluate_all("rows => rows.map(row => row.dataset.move)") == [m["move"] for m in dispute["moves"]]
    expect(page.locator("#moves tr[data-low]")).to_have_count(sum(m["low"] for m in dispute["moves"]))
    least = dispute["least_left"]
    expect(page.locator("[data-least-defender]")).to_have_attribute("data-least-defender", str(least["defender"]))
    expect(page.locator("[data-least-challenger]")).to_have_attribute("data-least-challenger", str(least["challenger"]))
    expect(page.locator("#transactions tbody tr")).to_have_count(len(dispute["transactions"]))
    assert_accessible(page)
    shoot(page, "lying-claim-game-won")
    assert_fits_phone(page, "lying-claim-game-phone")

    still = without_javascript(browser, page.url, "lying-claim-game-without-javascript")
    expect(still.locator("#game-status")).to_contain_text(f"Challenger won after {dispute['rounds']} rounds")
    expect(still.locator("#dissection svg g.pic-row")).to_have_count(dispute["rounds"] + 1)
    expect(still.locator("[data-verdict]")).to_contain_text("the challenger was right")
    still.context.close()


@pytest.fixture(scope="module")
def cnn_model(harness: Harness) -> str:
    """A small CNN in the graph format, uploaded and registered: it plays the two-phase game by default."""
    import torch
    from torch import nn

    from opml.models.convert import graph_from_module
    from opml.models.formats import InputType

    torch.manual_seed(5)
    network = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
                            nn.Linear(4 * 14 * 14, 10))  # fmt: skip
    model = graph_from_module(network, (1, 28, 28), InputType.U8).to_bytes()
    response = httpx.post(f"{harness.url('converter')}/models", files={"file": ("cnn.opmg", model)},
                          data={"register": "true"}, timeout=120)  # fmt: skip
    assert response.status_code in (200, 201), response.text
    return response.json()["id"]


GRAPH_LIED_NODE = 2  # the CNN's max pool: the liar flips one bit of its value


def test_a_two_phase_game_is_watched_through_both_phases(harness: Harness, browser, page: Page, cnn_model: str):
    """A lie about one node of a graph model: the page shows phase 1 over the values (each point named by its node),
    the link (the node, its op, its operands and its run's steps), then phase 2 down to one instruction."""
    liar = harness.stack.start_service("liar-graph", "submitter", {
        "SUBMITTER_DEV_ACCOUNT": str(LIAR_ACCOUNT), "SUBMITTER_FAULT_LIE": "states",
        "SUBMITTER_FAULT_LIE_FROM_STEP": str(GRAPH_LIED_NODE + 1),
    })  # fmt: skip
    try:
        page.goto(f"{harness.url('challenger')}/ui")
        request_id = harness.request(SEVEN[:-1] + b"\x02", model=cnn_model)
        game_rows = page.locator(f'#games tr[data-request-id="{request_id}"]')
        expect(game_rows.first).to_be_visible(timeout=60_000)
        game_id = int(game_rows.first.get_attribute("data-game-id"))
        page.goto(f"{harness.url('challenger')}/ui/disputes/{game_id}")
        stay_marker(page)
        phases_seen, shots = [], set()
        deadline = time.monotonic() + 180
        while page.locator("body[data-settled]").count() == 0 and time.monotonic() < deadline:
            phase = page.locator("[data-phase]").first.get_attribute("data-phase")
            if phase not in phases_seen:
                phases_seen.append(phase)
            pictures = page.locator("#dissection figure.picture").count()
            if pictures not in shots and page.locator("#game-status").get_attribute("data-status") == "active":
                shoot(page, f"two-phase-game-{'phase-1' if pictures == 1 else 'phase-2'}")
                shots.add(pictures)
            page.wait_for_timeout(200)
        assert page.locator("body[data-settled]").count() == 1, "the game page never settled"
        assert not_reloaded(page)
    finally:
        harness.stack.services.pop("liar-graph")
        liar.stop()

    dispute = harness.dispute(game_id)
    assert dispute["status"] == "challenger_won" and dispute["game"] == "two_phase"
    assert phases_seen[-1] == "run" and set(phases_seen) <= {"graph", "run"}
    phase1 = [r for r in dispute["history"] if r["phase"] == "graph"]
    phase2 = [r for r in dispute["history"] if r["phase"] == "run"]
    link = dispute["link"]
    assert link["node"] == GRAPH_LIED_NODE and link["op"] == "maxpool2d"
    expect(page.locator("#dissection figure.picture")).to_have_count(2)
    expect(page.locator('figure[data-phase="graph"] g.pic-row')).to_have_count(len(phase1) + 1)  # and the one node
    expect(page.locator('figure[data-phase="graph"] g.pic-final')).to_contain_text(f"node {link['node']}")
    expect(page.locator('figure[data-phase="node"] g.pic-row')).to_have_count(len(phase2) + 1)  # and the one step
    expect(page.locator('figure[data-phase="node"] g.pic-final')).to_contain_text("One step")
    expect(page.locator("#dissection svg [data-chosen]")).to_have_count(dispute["rounds"])
    box = page.locator("#link")
    expect(box).to_have_attribute("data-link-node", str(link["node"]))
    expect(box).to_contain_text(f"node {link['node']}: maxpool2d")
    expect(box).to_contain_text(f"{link['steps']:,} steps")
    for operand in link["operands"]:
        expect(box.locator(f'[data-operand-slot="{operand["slot"]}"]')).to_contain_text(operand["node"]["op"])
    first = page.locator("#dissection details").first  # a phase-1 round: each point's value named by its node
    first.locator("summary").click()
    for index, node in enumerate(phase1[0]["nodes"]):
        expect(first.locator("td.node-name").nth(index)).to_contain_text(f"node {node['index']}: {node['op']}")
    expect(page.locator("#moves tr[data-move=link]")).to_have_count(1)
    expect(page.locator("#moves tr[data-move=link] th")).to_have_text("node linked")
    expect(page.locator("[data-verdict]")).to_contain_text("the challenger was right")
    assert_accessible(page)
    shoot(page, "two-phase-game-won")
    assert_fits_phone(page, "two-phase-game-phone")
    still = without_javascript(browser, page.url, "two-phase-game-without-javascript")
    expect(still.locator("#dissection figure.picture")).to_have_count(2)
    expect(still.locator("#link")).to_contain_text("maxpool2d")
    still.context.close()


def test_an_unknown_game_or_page_is_a_404_page_and_the_api_stays_json(harness: Harness, page: Page):
    base = harness.url("challenger")
    for path, says in [
        ("/ui/disputes/99999", "no game 99999"),
        ("/ui/disputes/0", "no game 0"),
        ("/ui/disputes/not-a-number", "there is no page at /ui/disputes/not-a-number"),
        ("/ui/nothing-here", "there is no page at /ui/nothing-here"),
        ("/ui/static/missing.css", "there is no page at /ui/static/missing.css"),
    ]:
        response = page.goto(base + path)
        assert response is not None and response.status == 404, path
        assert response.headers["content-type"].startswith("text/html"), path
        expect(page.get_by_role("heading", level=1)).to_have_text("Not found")
        expect(page.locator("main")).to_contain_text(says)
        assert "Traceback" not in page.content()
    assert_accessible(page)
    shoot(page, "unknown-page")
    response = page.goto(f"{base}/ui?games_page=0")
    assert response is not None and response.status == 422
    expect(page.get_by_role("heading", level=1)).to_have_text("Error 422")

    api = httpx.get(f"{base}/disputes/99999", timeout=30)
    assert api.status_code == 404 and api.json()["error"] == "not_found"
    assert httpx.get(f"{base}/nothing-here", timeout=30).headers["content-type"] == "application/json"
    css = httpx.get(f"{base}/ui/static/explorer.css", timeout=30)
    assert css.status_code == 200 and css.headers["content-type"].startswith("text/css")
    assert "(/ui)" in httpx.get(f"{base}/openapi.json", timeout=30).json()["info"]["description"]


# --- an empty registry, and a crowded one, on a chain of their own ----------------------------------------

CLAIMANT, CHALLENGERS = 1, range(2, 10)  # dev accounts on the side chain; the explorers' agents are account 0
REQUESTS, CLAIMS, STEPS = 30, 40, 1_953_757
GAMES = CLAIMS * len(CHALLENGERS)
SIDE_PARAMETERS = Parameters(challenge_window=3_600, clock_budget=1_800, request_timeout=86_400)


@pytest.fixture(scope="module")
def side_chain():
    with Anvil() as node:
        yield node


def dev(w3: Web3, account: int) -> TransactionManager:
    return TransactionManager(w3, dev_key(account), poll_interval=0.005)  # a block per transaction: no waiting


def explorer_on(harness: Harness, side_chain: Anvil, data: Path, name: str) -> tuple[str, Registry]:
    """A challenger service on a fresh deployment of its own (an empty database too), and the registry."""
    w3 = connect(side_chain.url)
    deployment = deploy_contracts(w3, dev(w3, 0), SIDE_PARAMETERS)
    deployment.write(data / f"{name}.json")
    service = harness.stack.start_service(name, "challenger", {
        "CHALLENGER_RPC_URL": side_chain.url, "CHALLENGER_DEPLOYMENT_PATH": str(data / f"{name}.json"),
        "CHALLENGER_DATABASE_URL": str(data / f"{name}.db"), "CHALLENGER_DEV_ACCOUNT": "0",
    })  # fmt: skip
    return service.url, Registry(w3, deployment.registry)


def make_games(registry: Registry) -> None:
    """Hundreds of games, cheaply: requests for a program nobody can run (so no agent plays them), claims of
    made-up final states, and every claim challenged by eight accounts. A few games are played with made-up
    hashes, down to one step for one of them, and a few end on time."""
    w3 = registry.w3
    owner, claimant = dev(w3, 0), dev(w3, CLAIMANT)
    challengers = [dev(w3, index) for index in CHALLENGERS]
    program_id = register_program(registry, owner, ProgramImage(Web3.keccak(text="a program nobody has"), 0x400000))
    model_id = register_model(registry, owner, seed_model(), "models/seed-mnist/model.bin")
    for _ in range(REQUESTS):
        owner.send(registry.request_inference(program_id, model_id, SEVEN, STEPS), value=10**15)

    def claim_and_challenge(claims: range) -> None:
        made_up = [
            FinalClaim(State(Web3.keccak(i.to_bytes(8, "big")), 0x400000, 0x400004, exited=True, step=STEPS), b"", ())
            for i in claims
        ]
        for i, claim in zip(claims, made_up, strict=True):
            claimant.send(registry.commit_claim(i % REQUESTS + 1, claim, claimant.address))
        for i, claim in zip(claims, made_up, strict=True):
            claimant.send(registry.submit_claim(i % REQUESTS + 1, claim), value=SIDE_PARAMETERS.claim_bond)
        first_claim = registry.count("claim") - len(claims) + 1
        for claim_id in range(first_claim, first_claim + len(claims)):
            for challenger in challengers:
                challenger.send(registry.challenge(claim_id), value=SIDE_PARAMETERS.challenge_bond)

    def play(game_id: int, rounds: int) -> None:
        """Rounds of made-up hashes, the challenger always disputing the first segment."""
        challenger = challengers[(game_id - 1) % len(challengers)]
        for _ in range(rounds):
            game = registry.game(game_id)
            if game.width <= 1:
                return
            hashes = [Web3.keccak(text=f"{game_id}/{step}") for step in registry.points(game.lo, game.hi)[1:-1]]
            claimant.send(registry.bisect(game_id, hashes))
            challenger.send(registry.select(game_id, 0, hashes))

    claim_and_challenge(range(2))  # the oldest games: played a little, then some end on time
    play(1, 10)  # down to one step
    advance_time(w3, SIDE_PARAMETERS.clock_budget * 4 // 5)  # the defender of game 2 answers late: a fifth left
    play(2, 2)
    claimant.send(registry.bisect(3, [Web3.keccak(text=f"3/{i}") for i in range(15)]))  # the challenger to choose
    advance_time(w3, SIDE_PARAMETERS.clock_budget + 1)
    for game_id in range(9, 17):
        owner.send(registry.timeout(game_id))
    claim_and_challenge(range(2, CLAIMS))  # the newest games, every clock running


@pytest.fixture(scope="module")
def empty_explorer(harness, side_chain, tmp_path_factory) -> str:
    url, _ = explorer_on(harness, side_chain, tmp_path_factory.mktemp("empty"), "empty-explorer")
    return url


@pytest.fixture(scope="module")
def crowded_data(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("crowded")


@pytest.fixture(scope="module")
def crowded_explorer(harness, side_chain, crowded_data) -> str:
    url, registry = explorer_on(harness, side_chain, crowded_data, "crowded-explorer")
    make_games(registry)
    wait_for(lambda: httpx.get(f"{url}/disputes", params={"limit": 1}, timeout=30).json()["total"] == GAMES, 60,
             f"the explorer to index {GAMES} games")  # fmt: skip
    return url


def test_an_empty_registry_renders(empty_explorer: str, browser, page: Page):
    response = page.goto(f"{empty_explorer}/ui")
    assert response is not None and response.status == 200
    expect(page.get_by_role("heading", level=1)).to_have_text("Requests and games")
    expect(page.locator("#requests")).to_contain_text("No requests yet")
    expect(page.locator("#games")).to_contain_text("No games yet")
    expect(page.locator("table")).to_have_count(0)
    expect(page.locator("#freshness")).to_have_text("Updates on its own.")
    assert_accessible(page)
    shoot(page, "empty-registry")
    assert_fits_phone(page, "empty-registry-phone")
    assert httpx.get(f"{empty_explorer}/requests", timeout=30).json()["total"] == 0
    without_javascript(browser, f"{empty_explorer}/ui", "empty-registry-without-javascript").context.close()


def test_hundreds_of_games_page_by_page(crowded_explorer: str, browser, page: Page):
    page.goto(f"{crowded_explorer}/ui")
    games = page.locator("#games tbody tr")
    expect(games).to_have_count(20)
    expect(page.locator("#games-heading")).to_contain_text(f"({GAMES})")
    expect(page.locator("#games caption")).to_contain_text(f"page 1 of {GAMES // 20}")
    assert [int(id_) for id_ in games.evaluate_all("rows => rows.map(row => row.dataset.gameId)")] == list(
        range(GAMES, GAMES - 20, -1)
    )  # newest first
    expect(page.locator("#requests tbody tr")).to_have_count(20)
    expect(page.locator("#requests caption")).to_contain_text("page 1 of 2")
    assert_accessible(page)
    shoot(page, "crowded-first-page")

    running = page.locator("#games [data-running]").first  # the newest games' clocks count down in chain time
    before = seconds(running.inner_text())
    page.wait_for_timeout(2_500)
    assert 0 < before - seconds(running.inner_text()) <= 4
    assert 1_700 < before <= SIDE_PARAMETERS.clock_budget

    page.get_by_role("navigation", name="Pages of games").get_by_role("link", name="Older").click()
    expect(page).to_have_url(re.compile(r"games_page=2"))
    expect(page.locator("#games tbody tr").first).to_have_attribute("data-game-id", str(GAMES - 20))
    expect(page.locator("#requests caption")).to_contain_text("page 1 of 2")  # the other list stays where it was
    page.get_by_role("navigation", name="Pages of games").get_by_role("link", name="Oldest").click()
    expect(page.locator("#games caption")).to_contain_text(f"page {GAMES // 20} of {GAMES // 20}")
    oldest = page.locator("#games tbody tr")
    expect(oldest).to_have_count(20)
    expect(oldest.last).to_have_attribute("data-game-id", "1")
    expect(page.locator('#games tr[data-game-id="9"]')).to_contain_text("challenger won")  # ended on time:
    expect(page.locator('#games tr[data-game-id="9"]')).to_contain_text("ran out")  # the defender's clock
    expect(page.locator('#games tr[data-game-id="3"]')).to_contain_text("challenger")  # to choose a segment
    shoot(page, "crowded-last-page")
    page.goto(f"{crowded_explorer}/ui?games_page=999&requests_page=2")  # past the end: the last page
    expect(page.locator("#games caption")).to_contain_text(f"page {GAMES // 20} of {GAMES // 20}")
    expect(page.locator("#requests tbody tr")).to_have_count(REQUESTS - 20)
    assert_fits_phone(page, "crowded-phone")

    listing = httpx.get(f"{crowded_explorer}/requests", params={"limit": 100}, timeout=30).json()
    assert listing["total"] == REQUESTS and [item["id"] for item in listing["items"]] == list(range(REQUESTS, 0, -1))
    assert sum(item["games"] for item in listing["items"]) == GAMES


def test_a_game_narrowed_to_one_step_that_this_challenger_cannot_rerun(crowded_explorer: str, page: Page):
    page.goto(f"{crowded_explorer}/ui/disputes/1")
    dispute = httpx.get(f"{crowded_explorer}/disputes/1", timeout=30).json()
    assert dispute["hi"] - dispute["lo"] == 1 and dispute["status"] == "active"
    expect(page.locator("#game-status")).to_contain_text(f"{dispute['rounds']} rounds played, the defender to move")
    expect(page.locator("#dissection svg g.pic-row")).to_have_count(dispute["rounds"] + 1)
    expect(page.locator("#dissection svg g.pic-final")).to_contain_text("to be executed on-chain")
    expect(page.locator("#final-step")).to_contain_text("cannot rerun this request")
    expect(page.locator("#final-step")).to_contain_text(dispute["final_step"]["pre_state_hash"])
    expect(page.locator("#bonds")).to_contain_text("None yet")
    assert_accessible(page)
    shoot(page, "one-step-unverifiable")

    page.goto(f"{crowded_explorer}/ui/disputes/9")
    expect(page.locator("#game-status")).to_contain_text("Challenger won after 0 rounds")
    expect(page.locator("#dissection svg")).to_contain_text("the defender ran out of time")
    expect(page.locator(".facts")).to_contain_text("0:00 ran out")
    expect(page.locator("#bonds tbody tr").first).to_be_visible()
    shoot(page, "ended-on-time")


def test_a_move_mined_with_little_of_its_clock_left_is_marked(crowded_explorer: str, page: Page):
    dispute = httpx.get(f"{crowded_explorer}/disputes/2", timeout=30).json()
    low = [move for move in dispute["moves"] if move["low"]]
    assert [move["move"] for move in low] == ["bisect", "bisect"]  # the defender answered with a fifth left
    assert all(move["left"] < SIDE_PARAMETERS.clock_budget // 4 for move in low)
    assert dispute["least_left"]["defender"] == min(move["left"] for move in low)
    page.goto(f"{crowded_explorer}/ui/disputes/2")
    expect(page.locator("#moves tbody tr")).to_have_count(len(dispute["moves"]))
    marked = page.locator("#moves tr[data-low]")
    expect(marked).to_have_count(2)
    expect(marked.first).to_contain_text("under a quarter left")
    expect(marked.first).to_contain_text("defender")
    expect(page.locator("[data-least-defender]")).to_have_text(duration(dispute["least_left"]["defender"]))
    assert_accessible(page)
    shoot(page, "low-margin-marked")


def test_a_request_whose_final_result_is_not_ours_is_marked(crowded_explorer: str, crowded_data: Path, page: Page):
    """What the challenger's agent records when a result it disagrees with becomes final (AgentStore.record_alert,
    as opml.agents.disputes does), in the explorer's own store: the request's row says so, and its brief."""
    store = AgentStore.open(str(crowded_data / "crowded-explorer.db"))
    final, ours = "0x" + "ab" * 32, "0x" + "cd" * 32
    store.record_alert(REQUESTS, 1, final, ours)
    store.database.dispose()
    brief = next(item for item in httpx.get(f"{crowded_explorer}/requests", timeout=30).json()["items"]
                 if item["id"] == REQUESTS)  # fmt: skip
    assert brief["finalized_against_ours"] == {"claim_id": 1, "final_state_hash": final, "our_state_hash": ours}
    page.goto(f"{crowded_explorer}/ui")
    row = page.locator(f'#requests tr[data-request-id="{REQUESTS}"]')
    expect(row).to_have_attribute("data-alert", "")
    expect(row.locator(".badge-alert")).to_have_text("not the result we computed")
    expect(page.locator("#requests tr[data-alert]")).to_have_count(1)
    assert_accessible(page)
    shoot(page, "final-against-ours")
