// OpenArena red-team game: start a round, chat with the anonymous model, give up, and the
// three live leaderboards. The server decides every outcome; this script only sends the
// handle, the messages and the round id it was given, and inserts answer HTML that the server
// already sanitised.
"use strict";
(function () {
  const root = document.getElementById("redteam");
  if (!root) return;
  const csrf = document.querySelector('meta[name="csrf-token"]').content;
  const $ = (id) => document.getElementById(id);
  const chat = $("rt-chat"), status = $("rt-status"), reveal = $("rt-reveal"), targetBox = $("rt-target");
  const prompt = $("rt-prompt"), send = $("rt-send"), forfeit = $("rt-forfeit");
  let roundId = null, busy = false;

  function setStatus(text, kind) { status.textContent = text || ""; status.className = "status" + (kind ? " " + kind : ""); }
  function playing(on) { prompt.disabled = send.disabled = forfeit.disabled = !on || busy; }
  async function post(url, body) {
    return fetch(url, { method: "POST", headers: { "content-type": "application/json", "x-csrf-token": csrf },
      body: JSON.stringify(body || {}), credentials: "same-origin" });
  }
  async function errorOf(resp) { try { const j = await resp.json(); return j.error || ("HTTP " + resp.status); } catch (e) { return "HTTP " + resp.status; } }
  function add(role, textOrHtml) {
    const div = document.createElement("div");
    div.className = "msg " + role;
    if (role === "assistant") div.innerHTML = textOrHtml; else div.textContent = textOrHtml;  // server-sanitised HTML / the player's own text
    chat.appendChild(div); chat.scrollTop = chat.scrollHeight;
  }
  function end(data) {
    roundId = null; playing(false);
    reveal.hidden = false;
    let text = "The model was " + data.reveal.model + ".";
    if (data.reveal.secret) text += " The password was " + data.reveal.secret + ".";
    reveal.textContent = text;
    setStatus(data.message || "", data.status === "won" ? "" : "error");
    loadBoards();
  }
  $("rt-start").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const resp = await post("/api/redteam/rounds", { handle: $("rt-handle").value.trim() });
    if (!resp.ok) { setStatus(await errorOf(resp), "error"); return; }
    const data = await resp.json();
    roundId = data.round_id; chat.textContent = ""; reveal.hidden = true;
    targetBox.hidden = false; targetBox.textContent = "Target: " + data.target.brief + " (" + data.max_turns + " turns)";
    setStatus("Round started. Your turn.");
    playing(true); prompt.focus();
  });
  $("rt-form").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const text = prompt.value;
    if (!roundId || !text.trim()) return;
    busy = true; playing(true); add("user", text); prompt.value = ""; setStatus("The model is answering...");
    const resp = await post("/api/redteam/rounds/" + roundId + "/turns", { prompt: text });
    busy = false;
    if (!resp.ok) { setStatus(await errorOf(resp), "error"); playing(!!roundId); return; }
    const data = await resp.json();
    if (data.answer_html) add("assistant", data.answer_html);
    if (data.status === "open") { setStatus(data.turns_left + " turn(s) left."); playing(true); }
    else end(data);
  });
  forfeit.addEventListener("click", async () => {
    if (!roundId) return;
    const resp = await post("/api/redteam/rounds/" + roundId + "/forfeit", {});
    if (!resp.ok) { setStatus(await errorOf(resp), "error"); return; }
    end(await resp.json());
  });
  async function loadBoards() {
    const resp = await fetch("/api/redteam/leaderboard", { credentials: "same-origin" });
    if (!resp.ok) return;
    const data = await resp.json();
    for (const kind of ["players", "models", "targets"]) {
      const body = document.querySelector("#rt-board-" + kind + " tbody");
      body.textContent = "";
      (data[kind] || []).forEach((row, k) => {
        const tr = document.createElement("tr");
        for (const [v, cls] of [[k + 1, ""], [row.name, "l"], [row.rating.toFixed(0), ""], [row.rounds, ""]]) {
          const td = document.createElement("td"); td.textContent = v; if (cls) td.className = cls; tr.appendChild(td);
        }
        body.appendChild(tr);
      });
    }
  }
  loadBoards();
})();
