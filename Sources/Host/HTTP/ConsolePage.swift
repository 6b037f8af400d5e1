/// The console's page: HTML, CSS and a script, all inline, no data. The
/// script fills it from `/console/status` every two seconds.
enum ConsolePage {
    static let html = #"""
    <!doctype html>
    <html lang="en"><head><meta charset="utf-8"><title>Northstar console</title>
    <meta name="viewport" content="width=device-width, initial-scale=1">
    <style>
      body { font: 14px/1.4 system-ui, sans-serif; margin: 24px; color: #1b1f24; background: #f6f7f9; }
      h1 { font-size: 20px; margin: 0 0 4px; } h2 { font-size: 15px; margin: 0 0 8px; }
      .grid { display: grid; grid-template-columns: repeat(auto-fit, minmax(340px, 1fr)); gap: 16px; margin-top: 16px; }
      section { background: #fff; border: 1px solid #d8dce2; border-radius: 6px; padding: 12px 16px; }
      table { border-collapse: collapse; width: 100%; } td, th { text-align: left; padding: 3px 6px; border-bottom: 1px solid #eef0f3; }
      th { font-weight: 600; color: #57606a; } .num { text-align: right; font-variant-numeric: tabular-nums; }
      .ok { color: #1a7f37; } .bad { color: #cf222e; } #error { color: #cf222e; } form { margin-top: 16px; }
    </style></head>
    <body>
    <h1>Northstar console</h1>
    <div id="summary">Waiting for the admin token.</div>
    <div id="error"></div>
    <form id="login"><label>Admin token <input id="token" type="password" size="60" autocomplete="off"></label>
      <button>Show</button></form>
    <div class="grid">
      <section><h2>Node</h2><table id="node"></table></section>
      <section><h2>Cluster</h2><table id="cluster"></table></section>
      <section><h2>Connections</h2><table id="connections"></table></section>
      <section><h2>Plugins</h2><table id="plugins"></table></section>
      <section><h2>Health</h2><table id="health"></table></section>
      <section><h2>Hottest streams</h2><table id="streams"></table></section>
      <section><h2>Recent errors</h2><table id="errors"></table></section>
    </div>
    <script>
    "use strict";
    // The token stays in this tab: from the URL's fragment (never sent to the server) or the form.
    const fragment = new URLSearchParams(location.hash.slice(1));
    if (fragment.get("token")) { sessionStorage.setItem("northstar.admin", fragment.get("token")); history.replaceState(null, "", location.pathname); }
    document.getElementById("login").onsubmit = e => {
      e.preventDefault(); sessionStorage.setItem("northstar.admin", document.getElementById("token").value); poll();
    };
    const text = value => document.createTextNode(value === null || value === undefined ? "-" : String(value));
    function fill(id, header, rows) {
      const table = document.getElementById(id);
      table.replaceChildren();
      const head = table.insertRow();
      header.forEach(name => { const th = document.createElement("th"); th.append(text(name)); head.append(th); });
      rows.forEach(row => {
        const tr = table.insertRow();
        row.forEach(cell => { const td = tr.insertCell(); td.append(text(cell)); if (typeof cell === "number") td.className = "num"; });
      });
    }
    async function poll() {
      const token = sessionStorage.getItem("northstar.admin");
      if (!token) return;
      try {
        const answer = await fetch("/console/status", {headers: {Authorization: "Bearer " + token}, cache: "no-store"});
        const body = await answer.json();
        if (!answer.ok) { document.getElementById("error").textContent = body.error.code + ": " + body.error.message; return; }
        document.getElementById("error").textContent = "";
        document.getElementById("login").hidden = true;
        const s = body;
        document.getElementById("summary").textContent =
          `${s.node.state} · env ${s.node.env} · up ${s.node.uptime_seconds} s · version ${s.node.version}`;
        fill("node", ["", ""], [["state", s.node.state], ["version", s.node.version], ["ABI", s.node.abi],
          ["env", s.node.env], ["started", s.node.started_at], ["uptime (s)", s.node.uptime_seconds]]);
        fill("cluster", ["node", "address", "version", "state", "seen (s ago)"],
          s.cluster.map(n => [n.this ? n.id + " (this)" : n.id, n.address, n.version, n.state, n.seen_seconds_ago]));
        fill("connections", ["", ""], [["HTTP connections", s.connections.open], ["live subscribers", s.connections.live_subscribers],
          ["streams with subscribers", s.connections.streams_with_subscribers], ["WebSockets", s.connections.websockets_open],
          ["transport requests", s.connections.transport_exchanges_open]]);
        fill("plugins", ["name", "kind", "version", "ABI", "state"], s.plugins.map(p => [p.name, p.kind, p.version, p.abi, p.state]));
        fill("health", ["", ""], [["store", s.health.store], ["storage", s.health.storage], ["drain", s.health.drain]]);
        fill("streams", ["stream", "tenant", "last min", "this min", "subscribers"],
          s.hot_streams.map(h => [h.stream, h.tenant, h.last_minute, h.this_minute, h.subscribers]));
        fill("errors", ["code", "status", "count", "route", "last"], s.recent_errors.map(e => [e.code, e.status, e.count, e.route, e.last_at]));
      } catch (error) {
        document.getElementById("error").textContent = "the node does not answer: " + error;
      }
    }
    poll();
    setInterval(poll, 2000);
    </script>
    </body></html>
    """#
}
