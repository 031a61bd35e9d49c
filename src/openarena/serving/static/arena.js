// OpenArena battle page: Arena (anonymous), Side by side (named) and Direct chat.
// The server owns the battle: this script only sends the prompt, the vote and the battle id it
// was given; while an answer streams it appends the raw text deltas as text, then inserts the
// answer HTML that the server rendered once and sanitised (markdown-it + nh3).
"use strict";
(function () {
  const root = document.getElementById("arena");
  if (!root) return;
  const mode = root.dataset.mode;
  const csrf = document.querySelector('meta[name="csrf-token"]').content;
  const maxChars = parseInt(root.dataset.maxChars, 10);
  const sides = mode === "direct" ? ["a"] : ["a", "b"];
  const $ = (id) => document.getElementById(id);
  const promptBox = $("prompt"), sendBtn = $("send"), stopBtn = $("stop"), regenBtn = $("regenerate"), newBtn = $("new-round");
  const status = $("status"), votesBox = $("votes"), reveal = $("reveal");
  let battleId = null, controller = null, streaming = false, voted = false, failed = false, turnsLeft = null;
  let bubbles = {};   // side -> current assistant bubble

  function setStatus(text, kind) {
    status.textContent = text || "";
    status.className = "status" + (kind ? " " + kind : "");
  }
  function showVotes(on) {
    if (!votesBox) return;
    votesBox.hidden = !on;
    votesBox.querySelectorAll("button").forEach((b) => (b.disabled = !on));
  }
  function updateButtons() {
    sendBtn.disabled = streaming || voted || failed || turnsLeft === 0;
    stopBtn.disabled = !streaming;
    regenBtn.disabled = streaming || voted || failed || !battleId || !Object.keys(bubbles).length;
    promptBox.disabled = voted || failed;
  }
  async function post(url, body, signal) {
    return fetch(url, {
      method: "POST",
      headers: { "content-type": "application/json", "x-csrf-token": csrf },
      body: JSON.stringify(body || {}),
      credentials: "same-origin",
      signal,
    });
  }
  async function errorOf(resp) {
    try { const j = await resp.json(); return j.error || ("HTTP " + resp.status); }
    catch (e) { return "HTTP " + resp.status; }
  }
  function addMessage(side, role, text) {
    const chat = $("chat-" + side);
    const div = document.createElement("div");
    div.className = "msg " + role;
    if (role === "user") div.textContent = text;   // the user's own text: never parsed as HTML
    chat.appendChild(div);
    chat.scrollTop = chat.scrollHeight;
    return div;
  }
  function panelError(side, message, kind) {
    const div = document.createElement("div");
    div.className = "msg " + (kind || "error");
    div.setAttribute("role", kind ? "status" : "alert");
    div.textContent = message;
    $("chat-" + side).appendChild(div);
  }

  async function ensureBattle() {
    if (battleId) return battleId;
    const body = { mode };
    if (mode !== "anony") body.model_a = $("model-a").value;
    if (mode === "named") body.model_b = $("model-b").value;
    const resp = await post("/api/battles", body);
    if (!resp.ok) throw new Error(await errorOf(resp));
    const j = await resp.json();
    battleId = j.battle_id;
    turnsLeft = j.max_turns;
    root.dataset.battle = "open";
    document.querySelectorAll(".pickers select").forEach((s) => (s.disabled = true));
    return battleId;
  }

  // Read a text/event-stream response body; calls onEvent(name, data) per event.
  async function readEvents(resp, onEvent) {
    const reader = resp.body.getReader();
    const decoder = new TextDecoder();
    let buf = "";
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buf += decoder.decode(value, { stream: true });
      let cut;
      while ((cut = buf.indexOf("\n\n")) >= 0) {
        const block = buf.slice(0, cut);
        buf = buf.slice(cut + 2);
        let name = "message", data = "";
        for (const line of block.split("\n")) {
          if (line.startsWith("event: ")) name = line.slice(7);
          else if (line.startsWith("data: ")) data += line.slice(6);
        }
        if (data) onEvent(name, JSON.parse(data));
      }
    }
  }

  async function runTurn(url, body) {
    streaming = true;
    showVotes(false);
    updateButtons();
    setStatus("Answering…");
    controller = new AbortController();
    let ended = false;
    try {
      const resp = await post(url, body, controller.signal);
      if (!resp.ok) {
        setStatus(await errorOf(resp), "error");
        for (const s of sides) if (bubbles[s] && !bubbles[s].innerHTML) bubbles[s].remove();
        return;
      }
      await readEvents(resp, (name, d) => {
        if (name === "delta") {
          // raw text while streaming: appended as a text node, never parsed as HTML
          bubbles[d.side].style.whiteSpace = "pre-wrap";
          bubbles[d.side].append(d.text);
        } else if (name === "answer") {
          bubbles[d.side].style.whiteSpace = "";
          bubbles[d.side].innerHTML = d.html;   // the whole answer, rendered once and sanitised by the server
          if (d.done) bubbles[d.side].classList.add("done");
        } else if (name === "note") {
          panelError(d.side, d.message, "note");   // an answer cut by the arena's limits
        } else if (name === "failed") {
          panelError(d.side, d.message);
          failed = true;
          root.dataset.battle = "failed";
        } else if (name === "end") {
          ended = true;
          turnsLeft = d.turns_left;
          if (d.failed) {
            failed = true;
            setStatus(d.message, "error");
          } else if (mode === "direct") {
            setStatus(turnsLeft === 0 ? "Turn limit reached: start a new round." : "");
          } else if (!d.votable && d.message) {
            setStatus(d.message, "error");   // e.g. an empty answer: nothing to vote on
          } else {
            setStatus(turnsLeft === 0 ? "Turn limit reached: vote now." : "Vote now, or keep chatting to learn more.");
            showVotes(d.votable);
          }
        }
      });
      if (!ended && !failed) setStatus("The connection was interrupted; start a new round.", "error");
    } catch (e) {
      if (e.name === "AbortError") {
        setStatus(mode === "direct" ? "Stopped." : "Stopped. You can vote on what was written, or keep chatting.");
        if (mode !== "direct" && !failed) showVotes(true);
      } else {
        setStatus("Network error: " + e.message, "error");
      }
    } finally {
      streaming = false;
      controller = null;
      updateButtons();
    }
  }

  async function send(ev) {
    if (ev) ev.preventDefault();
    const text = promptBox.value;
    if (!text.trim() || streaming) return;
    if (text.length > maxChars) { setStatus("The prompt is too long (at most " + maxChars + " characters).", "error"); return; }
    try { await ensureBattle(); } catch (e) { setStatus(e.message, "error"); return; }
    for (const s of sides) { addMessage(s, "user", text); bubbles[s] = addMessage(s, "assistant", ""); }
    promptBox.value = "";
    await runTurn("/api/battles/" + battleId + "/turns", { prompt: text });
  }

  async function regenerate() {
    if (!battleId || streaming) return;
    for (const s of sides) { if (bubbles[s]) { bubbles[s].innerHTML = ""; bubbles[s].classList.remove("done"); } }
    await runTurn("/api/battles/" + battleId + "/regenerate", {});
  }

  function stop() { if (controller) controller.abort(); }

  function newRound() {
    stop();
    battleId = null; voted = false; failed = false; turnsLeft = null; bubbles = {};
    for (const s of sides) { $("chat-" + s).innerHTML = ""; const l = $("label-" + s); if (l) l.textContent = mode === "direct" ? "Model" : "Model " + s.toUpperCase(); }
    if (reveal) { reveal.hidden = true; reveal.textContent = ""; }
    showVotes(false);
    setStatus("");
    delete root.dataset.battle;
    document.querySelectorAll(".pickers select").forEach((s) => (s.disabled = false));
    updateButtons();
    promptBox.focus();
  }

  async function vote(winner) {
    if (!battleId || voted) return;
    showVotes(false);
    const resp = await post("/api/battles/" + battleId + "/vote", { winner });
    if (!resp.ok) {
      const msg = await errorOf(resp);
      setStatus(msg, "error");
      if (resp.status === 409 && /already/.test(msg)) { voted = true; updateButtons(); }
      else showVotes(!failed);
      return;
    }
    const j = await resp.json();
    voted = true;
    root.dataset.battle = "voted";
    $("label-a").textContent = "Model A: " + j.model_a;
    $("label-b").textContent = "Model B: " + j.model_b;
    reveal.hidden = false;
    reveal.textContent = j.message;
    reveal.className = "reveal" + (j.counted ? "" : " not-counted");
    setStatus("Start a new round for another battle.");
    updateButtons();
  }

  $("prompt-form").addEventListener("submit", send);
  promptBox.addEventListener("keydown", (e) => { if (e.key === "Enter" && (e.ctrlKey || e.metaKey)) send(e); });
  stopBtn.addEventListener("click", stop);
  regenBtn.addEventListener("click", regenerate);
  newBtn.addEventListener("click", newRound);
  if (votesBox) votesBox.querySelectorAll("button").forEach((b) => b.addEventListener("click", () => vote(b.dataset.winner)));
  updateButtons();
})();
