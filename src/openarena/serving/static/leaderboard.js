// "Recompute now" on the leaderboard page: asks the server for a refresh (CSRF-protected POST).
"use strict";
(function () {
  const btn = document.getElementById("refresh");
  if (!btn) return;
  const csrf = document.querySelector('meta[name="csrf-token"]').content;
  btn.addEventListener("click", async () => {
    btn.disabled = true;
    const r = await fetch("/leaderboard/refresh", { method: "POST", headers: { "content-type": "application/json", "x-csrf-token": csrf }, body: "{}", credentials: "same-origin" });
    let msg = "";
    try { msg = (await r.json()).message || ""; } catch (e) { msg = "HTTP " + r.status; }
    btn.textContent = msg || "Requested";
    setTimeout(() => location.reload(), 1500);
  });
})();
