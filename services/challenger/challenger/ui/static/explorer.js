// The explorer's live parts. The server renders every page in full; this script only keeps it current:
// every few seconds it fetches the same URL again and swaps in the regions marked data-live (the page's
// <main> and the chain time), and between fetches it counts the running chess clocks down and the ages
// up, one second at a time. A game page that is over (body[data-settled]) stops fetching.
"use strict";

(function () {
  const pollMs = Number(document.body.dataset.pollMs || 0);
  let renderedAt = Date.now();
  let announced = text(document.querySelector("[data-announce]"));

  function text(element) {
    return element ? element.textContent.replace(/\s+/g, " ").trim() : "";
  }

  // The same formats as formatting.py's duration and age.
  function duration(seconds) {
    seconds = Math.max(0, Math.floor(seconds));
    const hours = Math.floor(seconds / 3600);
    const minutes = Math.floor((seconds % 3600) / 60);
    const rest = String(seconds % 60).padStart(2, "0");
    return hours ? `${hours}:${String(minutes).padStart(2, "0")}:${rest}` : `${minutes}:${rest}`;
  }

  function age(seconds) {
    seconds = Math.max(0, Math.floor(seconds));
    for (const [size, unit] of [[86400, "d"], [3600, "h"], [60, "min"]]) {
      if (seconds >= size) return `${Math.floor(seconds / size)} ${unit}`;
    }
    return `${seconds} s`;
  }

  function tick() {
    const elapsed = (Date.now() - renderedAt) / 1000;
    for (const clock of document.querySelectorAll("[data-countdown][data-running]")) {
      clock.textContent = duration(Number(clock.dataset.countdown) - elapsed);
    }
    for (const since of document.querySelectorAll("[data-age]")) {
      since.textContent = age(Number(since.dataset.age) + elapsed);
    }
    const time = document.getElementById("chain-time");
    if (time) {
      const now = new Date((Number(time.dataset.chainTime) + elapsed) * 1000);
      time.textContent = now.toISOString().slice(0, 19).replace("T", " ");
    }
  }

  // What a swap must not take from the reader: which <details> are open, how far each table is scrolled
  // sideways, and where the keyboard focus is (by position among the region's focusable elements).
  const FOCUSABLE = "a[href], summary, button, [tabindex]:not([tabindex='-1'])";

  function readerState(region) {
    const focusables = [...region.querySelectorAll(FOCUSABLE)];
    return {
      open: new Set([...region.querySelectorAll("details[open][id]")].map((details) => details.id)),
      scrolled: [...region.querySelectorAll(".table-scroll")].map((box) => box.scrollLeft),
      focused: focusables.indexOf(document.activeElement),
    };
  }

  function restore(region, state) {
    for (const details of region.querySelectorAll("details[id]")) details.open = state.open.has(details.id);
    region.querySelectorAll(".table-scroll").forEach((box, index) => {
      box.scrollLeft = state.scrolled[index] || 0;
    });
    const focusable = region.querySelectorAll(FOCUSABLE)[state.focused];
    if (state.focused >= 0 && focusable) focusable.focus({ preventScroll: true });
  }

  function swap(next) {
    for (const region of document.querySelectorAll("[data-live][id]")) {
      const fresh = next.getElementById(region.id);
      if (!fresh) continue;
      const state = readerState(region);
      region.replaceWith(document.adoptNode(fresh));
      restore(fresh, state);
    }
    // a change of standing (a round played, the game over) is read out by screen readers
    const standing = text(document.querySelector("[data-announce]"));
    const announcer = document.getElementById("announcer");
    if (standing && standing !== announced && announcer) announcer.textContent = standing;
    announced = standing;
    document.body.toggleAttribute("data-settled", next.body.hasAttribute("data-settled"));
    renderedAt = Date.now();
    tick();
  }

  function say(text) {
    const freshness = document.getElementById("freshness");
    if (freshness) freshness.textContent = text;
  }

  async function refresh() {
    if (!document.hidden) {
      try {
        const response = await fetch(location.href, { headers: { Accept: "text/html" }, cache: "no-store" });
        if (response.ok) {
          swap(new DOMParser().parseFromString(await response.text(), "text/html"));
          say(document.body.hasAttribute("data-settled") ? "Final: nothing more will change." : "Updates on its own.");
        } else {
          say(`The last update failed (HTTP ${response.status}); trying again.`);
        }
      } catch (error) {
        say("The challenger did not answer the last update; trying again.");
      }
    }
    if (!document.body.hasAttribute("data-settled")) setTimeout(refresh, pollMs);
  }

  setInterval(tick, 1000);
  if (pollMs > 0) {
    say(document.body.hasAttribute("data-settled") ? "Final: nothing more will change." : "Updates on its own.");
    if (!document.body.hasAttribute("data-settled")) setTimeout(refresh, pollMs);
  }
})();
