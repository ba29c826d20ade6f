"""The dashboard's web server: one page and its JSON API, standard library only.

`DashboardServer(view, host, port).start()` serves, on a thread of its own (http.server's
ThreadingHTTPServer: a handful of operators' browsers need no framework, and the fleet side then
needs only the `fleet` extra, not the service's FastAPI):

- `GET /` the page (inline CSS and JavaScript, nothing fetched from elsewhere: it works on a
  district network without internet). It polls `/api/fleet` every second and draws every value
  with `textContent`, so a device id or an alarm text is shown, never run. A Content-Security-Policy
  allows only this page's own script and style (by hash) and requests to this server.
- `GET /api/fleet` `FleetView.snapshot()` as JSON.
- `GET /healthz` "ok".

It binds 127.0.0.1 unless told otherwise: the page has no login, so reaching it from elsewhere is
for an SSH tunnel or a reverse proxy with authentication (docs/fleet.md).

How it fails: a request for anything else is a 404; an error while answering is a 500 and a log
line, and the server keeps serving; a port in use raises OSError from `start()`.
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import threading
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Self

from sentinel.dashboard.collector import FleetView

log = logging.getLogger("sentinel.dashboard")

STYLE = """
:root { --ok:#1b7f3b; --bad:#b3261e; --warn:#a15c00; --mute:#5f6368; --line:#dadce0; --bg:#f6f7f9; }
* { box-sizing: border-box; }
body { margin:0; font:14px/1.35 system-ui, "Noto Sans CJK SC", "Noto Sans", sans-serif; color:#202124; background:var(--bg); }
header { display:flex; align-items:baseline; gap:16px; padding:10px 18px; background:#202124; color:#fff; }
header h1 { font-size:18px; margin:0; font-weight:600; }
header .meta { color:#c7c9cc; font-size:13px; }
header .conn { margin-left:auto; font-size:13px; padding:2px 8px; border-radius:10px; background:var(--ok); }
header .conn.down { background:var(--bad); }
main { padding:12px 18px; }
.cards { display:grid; grid-template-columns:repeat(6, minmax(120px,1fr)); gap:10px; margin-bottom:12px; }
.card { background:#fff; border:1px solid var(--line); border-radius:6px; padding:8px 12px; }
.card .v { font-size:26px; font-weight:650; font-variant-numeric:tabular-nums; }
.card .k { color:var(--mute); font-size:12px; text-transform:uppercase; letter-spacing:.03em; }
.card.alert .v { color:var(--bad); }
.verdicts { display:flex; gap:18px; margin:0 0 12px; color:var(--mute); font-size:13px; }
.verdicts b { color:#202124; font-variant-numeric:tabular-nums; }
h2 { font-size:14px; margin:14px 0 6px; text-transform:uppercase; letter-spacing:.04em; color:var(--mute); }
.bar { display:flex; gap:12px; align-items:center; margin:14px 0 6px; }
.bar h2 { margin:0; }
.bar input[type=search] { padding:3px 6px; font:inherit; width:220px; }
table { border-collapse:collapse; width:100%; background:#fff; border:1px solid var(--line); font-size:13px; }
th, td { padding:3px 8px; border-bottom:1px solid #eceef1; text-align:left; white-space:nowrap; }
th { background:#eef0f3; font-weight:600; position:sticky; top:0; }
td.n, th.n { text-align:right; font-variant-numeric:tabular-nums; }
tr.attention td { background:#fff4f2; }
.dot { display:inline-block; width:9px; height:9px; border-radius:50%; margin-right:6px; vertical-align:middle; }
.s-online .dot { background:var(--ok); } .s-offline .dot { background:var(--bad); }
.s-quiet .dot { background:var(--warn); } .s-unknown .dot { background:#9aa0a6; }
.s-offline, .bad { color:var(--bad); font-weight:600; } .s-quiet, .warn { color:var(--warn); font-weight:600; }
.mute { color:var(--mute); }
.alarm { display:inline-block; background:#fce8e6; color:var(--bad); border-radius:3px; padding:0 5px; margin-right:4px; font-size:12px; }
#stale { display:none; background:var(--bad); color:#fff; padding:6px 18px; }
"""

SCRIPT = r"""
"use strict";
const $ = (id) => document.getElementById(id);
const LABEL = {online: "online", offline: "OFFLINE", quiet: "quiet", unknown: "no state yet"};
const SHORT = {malformed: "malformed", too_large: "too large", wrong_site: "for another site", bad_signature: "wrong signing key",
  invalid_policy: "invalid policy", not_newer: "older than in force"};
function el(tag, text, cls) { const e = document.createElement(tag); if (text !== undefined && text !== null) e.textContent = String(text); if (cls) e.className = cls; return e; }
function num(n) { return n === null || n === undefined ? "–" : Number(n).toLocaleString("en-US"); }
function age(s) {
  if (s === null || s === undefined) return "–";
  s = Math.round(s);
  if (s < 60) return s + " s"; if (s < 3600) return Math.floor(s / 60) + " min";
  if (s < 86400) return Math.floor(s / 3600) + " h " + Math.floor((s % 3600) / 60) + " min";
  return Math.floor(s / 86400) + " d";
}
function card(v, k, alert) { const c = el("div", null, "card" + (alert ? " alert" : "")); c.append(el("div", v, "v"), el("div", k, "k")); return c; }
function td(text, cls) { return el("td", text, cls); }
let last = null;
function draw(f) {
  last = f;
  const h = f.headline;
  $("cards").replaceChildren(
    card(num(h.devices), "devices deployed"), card(num(h.online) + " / " + num(h.devices), "online now", h.online < h.devices),
    card(num(h.attention), "need attention", h.attention > 0), card(num(h.sites), "sites covered"),
    card(num(h.scans_today), "scans today"), card(num(h.scans_to_date), "scans to date"));
  const t = f.today;
  $("verdicts").replaceChildren(...[["pass", t.passed], ["deny", t.denied], ["staff check", t.manual], ["offline policy", t.offline], ["unreadable codes", t.decode_failures]]
    .map(([k, v]) => { const s = el("span", k + " "); s.append(el("b", num(v))); return s; }));
  $("conn").textContent = f.broker.connected ? "broker " + f.broker.address : "broker unreachable: " + f.broker.address;
  $("conn").className = "conn" + (f.broker.connected ? "" : " down");
  $("updated").textContent = "updated " + new Date(f.generated_at).toLocaleTimeString();
  const sites = $("sites-body"); sites.replaceChildren();
  for (const s of f.sites) {
    const tr = el("tr"); tr.dataset.site = s.site;
    if (s.attention || s.refusals) tr.className = "attention";
    const p = s.published;
    let pol = "config file", polCls = "mute";
    if (p) {
      pol = "v" + p.version + " · " + (p.acknowledged || 0) + "/" + s.devices + " running it";
      polCls = p.signature_ok === false ? "bad" : (p.acknowledged || 0) < s.devices ? "warn" : "";
      if (p.signature_ok === false) pol += " · NOT signed by the fleet key";
    }
    tr.append(td(s.site), td(s.online + " / " + s.devices, "n" + (s.online < s.devices ? " bad" : "")), td(num(s.attention), "n" + (s.attention ? " bad" : "")),
      td(num(s.today.checks), "n"), td(num(s.today.passed), "n"), td(num(s.today.denied), "n"), td(num(s.today.manual), "n"),
      td(pol, "policy " + polCls), td(s.refusals ? s.refusals + " refused" : "", "refusals bad"));
    sites.append(tr);
  }
  drawDevices();
}
function drawDevices() {
  if (!last) return;
  const q = $("filter").value.trim().toLowerCase(), only = $("only").checked;
  const body = $("devices-body"); body.replaceChildren();
  let shown = 0;
  for (const d of last.devices) {
    if (only && !d.attention) continue;
    if (q && !(d.site + " " + d.device + " " + d.alarms.join(" ")).toLowerCase().includes(q)) continue;
    shown++;
    const tr = el("tr"); tr.dataset.device = d.site + "/" + d.device; tr.dataset.status = d.status;
    if (d.attention) tr.className = "attention";
    const st = el("td", null, "status s-" + d.status); st.append(el("span", null, "dot"), el("span", LABEL[d.status] || d.status));
    const al = el("td", null, "alarms"); for (const a of d.alarms) al.append(el("span", a, "alarm"));
    for (const [k, v] of [["camera", d.camera], ["gate", d.gate], ["door", d.door]])
      if (v && !["ok", "closed", "open", "none"].includes(v) && !d.alarms.some((a) => a.startsWith(k + "_"))) al.append(el("span", k + " " + v, "alarm"));
    let backlog = "–", bcls = "n mute";
    if (d.outbox_depth !== null) { backlog = num(d.outbox_depth); bcls = "n"; if (d.outbox_depth > 0) { backlog += " · oldest " + age(d.outbox_oldest_age_s); if (d.outbox_oldest_age_s > 900) bcls = "n bad"; } }
    let pol = d.policy_version === null ? "config file" : "v" + d.policy_version, pcls = "policy" + (d.policy_version === null ? " mute" : "");
    const ref = d.rejected_version === null ? "" : "refused v" + d.rejected_version + ": " + (SHORT[d.reject_reason] || d.reject_reason);
    const refCell = td(ref, "refusal bad"); if (ref) refCell.title = last.reject_reasons[d.reject_reason] || "";
    tr.append(st, td(d.site), td(d.device), td(age(d.last_seen_age_s) + " ago", "n" + (d.status === "online" ? " mute" : "")), td(backlog, bcls), al,
      td(num(d.today.checks), "n"), td(num(d.today.passed), "n"), td(num(d.today.denied), "n"), td(num(d.today.manual), "n"),
      td(num(d.today.offline), "n"), td(num(d.today.decode_failures), "n"), td(pol, pcls), refCell, td(d.version || "–", "mute"));
    body.append(tr);
  }
  $("count").textContent = shown + " of " + last.devices.length + " devices shown" + (last.messages.dropped && Object.keys(last.messages.dropped).length ?
    " · messages dropped: " + Object.entries(last.messages.dropped).map(([k, v]) => k + " " + v).join(", ") : "");
}
async function poll() {
  try {
    const r = await fetch("api/fleet", {cache: "no-store"});
    if (!r.ok) throw new Error(r.status);
    draw(await r.json()); $("stale").style.display = "none";
  } catch (e) { $("stale").style.display = "block"; }
}
$("filter").addEventListener("input", drawDevices); $("only").addEventListener("change", drawDevices);
poll(); setInterval(poll, 1000);
"""

PAGE = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>Sentinel fleet</title><style>{STYLE}</style></head>
<body>
<header><h1>Sentinel fleet</h1><span class="meta" id="updated">loading…</span><span class="conn" id="conn">broker</span></header>
<div id="stale">The dashboard server does not answer: the figures below are not current.</div>
<main>
<div class="cards" id="cards"></div>
<div class="verdicts" id="verdicts"></div>
<h2>Sites</h2>
<table id="sites"><thead><tr><th>site</th><th class="n">online</th><th class="n">attention</th><th class="n">checks today</th><th class="n">pass</th>
<th class="n">deny</th><th class="n">staff</th><th>policy published</th><th>refusals</th></tr></thead><tbody id="sites-body"></tbody></table>
<div class="bar"><h2>Devices</h2><input type="search" id="filter" placeholder="filter: site, device, alarm">
<label><input type="checkbox" id="only"> only those needing attention</label><span class="mute" id="count"></span></div>
<table id="devices"><thead><tr><th>state</th><th>site</th><th>device</th><th class="n">last seen</th><th class="n">backlog</th><th>alarms</th>
<th class="n">checks today</th><th class="n">pass</th><th class="n">deny</th><th class="n">staff</th><th class="n">offline</th><th class="n">unread</th>
<th>policy</th><th>last refusal</th><th>software</th></tr></thead><tbody id="devices-body"></tbody></table>
</main>
<script>{SCRIPT}</script>
</body></html>
"""


def _sha256(text: str) -> str:
    return "'sha256-" + base64.b64encode(hashlib.sha256(text.encode("utf-8")).digest()).decode("ascii") + "'"


CSP = f"default-src 'none'; script-src {_sha256(SCRIPT)}; style-src {_sha256(STYLE)}; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
PAGE_BYTES = PAGE.encode("utf-8")


class _Handler(BaseHTTPRequestHandler):
    server_version = "sentinel-dashboard"
    sys_version = ""
    view: FleetView  # set on the subclass made per server

    def do_GET(self) -> None:
        path = self.path.split("?", 1)[0]
        try:
            if path == "/":
                self._send(HTTPStatus.OK, "text/html; charset=utf-8", PAGE_BYTES, {"Content-Security-Policy": CSP})
            elif path == "/api/fleet":
                body = json.dumps(self.view.snapshot(), ensure_ascii=False, separators=(",", ":")).encode("utf-8")
                self._send(HTTPStatus.OK, "application/json", body)
            elif path == "/healthz":
                self._send(HTTPStatus.OK, "text/plain; charset=utf-8", b"ok\n")
            else:
                self._send(HTTPStatus.NOT_FOUND, "text/plain; charset=utf-8", b"not found\n")
        except (BrokenPipeError, ConnectionResetError):
            pass
        except Exception:
            log.exception("dashboard request %s failed", path[:80].encode("unicode_escape").decode("ascii"))
            try:
                self._send(HTTPStatus.INTERNAL_SERVER_ERROR, "text/plain; charset=utf-8", b"error\n")
            except OSError:
                pass

    def _send(self, status: HTTPStatus, ctype: str, body: bytes, headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.send_header("X-Content-Type-Options", "nosniff")
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass  # one line per poll per browser is noise


class DashboardServer:
    """`with DashboardServer(view, port=0) as srv: srv.url`"""

    def __init__(self, view: FleetView, host: str = "127.0.0.1", port: int = 8090) -> None:
        self.view = view
        self.host = host
        self.port = port
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}/"

    def start(self) -> str:
        handler = type("Handler", (_Handler,), {"view": self.view})
        server_cls = ThreadingHTTPServer
        if ":" in self.host:
            import socket

            server_cls = type("Server6", (ThreadingHTTPServer,), {"address_family": socket.AF_INET6})
        self._httpd = server_cls((self.host, self.port), handler)
        self._httpd.daemon_threads = True
        self.port = self._httpd.server_address[1]
        self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.2}, name="dashboard-http", daemon=True)
        self._thread.start()
        return self.url

    def stop(self) -> None:
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
        if self._thread is not None:
            self._thread.join(5)
        self._httpd = self._thread = None

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
