// OpenArena battle page: Arena (anonymous), Side by side (named) and Direct chat.
// The server owns the battle: this script only sends the prompt, the vote and the battle id it
// was given, and inserts answer HTML that the server already sanitised (markdown-it + nh3).
// Rendering of an answer goes through one function, renderAnswer(); the server-sent events of a
// turn are handled in one function, onStreamEvent(). When an answer is final, enhance() typesets
// its math (KaTeX, on the nodes the server marked as math) and highlights its code blocks
// (highlight.js) with a copy button. Both libraries are vendored under /static/vendor/.
// While an answer streams, the raw text deltas are appended as text (never parsed as HTML); the
// server renders each answer once at the end.
"use strict";
(function () {
  const root = document.getElementById("arena");
  if (!root) return;
  const mode = root.dataset.mode;
  const csrf = document.querySelector('meta[name="csrf-token"]').content;
  const maxChars = parseInt(root.dataset.maxChars, 10);
  const maxImageBytes = parseInt(root.dataset.maxImageBytes || "0", 10);
  const IMAGE_TYPES = ["image/png", "image/jpeg", "image/webp", "image/gif"];
  const sides = mode === "direct" ? ["a"] : ["a", "b"];
  const $ = (id) => document.getElementById(id);
  const promptBox = $("prompt"), sendBtn = $("send"), stopBtn = $("stop"), regenBtn = $("regenerate"), newBtn = $("new-round");
  const status = $("status"), votesBox = $("votes"), reveal = $("reveal");
  let battleId = null, controller = null, streaming = false, voted = false, failed = false, turnsLeft = null;
  let bubbles = {};   // side -> current assistant bubble
  const baseArena = root.dataset.baseArena || "text";   // "code" on the code arena's page
  let arena = baseArena;   // the battle's arena: "vision" once it was started with an image
  let pendingImage = null;   // the image attached to the next prompt, as a data: URL
  const imageInput = $("image"), attachment = $("attachment");

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
  function addMessage(side, role, text, image) {
    const chat = $("chat-" + side);
    const div = document.createElement("div");
    div.className = "msg " + role;
    if (role === "user" && image) {   // the user's own image (a data: URL read from their file)
      const img = document.createElement("img");
      img.className = "user-image";
      img.alt = "Your image";
      img.src = image;
      div.appendChild(img);
    }
    if (role === "user") div.appendChild(document.createTextNode(text));   // the user's own text: never parsed as HTML
    chat.appendChild(div);
    chat.scrollTop = chat.scrollHeight;
    return div;
  }
  function panelError(side, message, kind) {
    const div = document.createElement("div");
    div.className = "msg " + (kind || "error");
    div.setAttribute("role", kind ? "status" : "alert");
    if (!kind) div.appendChild(icon("alert"));   // notes (answers cut by a limit) carry no alert icon
    div.appendChild(document.createElement("span")).textContent = message;
    $("chat-" + side).appendChild(div);
  }
  function icon(name) {   // an inline SVG icon from the page's <template id="icon-NAME">
    const t = $("icon-" + name);
    return t ? t.content.firstElementChild.cloneNode(true) : document.createTextNode("");
  }

  // ---- Rendering an answer: the single entry point ---------------------------------------
  // html: the answer (so far) as sanitised HTML from the server; done: the answer is final.
  function renderAnswer(bubble, html, done) {
    bubble.innerHTML = html;   // sanitised by the server
    if (done) {
      bubble.classList.add("done");
      enhance(bubble);
      document.dispatchEvent(new CustomEvent("arena:answer", { detail: { bubble } }));   // code.js
    }
    const chat = bubble.parentElement;
    if (chat) chat.scrollTop = chat.scrollHeight;
  }
  function enhance(el) {
    renderMath(el);
    highlightCode(el);
  }
  // The server marks math as <span class="math inline"> / <div class="math block"> holding the
  // TeX source as text ($...$, $$...$$, \(...\), \[...\]); KaTeX typesets it, untrusted
  // (trust: false: no \href, \url, \includegraphics, \htmlClass...). A formula KaTeX refuses
  // stays as its source, marked .katex-error (KaTeX's own error node would set an inline style,
  // which the page's CSP blocks).
  const KATEX_OPTIONS = { throwOnError: true, trust: false, strict: "ignore", maxSize: 20, maxExpand: 500, output: "htmlAndMathml" };
  function renderMath(el) {
    if (!window.katex) return;
    el.querySelectorAll(".math").forEach((node) => {
      const tex = node.textContent;
      try {
        window.katex.render(tex, node, Object.assign({ displayMode: node.classList.contains("block") }, KATEX_OPTIONS));
      } catch (e) {
        node.textContent = tex;   // leave the source readable
        node.classList.add("katex-error");
        node.title = String(e && e.message || e);
      }
    });
  }
  function highlightCode(el) {
    el.querySelectorAll("pre > code").forEach((code) => {
      const pre = code.parentElement;
      if (pre.parentElement && pre.parentElement.classList.contains("codeblock")) return;
      const m = /(?:^|\s)language-([\w+#.-]+)/.exec(code.className);
      const lang = m ? m[1] : "";
      const text = code.textContent;
      if (window.hljs) {
        if (lang && !window.hljs.getLanguage(lang)) code.classList.add("nohighlight");
        else window.hljs.highlightElement(code);   // escapes the text itself; no HTML is parsed
      }
      const box = document.createElement("div");
      box.className = "codeblock";
      const head = document.createElement("div");
      head.className = "codeblock-head";
      head.appendChild(document.createElement("span")).textContent = lang || (code.result && code.result.language) || "code";
      const btn = document.createElement("button");
      btn.type = "button";
      btn.className = "copy";
      btn.setAttribute("aria-label", "Copy code");
      setCopyLabel(btn, false);
      btn.addEventListener("click", () => copyCode(btn, text));
      head.appendChild(btn);
      pre.replaceWith(box);
      box.appendChild(head);
      box.appendChild(pre);
    });
  }
  function setCopyLabel(btn, copied) {
    btn.replaceChildren(icon(copied ? "check" : "copy"), document.createTextNode(copied ? "Copied" : "Copy"));
    btn.classList.toggle("copied", copied);
  }
  async function copyCode(btn, text) {
    try {
      if (navigator.clipboard && window.isSecureContext) {
        await navigator.clipboard.writeText(text);
      } else {   // plain http on a LAN address: no async clipboard API
        const ta = document.createElement("textarea");
        ta.value = text;
        ta.setAttribute("readonly", "");
        ta.className = "offscreen";
        document.body.appendChild(ta);
        ta.select();
        const ok = document.execCommand("copy");
        ta.remove();
        if (!ok) throw new Error("copy refused");
      }
      setCopyLabel(btn, true);
      setTimeout(() => setCopyLabel(btn, false), 1500);
    } catch (e) {
      btn.lastChild.textContent = "Copy failed";
    }
  }

  async function ensureBattle() {
    if (battleId) return battleId;
    const body = { mode, arena };
    if (mode !== "anony") body.model_a = $("model-a").value;
    if (mode === "named") body.model_b = $("model-b").value;
    const resp = await post("/api/battles", body);
    if (!resp.ok) throw new Error(await errorOf(resp));
    const j = await resp.json();
    battleId = j.battle_id;
    root.dataset.battleId = battleId;
    turnsLeft = j.max_turns;
    root.dataset.battle = "open";
    root.dataset.arena = arena;
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

  // ---- The events of one turn (text/event-stream; see serving/engine.py) -------------------
  // Returns true on the final "end" event.
  function onStreamEvent(name, d) {
    if (name === "delta") {
      // raw text while streaming: appended as a text node, never parsed as HTML
      bubbles[d.side].style.whiteSpace = "pre-wrap";
      bubbles[d.side].append(d.text);
      const chat = bubbles[d.side].parentElement;
      if (chat) chat.scrollTop = chat.scrollHeight;
    } else if (name === "answer") {
      bubbles[d.side].style.whiteSpace = "";
      renderAnswer(bubbles[d.side], d.html, d.done);   // the whole answer, rendered once and sanitised by the server
    } else if (name === "note") {
      panelError(d.side, d.message, "note");   // an answer cut by the arena's limits
    } else if (name === "failed") {
      panelError(d.side, d.message);
      failed = true;
      root.dataset.battle = "failed";
    } else if (name === "end") {
      turnsLeft = d.turns_left;
      if (d.failed) {
        failed = true;
        setStatus(d.message, "error");
      } else if (mode === "direct") {
        setStatus(turnsLeft === 0 ? "Turn limit reached: start a new chat." : "");
      } else if (!d.votable && d.message) {
        setStatus(d.message, "error");   // e.g. an empty answer: nothing to vote on
      } else {
        setStatus(turnsLeft === 0 ? "Turn limit reached: vote now." : "Vote now, or keep chatting to learn more.");
        showVotes(d.votable);
      }
      return true;
    }
    return false;
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
      await readEvents(resp, (name, d) => { if (onStreamEvent(name, d)) ended = true; });
      if (!ended && !failed) setStatus("The connection was interrupted; " + (mode === "direct" ? "start a new chat." : "start a new round."), "error");
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

  // ---- The image of the next prompt (vision arena) -------------------------------------
  // Read as a data: URL (the page's CSP allows data: images only); the server checks,
  // re-encodes and strips it again, whatever this script lets through.
  function clearImage() {
    pendingImage = null;
    if (imageInput) imageInput.value = "";
    if (attachment) { attachment.hidden = true; $("attachment-img").removeAttribute("src"); $("attachment-name").textContent = ""; }
  }
  function pickImage() {
    const file = imageInput.files && imageInput.files[0];
    if (!file) return;
    if (IMAGE_TYPES.indexOf(file.type) < 0) { clearImage(); setStatus("Send a PNG, JPEG, WebP or GIF image.", "error"); return; }
    if (maxImageBytes && file.size > maxImageBytes) {
      clearImage();
      setStatus("The image is too large (at most " + Math.floor(maxImageBytes / 1048576 * 10) / 10 + " MB).", "error");
      return;
    }
    if (battleId && arena !== "vision") setStatus("This battle has no image: the image starts a new round when you send it.");
    else setStatus("");
    const reader = new FileReader();
    reader.onload = () => {
      pendingImage = String(reader.result);
      $("attachment-img").src = pendingImage;
      $("attachment-name").textContent = file.name;
      attachment.hidden = false;
    };
    reader.onerror = () => { clearImage(); setStatus("The image could not be read.", "error"); };
    reader.readAsDataURL(file);
  }

  async function send(ev) {
    if (ev) ev.preventDefault();
    const text = promptBox.value;
    if (!text.trim() || streaming) return;
    if (text.length > maxChars) { setStatus("The prompt is too long (at most " + maxChars + " characters).", "error"); return; }
    const image = pendingImage;
    // an image needs models that see images: a battle that started without one starts again
    if (image && battleId && arena !== "vision") newRound(true);
    if (!battleId) arena = image ? "vision" : baseArena;
    try { await ensureBattle(); } catch (e) { setStatus(e.message, "error"); return; }
    for (const s of sides) { addMessage(s, "user", text, image); bubbles[s] = addMessage(s, "assistant", ""); }
    promptBox.value = "";
    clearImage();
    const body = { prompt: text };
    if (image) body.images = [image];
    await runTurn("/api/battles/" + battleId + "/turns", body);
  }

  async function regenerate() {
    if (!battleId || streaming) return;
    for (const s of sides) { if (bubbles[s]) { bubbles[s].innerHTML = ""; bubbles[s].classList.remove("done"); } }
    await runTurn("/api/battles/" + battleId + "/regenerate", {});
  }

  function stop() { if (controller) controller.abort(); }

  // Panel headings: "Model A"/"Model B" in a battle until the vote; the chosen model's name in
  // side by side ("Model A: name") and direct chat ("name").
  function setLabel(side, name) {
    const label = $("label-" + side);
    if (!label) return;
    const prefix = mode === "direct" ? "" : "Model " + side.toUpperCase() + (name ? ": " : "");
    label.replaceChildren(document.createTextNode(prefix));
    if (name) {
      const span = document.createElement("span");
      span.className = "model-name";
      span.textContent = name;
      label.appendChild(span);
    }
  }
  function resetLabels() {
    for (const s of sides) {
      const picker = $("model-" + s);
      setLabel(s, mode === "anony" ? "" : (picker ? picker.value : ""));
    }
  }

  function newRound(keepImage) {
    stop();
    battleId = null; voted = false; failed = false; turnsLeft = null; bubbles = {}; arena = baseArena;
    if (keepImage !== true) clearImage();
    delete root.dataset.battleId;
    delete root.dataset.arena;
    for (const s of sides) $("chat-" + s).innerHTML = "";
    resetLabels();
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
    setLabel("a", j.model_a);
    setLabel("b", j.model_b);
    reveal.hidden = false;
    reveal.textContent = j.message;
    reveal.className = "reveal" + (j.counted ? "" : " not-counted");
    setStatus("Start a new round for another battle.");
    updateButtons();
  }

  document.querySelectorAll(".pickers select").forEach((sel) => sel.addEventListener("change", resetLabels));
  $("prompt-form").addEventListener("submit", send);
  promptBox.addEventListener("keydown", (e) => { if (e.key === "Enter" && (e.ctrlKey || e.metaKey)) send(e); });
  stopBtn.addEventListener("click", stop);
  regenBtn.addEventListener("click", regenerate);
  newBtn.addEventListener("click", () => newRound());
  if (imageInput) imageInput.addEventListener("change", pickImage);
  if ($("remove-image")) $("remove-image").addEventListener("click", () => { clearImage(); promptBox.focus(); });
  if (votesBox) votesBox.querySelectorAll("button").forEach((b) => b.addEventListener("click", () => vote(b.dataset.winner)));
  resetLabels();
  updateButtons();
})();
