// Code arena on the battle page: a "Preview" toggle for HTML blocks and a "Run" button under each Python block of the last answer of
// each side. The server runs the block it stored (POST /api/battles/{id}/run {side, block}),
// never code sent from here, and this script shows stdout, stderr, the exit status and the
// figures under the block. arena.js announces each finished answer with an "arena:answer"
// event and keeps the battle id in #arena[data-battle-id]. No inline script, no HTML from the
// run: every output is set as text (images are data: PNGs the server re-encoded).
(function () {
  const root = document.getElementById("arena");
  if (!root) return;
  const csrf = document.querySelector('meta[name="csrf-token"]').content;
  const PY = /(?:^|\s)language-(python|py|python3)(?:\s|$)/i;
  let available = false;

  function el(tag, cls, text) {
    const e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined) e.textContent = text;
    return e;
  }
  function sideOf(bubble) {
    const chat = bubble.parentElement;
    return chat && chat.id && chat.id.startsWith("chat-") ? chat.id.slice(5) : null;
  }
  // HTML blocks: a Preview toggle showing the block live in <iframe sandbox="allow-scripts">,
  // loaded from /artifacts/... whose own CSP makes it an opaque origin without network.
  const HTML = /(?:^|\s)language-(html|htm|xhtml)(?:\s|$)/i;
  function addPreviews(bubble) {
    const side = sideOf(bubble);
    if (!side) return;
    bubble.parentElement.querySelectorAll(".artifact-bar").forEach((b) => { if (!bubble.contains(b)) b.remove(); });
    bubble.querySelectorAll(".artifact-bar, iframe.artifact").forEach((b) => b.remove());
    let k = 0;
    bubble.querySelectorAll("pre > code").forEach((code) => {
      if (!HTML.test(code.className)) return;
      const index = k++;
      const pre = code.parentElement;
      const box = code.closest(".codeblock") || pre;
      const bar = el("div", "artifact-bar");
      const btn = el("button", "preview", "Preview");
      btn.type = "button";
      btn.setAttribute("aria-pressed", "false");
      bar.appendChild(btn);
      box.after(bar);
      let frame = null;
      btn.addEventListener("click", () => {
        const bid = root.dataset.battleId;
        if (!bid) return;
        const on = btn.getAttribute("aria-pressed") !== "true";
        if (on && !frame) {
          frame = document.createElement("iframe");
          frame.className = "artifact";
          frame.setAttribute("sandbox", "allow-scripts");
          frame.setAttribute("referrerpolicy", "no-referrer");
          frame.title = "Preview of the HTML block (sandboxed)";
          frame.src = "/artifacts/" + encodeURIComponent(bid) + "/" + side + "/" + index;
          box.appendChild(frame);
        }
        pre.hidden = on;
        if (frame) frame.hidden = !on;
        btn.setAttribute("aria-pressed", on ? "true" : "false");
        btn.textContent = on ? "Code" : "Preview";
      });
    });
  }
  function addButtons(bubble) {
    const side = sideOf(bubble);
    if (!side || !available) return;
    // only the last answer of a side can be run: the buttons of earlier answers go
    bubble.parentElement.querySelectorAll(".run-bar").forEach((b) => { if (!bubble.contains(b)) b.remove(); });
    bubble.querySelectorAll(".run-bar, .run-output").forEach((b) => b.remove());
    let k = 0;
    bubble.querySelectorAll("pre > code").forEach((code) => {
      if (!PY.test(code.className)) return;
      const index = k++;
      const box = code.closest(".codeblock") || code.parentElement;
      const bar = el("div", "run-bar");
      const btn = el("button", "run", "Run");
      btn.type = "button";
      btn.setAttribute("aria-label", "Run this Python block in the server's sandbox");
      bar.appendChild(btn);
      const out = el("div", "run-output");
      out.hidden = true;
      out.setAttribute("aria-live", "polite");
      box.after(bar);
      bar.after(out);
      btn.addEventListener("click", () => run(side, index, btn, out));
    });
  }
  async function run(side, block, btn, out) {
    const bid = root.dataset.battleId;
    if (!bid) return;
    btn.disabled = true;
    btn.textContent = "Running…";
    out.hidden = false;
    out.replaceChildren(el("div", "run-status", "Running in the sandbox…"));
    try {
      const resp = await fetch("/api/battles/" + encodeURIComponent(bid) + "/run", {
        method: "POST", credentials: "same-origin",
        headers: { "content-type": "application/json", "x-csrf-token": csrf },
        body: JSON.stringify({ side, block }),
      });
      const j = await resp.json().catch(() => ({}));
      if (!resp.ok) {
        out.replaceChildren(el("div", "run-status error", j.error || "The run failed (HTTP " + resp.status + ")."));
        return;
      }
      show(out, j);
    } catch (e) {
      out.replaceChildren(el("div", "run-status error", "The server could not be reached: try again."));
    } finally {
      btn.disabled = false;
      btn.textContent = "Run again";
    }
  }
  function show(out, j) {
    const good = j.exit_code === 0 && !j.timed_out && !j.truncated;
    const parts = [el("div", "run-status " + (good ? "ok" : "error"), j.message + " (exit status " + j.exit_code + ", " + j.duration_s + " s)")];
    if (j.stdout) { parts.push(el("div", "run-label", "stdout")); parts.push(el("pre", "run-stdout", j.stdout)); }
    if (j.stderr) { parts.push(el("div", "run-label", "stderr")); parts.push(el("pre", "run-stderr", j.stderr)); }
    for (const b64 of j.images || []) {
      const img = el("img", "run-image");
      img.alt = "Figure drawn by the program";
      img.src = "data:image/png;base64," + b64;
      parts.push(img);
    }
    out.replaceChildren(...parts);
  }

  document.addEventListener("arena:answer", (ev) => { addPreviews(ev.detail.bubble); addButtons(ev.detail.bubble); });
  fetch("/api/code/status", { credentials: "same-origin" })
    .then((r) => r.json())
    .then((j) => {
      available = !!j.available;
      if (available) document.querySelectorAll(".msg.assistant.done").forEach(addButtons);
    })
    .catch(() => {});
})();
