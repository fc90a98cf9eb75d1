// Progressive enhancement for the vpop3d admin pages: confirmations, grid
// filters, double-click to edit, and in-place editing of the Groups grid.
"use strict";
(function () {
  const token = () => {
    const meta = document.querySelector('meta[name="csrf-token"]');
    return meta ? meta.content : "";
  };
  const statusBar = document.getElementById("status");
  let statusTimer = null;
  function say(text, sticky) {
    if (!statusBar) return;
    statusBar.textContent = text;
    statusBar.classList.add("shown");
    clearTimeout(statusTimer);
    if (!sticky) statusTimer = setTimeout(() => statusBar.classList.remove("shown"), 3500);
  }

  document.addEventListener("submit", (event) => {
    const form = event.target;
    const question = form.getAttribute("data-confirm");
    if (question && !window.confirm(question)) event.preventDefault();
  });

  document.querySelectorAll("[data-toggle=filters]").forEach((button) => {
    const row = document.getElementById("filter-row");
    const sync = () => { button.textContent = row.classList.contains("shown") ? "Hide Filters" : "Show Filters"; };
    sync();
    button.addEventListener("click", () => {
      row.classList.toggle("shown");
      sync();
      const first = row.querySelector("input");
      if (first && row.classList.contains("shown")) first.focus();
    });
  });

  // Grid rows: double-click or Enter opens the editor; arrow keys move between rows.
  document.querySelectorAll("tr[data-href]").forEach((row) => {
    row.tabIndex = 0;
    row.addEventListener("dblclick", () => { window.location = row.getAttribute("data-href"); });
    row.addEventListener("keydown", (event) => {
      if (event.target !== row) return;
      if (event.key === "Enter") window.location = row.getAttribute("data-href");
      const next = event.key === "ArrowDown" ? row.nextElementSibling
        : event.key === "ArrowUp" ? row.previousElementSibling : null;
      if (next && next.matches("tr[data-href]")) { event.preventDefault(); next.focus(); }
    });
  });
  // "/" jumps to the first filter box, as in many admin tools.
  document.addEventListener("keydown", (event) => {
    if (event.key !== "/" || /^(INPUT|TEXTAREA|SELECT)$/.test(document.activeElement.tagName)) return;
    const row = document.getElementById("filter-row");
    if (!row) return;
    event.preventDefault();
    const toggle = document.querySelector("[data-toggle=filters]");
    if (!row.classList.contains("shown") && toggle) toggle.click();
    row.querySelector("input").focus();
  });

  // Groups grid: every cell saves on change [seed-1 §13 L1702].
  async function saveCell(element, field, value) {
    const row = element.closest("tr[data-group]");
    element.classList.remove("saved", "failed");
    element.classList.add("saving");
    try {
      const response = await fetch("/api/v1/groups/" + row.dataset.group, {
        method: "PATCH",
        credentials: "same-origin",
        headers: { "Content-Type": "application/json", "X-CSRF-Token": token() },
        body: JSON.stringify({ [field]: value }),
      });
      const body = await response.json();
      if (!response.ok) throw new Error(body.error || response.statusText);
      element.classList.add("saved");
      say("Saved.");
      return true;
    } catch (error) {
      element.classList.add("failed");
      say("Not saved: " + error.message, true);
      return false;
    } finally {
      element.classList.remove("saving");
    }
  }

  const NEXT = { "true": "false", "false": "null", "null": "true" };
  const LABEL = { "true": "✔", "false": "✘", "null": "–" };
  const VALUE = { "true": true, "false": false, "null": null };
  document.querySelectorAll("#groups-grid button.tri").forEach((button) => {
    button.addEventListener("click", async () => {
      const before = button.dataset.state;
      const after = NEXT[before];
      button.dataset.state = after;
      button.textContent = LABEL[after];
      if (!(await saveCell(button, button.dataset.field, VALUE[after]))) {
        button.dataset.state = before;
        button.textContent = LABEL[before];
      }
    });
  });
  document.querySelectorAll("#groups-grid input.cell").forEach((input) => {
    input.addEventListener("change", async () => {
      let value;
      if (input.type === "checkbox") value = input.checked;
      else if (input.dataset.field === "max_outgoing_kb") value = Number.parseInt(input.value, 10);
      else value = input.value;
      if (Number.isNaN(value)) { say("Max Outgoing Size must be a whole number of kB.", true); input.classList.add("failed"); return; }
      if (!(await saveCell(input, input.dataset.field, value)) && input.type === "checkbox") input.checked = !input.checked;
    });
  });
  document.querySelectorAll("#groups-grid [title]").forEach((cell) => {
    cell.addEventListener("mouseenter", () => say(cell.title));
    cell.addEventListener("focus", () => say(cell.title));
  });
})();
// Setup Wizard page 4: show only the fields of the chosen collector kind.
(function () {
  const select = document.getElementById("collect");
  if (!select) return;
  const sync = () => document.querySelectorAll("fieldset[data-collect]").forEach((set) => {
    set.hidden = set.dataset.collect !== select.value;
  });
  select.addEventListener("change", sync);
  sync();
})();
