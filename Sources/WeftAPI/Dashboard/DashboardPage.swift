/// The operator's dashboard at `/`: one page, no external assets (it works offline), that
/// polls the API every second and draws throughput and RTT from the tunnels' counters.
enum DashboardPage {
    static let html = #"""
        <!doctype html>
        <html lang="en">
        <head>
        <meta charset="utf-8">
        <meta name="viewport" content="width=device-width, initial-scale=1">
        <link rel="icon" href="data:,">
        <title>weft</title>
        <style>
          :root { --fg: #1d2330; --muted: #667085; --line: #e3e6ec; --bg: #f6f7f9; --card: #fff;
                  --ok: #1a7f4b; --warn: #b54708; --bad: #b42318; --sent: #2563eb; --recv: #d97706; }
          * { box-sizing: border-box; }
          body { margin: 0; font: 14px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; color: var(--fg);
                 background: var(--bg); }
          header { display: flex; align-items: baseline; gap: 16px; padding: 14px 24px; background: var(--card);
                   border-bottom: 1px solid var(--line); flex-wrap: wrap; }
          header h1 { margin: 0; font-size: 20px; }
          header .meta { color: var(--muted); font-size: 13px; }
          #status { margin-left: auto; font-size: 12px; color: var(--muted); }
          #banner { display: none; margin: 12px 24px 0; padding: 8px 12px; border-radius: 6px; background: #fef3f2;
                    color: var(--bad); border: 1px solid #fecdca; }
          main { padding: 12px 24px 24px; display: grid; gap: 16px; }
          section { background: var(--card); border: 1px solid var(--line); border-radius: 8px; padding: 12px 16px; }
          h2 { margin: 0 0 8px; font-size: 15px; }
          h3 { margin: 4px 0 6px; font-size: 14px; }
          table { border-collapse: collapse; width: 100%; }
          th, td { text-align: left; padding: 4px 8px; border-bottom: 1px solid var(--line); white-space: nowrap; }
          th { color: var(--muted); font-weight: 500; font-size: 12px; }
          td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
          .badge { display: inline-block; padding: 0 7px; border-radius: 9px; font-size: 12px; color: #fff; }
          .on { background: var(--ok); } .off { background: var(--muted); } .suspect { background: var(--warn); }
          .empty { color: var(--muted); font-style: italic; }
          .tunnel { border-top: 1px solid var(--line); padding-top: 8px; margin-top: 8px; }
          .tunnel:first-of-type { border-top: 0; margin-top: 0; padding-top: 0; }
          .tunnel .meta { color: var(--muted); font-size: 13px; }
          .charts { display: grid; grid-template-columns: 1fr 1fr; gap: 12px; margin: 8px 0; }
          .chart { border: 1px solid var(--line); border-radius: 6px; padding: 6px 8px; }
          .chart .title { font-size: 12px; color: var(--muted); display: flex; gap: 12px; }
          .chart svg { width: 100%; height: 120px; display: block; }
          .key { display: inline-flex; align-items: center; gap: 4px; }
          .key i { width: 10px; height: 3px; display: inline-block; }
          .cols { display: grid; grid-template-columns: 1fr 1fr; gap: 16px; }
          code { font: 12px ui-monospace, SFMono-Regular, Menlo, monospace; }
        </style>
        </head>
        <body>
        <header>
          <h1 id="site-name">weft</h1>
          <span class="meta" id="site-meta"></span>
          <span id="status">connecting…</span>
        </header>
        <div id="banner" role="alert"></div>
        <main>
          <section><h2>Sites</h2><div id="sites"></div></section>
          <section><h2>Tunnels</h2><div id="tunnels"></div></section>
          <div class="cols">
            <section><h2>Exposed apps</h2><div id="exposed"></div></section>
            <section><h2>Remote apps</h2><div id="remote"></div></section>
          </div>
        </main>
        <script>
        "use strict";
        const HISTORY = 60;
        const LINK_COLOURS = ["#2563eb", "#d97706", "#059669", "#7c3aed", "#db2777", "#0891b2"];
        const history = new Map();  // peer -> {samples: [{t, sent, recv, rtt: {id: ms}}], last}

        function esc(value) {
          return String(value ?? "").replace(/[&<>"']/g, c => ({"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;"}[c]));
        }
        function scaled(value, units) {
          let i = 0;
          while (value >= 1000 && i < units.length - 1) { value /= 1000; i++; }
          return (i === 0 ? Math.round(value) : value.toFixed(1)) + " " + units[i];
        }
        const bytes = v => scaled(v, ["B", "KB", "MB", "GB", "TB"]);
        const bits = v => scaled(v, ["bit/s", "kbit/s", "Mbit/s", "Gbit/s", "Tbit/s"]);
        function duration(s) {
          s = Math.floor(s);
          if (s < 60) return s + "s";
          if (s < 3600) return Math.floor(s / 60) + "m" + String(s % 60).padStart(2, "0") + "s";
          if (s < 86400) return Math.floor(s / 3600) + "h" + String(Math.floor(s % 3600 / 60)).padStart(2, "0") + "m";
          return Math.floor(s / 86400) + "d" + Math.floor(s % 86400 / 3600) + "h";
        }
        function table(headers, rows, empty, attrs) {
          if (!rows.length) return `<div class="empty">${esc(empty)}</div>`;
          const head = headers.map(h => `<th${h.endsWith(" ") ? ' class="num"' : ""}>${esc(h.trim())}</th>`).join("");
          const body = rows.map((r, i) => `<tr${attrs ? " " + attrs(i) : ""}>` + r.map((c, j) =>
            `<td${headers[j].endsWith(" ") ? ' class="num"' : ""}>${c}</td>`).join("") + "</tr>").join("");
          return `<table><thead><tr>${head}</tr></thead><tbody>${body}</tbody></table>`;
        }
        async function get(path) {
          const response = await fetch(path, {credentials: "same-origin", cache: "no-store"});
          if (!response.ok) {
            let message = "HTTP " + response.status;
            try { message += ": " + (await response.json()).message; } catch (e) { /* not JSON */ }
            throw new Error(path + " — " + message);
          }
          return response.json();
        }
        function chart(series, format, maxFloor) {
          const w = 600, h = 120, pad = 4;
          let max = maxFloor;
          for (const s of series) for (const p of s.points) if (p[1] > max) max = p[1];
          const x = t => pad + (w - 2 * pad) * (t / (HISTORY - 1));
          const y = v => h - pad - (h - 2 * pad - 12) * (v / max);
          const lines = series.map(s => s.points.length < 2 ? "" :
            `<polyline fill="none" stroke="${s.colour}" stroke-width="1.6" points="${
              s.points.map(p => x(p[0]).toFixed(1) + "," + y(p[1]).toFixed(1)).join(" ")}"/>`).join("");
          return `<svg viewBox="0 0 ${w} ${h}" preserveAspectRatio="none" role="img">` +
            `<line x1="0" y1="${h - pad}" x2="${w}" y2="${h - pad}" stroke="#e3e6ec"/>` +
            `<text x="${pad}" y="11" font-size="10" fill="#667085">max ${esc(format(max))}</text>${lines}</svg>`;
        }
        function record(tunnel, now) {
          let entry = history.get(tunnel.peer);
          if (!entry) { entry = {samples: []}; history.set(tunnel.peer, entry); }
          const rtt = {};
          for (const link of tunnel.links) if (link.rttMs != null) rtt[link.id] = link.rttMs;
          const previous = entry.last;
          let sent = 0, recv = 0;
          if (previous && now > previous.t && tunnel.bytesSent >= previous.sent && tunnel.bytesReceived >= previous.recv) {
            const dt = (now - previous.t) / 1000;
            sent = (tunnel.bytesSent - previous.sent) * 8 / dt;
            recv = (tunnel.bytesReceived - previous.recv) * 8 / dt;
          }
          entry.last = {t: now, sent: tunnel.bytesSent, recv: tunnel.bytesReceived};
          if (previous) entry.samples.push({sent, recv, rtt});
          if (entry.samples.length > HISTORY) entry.samples.splice(0, entry.samples.length - HISTORY);
          return entry.samples;
        }
        function renderTunnel(tunnel, samples) {
          const offset = HISTORY - samples.length;
          const throughput = chart([
            {colour: "var(--sent)", points: samples.map((s, i) => [offset + i, s.sent])},
            {colour: "var(--recv)", points: samples.map((s, i) => [offset + i, s.recv])},
          ], bits, 1000);
          const ids = [...new Set(samples.flatMap(s => Object.keys(s.rtt)))];
          const rtt = chart(ids.map((id, k) => ({colour: LINK_COLOURS[k % LINK_COLOURS.length],
            points: samples.map((s, i) => [offset + i, s.rtt[id]]).filter(p => p[1] != null)})),
            v => v.toFixed(2) + " ms", 1);
          const last = samples[samples.length - 1] || {sent: 0, recv: 0};
          const links = table(["link", "transport", "local → remote", "dialed", "state", "RTT ", "rate ", "sent ", "received "],
            tunnel.links.map(l => [esc(l.id), esc(l.transport) + (l.role === "backup" ? " (backup)" : ""), `<code>${esc(l.localAddress ?? "?")} → ${esc(l.remoteAddress ?? l.path ?? "?")}</code>` + (l.remoteAddress && l.path && l.path !== "direct" ? ` ${esc(l.path)}` : ""),
              l.dialed ? "here" : "by peer", `<span class="badge ${l.state === "up" && !l.blocked && !l.blockedByPeer ? "on" : "suspect"}">${esc(l.blocked ? "blocked" : l.blockedByPeer ? "blocked by peer" : l.state)}</span>`,
              l.rttMs == null ? "–" : l.rttMs.toFixed(2) + " ms", l.rateBitsPerSecond == null ? "–" : bits(l.rateBitsPerSecond),
              bytes(l.bytesSent), bytes(l.bytesReceived)]), "no link at the moment");
          const keys = ids.map((id, k) => `<span class="key"><i style="background:${LINK_COLOURS[k % LINK_COLOURS.length]}"></i>link ${esc(id)}</span>`).join("");
          return `<div class="tunnel" data-peer="${esc(tunnel.peer)}"><h3>${esc(tunnel.peer)}</h3>` +
            `<div class="meta">${tunnel.links.length} link(s), ${tunnel.openStreams} stream(s), sent ${bytes(tunnel.bytesSent)}, ` +
            `received ${bytes(tunnel.bytesReceived)}, re-sent ${bytes(tunnel.resentBytes)}</div>` +
            `<div class="charts"><div class="chart"><div class="title">throughput <span class="key"><i style="background:var(--sent)"></i>sent ${bits(last.sent)}</span>` +
            `<span class="key"><i style="background:var(--recv)"></i>received ${bits(last.recv)}</span></div>${throughput}</div>` +
            `<div class="chart"><div class="title">RTT per link ${keys}</div>${rtt}</div></div>${links}</div>`;
        }
        async function poll() {
          const banner = document.getElementById("banner");
          try {
            const [site, sites, tunnels, exposed, remote] = await Promise.all([
              get("/api/v1/site"), get("/api/v1/remoteSites"), get("/api/v1/tunnels"),
              get("/api/v1/localExposedApps"), get("/api/v1/remoteApps")]);
            const now = Date.now();
            document.title = "weft · " + site.siteName;
            document.getElementById("site-name").textContent = site.siteName;
            document.getElementById("site-meta").textContent =
              `${site.fingerprint.slice(0, 23)}…  version ${site.version}  up ${duration(site.uptimeSeconds)}`;
            document.getElementById("sites").innerHTML = table(["site", "state", "tunnel", "endpoints", "apps", "version"],
              sites.map(s => [esc(s.siteName), `<span class="badge ${s.online ? "on" : "off"}">${s.online ? "online" : "offline"}</span>`,
                s.tunnel ? "up" : s.noPath ? `<span class="badge off" title="${esc(s.noPath)}">no path</span> ${esc(s.noPath)}` : "–", `<code>${esc(s.endpoints.join(", ") || "–")}</code>`, esc(s.apps.join(", ") || "–"),
                esc(s.softwareVersion ?? "–")]), "no other site known yet", i => `data-site="${esc(sites[i].siteName)}"`);
            const seen = new Set(tunnels.map(t => t.peer));
            for (const peer of [...history.keys()]) if (!seen.has(peer)) history.delete(peer);
            document.getElementById("tunnels").innerHTML = tunnels.length
              ? tunnels.map(t => renderTunnel(t, record(t, now))).join("") : '<div class="empty">no tunnel</div>';
            document.getElementById("exposed").innerHTML = table(["app", "mode", "target", "from"],
              exposed.map(a => [esc(a.appName), esc(a.mode), `<code>${esc(a.mode === "range"
                ? "ports " + a.portRange.join(",") + " at " + a.addressRange.join(",") : a.appSocket)}</code>`, esc(a.source)]),
              "none");
            document.getElementById("remote").innerHTML = table(["site", "app", "local socket", "target", "from"],
              remote.map(a => [esc(a.siteName), esc(a.appName), `<code>${esc(a.localSocket)}</code>`,
                `<code>${esc(a.appSocket ?? "–")}</code>`, esc(a.source)]), "none");
            document.getElementById("status").textContent = "updated " + new Date(now).toLocaleTimeString();
            banner.style.display = "none";
          } catch (error) {
            banner.textContent = "Cannot read the API: " + error.message;
            banner.style.display = "block";
            document.getElementById("status").textContent = "not updating";
          }
        }
        poll();
        setInterval(poll, 1000);
        </script>
        </body>
        </html>
        """#
}
