// keyward web UI: reveal on purpose (30 seconds, then masked again), copy, confirmations.
// Served by keyward under a Content-Security-Policy that allows no inline script.
"use strict";
(function () {
  const SHOW_MS = 30000;
  const csrf = () => (document.querySelector('meta[name="csrf-token"]') || {}).content || "";

  async function reveal(button) {
    const cell = button.closest("tr").querySelector(".secret");
    const mask = cell.dataset.mask;
    button.disabled = true;
    try {
      const resp = await fetch(button.dataset.url, {
        method: "POST",
        credentials: "same-origin",
        headers: { "Content-Type": "application/json", "X-CSRF-Token": csrf() },
        body: JSON.stringify({ field: button.dataset.field }),
      });
      const body = await resp.json();
      if (!resp.ok) {
        cell.textContent = (body.error && body.error.message) || "refused";
        cell.className = "secret error";
        return;
      }
      cell.textContent = body.value;
      cell.className = "secret value";
      const copy = document.createElement("button");
      copy.type = "button";
      copy.className = "quiet copy";
      copy.textContent = "Copy";
      copy.addEventListener("click", () => navigator.clipboard && navigator.clipboard.writeText(cell.textContent));
      button.after(copy);
      setTimeout(() => {
        cell.textContent = mask;
        cell.className = "secret mask";
        copy.remove();
        button.disabled = false;
      }, SHOW_MS);
    } catch (e) {
      cell.textContent = "the reveal failed";
      button.disabled = false;
    }
  }

  document.addEventListener("click", (ev) => {
    const b = ev.target.closest("button.reveal");
    if (b) { ev.preventDefault(); reveal(b); }
  });
  document.addEventListener("submit", (ev) => {
    const msg = ev.target.dataset.confirm;
    if (msg && !window.confirm(msg)) ev.preventDefault();
  });
})();
