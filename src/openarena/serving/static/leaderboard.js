// "Recompute now" on the leaderboard page: asks the server for a refresh (CSRF-protected POST),
// then shows that it is recomputing and reloads the page once a newer board is published
// (polling /leaderboard.json for a later "created" time), or says that it is still running.
"use strict";
(function () {
  const btn = document.getElementById("refresh");
  if (!btn) return;
  const csrf = document.querySelector('meta[name="csrf-token"]').content;
  const status = document.createElement("span");
  status.id = "refresh-status";
  status.setAttribute("role", "status");
  btn.after(status);
  const board = "/leaderboard.json" + location.search;
  const created = async () => {
    const r = await fetch(board, { credentials: "same-origin", cache: "no-store" });
    return r.ok ? (await r.json()).created || 0 : 0;
  };
  btn.addEventListener("click", async () => {
    btn.disabled = true;
    let before = 0;
    try { before = await created(); } catch (e) { /* the board is still asked for below */ }
    let msg = "", ok = false;
    try {
      const r = await fetch("/leaderboard/refresh", { method: "POST", headers: { "content-type": "application/json", "x-csrf-token": csrf }, body: "{}", credentials: "same-origin" });
      const body = await r.json();
      msg = body.message || body.error || "";
      ok = r.ok && body.refreshing === true;  // false: one ran moments ago, nothing new to wait for
    } catch (e) { msg = "The server could not be reached; try again shortly."; }
    status.textContent = " " + msg;
    if (!ok) { btn.disabled = false; return; }
    for (let i = 0; i < 60; i++) {
      await new Promise((done) => setTimeout(done, 1000));
      let now = 0;
      try { now = await created(); } catch (e) { continue; }
      if (now > before) { location.reload(); return; }
      status.textContent = " " + msg + " (" + (i + 1) + " s)";
    }
    status.textContent = " Still recomputing; reload the page in a while.";
    btn.disabled = false;
  });
})();
