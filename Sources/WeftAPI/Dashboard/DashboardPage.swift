/// The operator's dashboard at `/`: one page, no external assets (it works offline), that
/// polls the API every second and draws throughput and RTT from the tunnels' counters. Apps
/// are added, edited and removed through the same REST API a script uses (POST, PUT,
/// DELETE), so the page has no powers of its own, and the API's errors show at their field.
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
          code { font: 12px ui-monospace, SFMono-Regular, Menlo, monospace; }
          .section-head { display: flex; align-items: center; gap: 12px; margin-bottom: 8px; }
          .section-head h2 { margin: 0; }
          button { font: inherit; font-size: 13px; padding: 3px 10px; border-radius: 6px; border: 1px solid var(--line);
                   background: var(--card); color: var(--fg); cursor: pointer; }
          button:hover { border-color: #98a2b3; }
          button.primary { background: var(--sent); border-color: var(--sent); color: #fff; }
          button.danger { color: var(--bad); }
          button.armed { background: var(--bad); border-color: var(--bad); color: #fff; }
          td.actions button + button { margin-left: 6px; }
          .app-form { border: 1px solid var(--line); border-radius: 8px; padding: 10px 14px; margin: 4px 0 12px;
                      background: #fbfcfd; }
          .app-form h3 { margin-top: 0; }
          .fields { display: grid; grid-template-columns: repeat(auto-fill, minmax(240px, 1fr)); gap: 8px 16px; }
          .field label { display: block; font-size: 12px; color: var(--muted); margin-bottom: 2px; }
          .field input, .field select { width: 100%; font: inherit; padding: 4px 6px; border: 1px solid var(--line);
                                        border-radius: 5px; background: #fff; }
          .field .hint { font-size: 11px; color: var(--muted); }
          .field .field-error { font-size: 12px; color: var(--bad); min-height: 0; }
          .field.invalid input, .field.invalid select { border-color: var(--bad); background: #fef3f2; }
          .form-error { color: var(--bad); margin: 4px 0; }
          .form-buttons { display: flex; gap: 8px; margin-top: 10px; }
          #notice { display: none; margin: 12px 24px 0; padding: 8px 12px; border-radius: 6px; background: #ecfdf3;
                    color: var(--ok); border: 1px solid #abefc6; }
          #notice.failed { background: #fef3f2; color: var(--bad); border-color: #fecdca; }
        </style>
        </head>
        <body>
        <header>
          <h1 id="site-name">weft</h1>
          <span class="meta" id="site-meta"></span>
          <span id="status">connecting…</span>
        </header>
        <div id="banner" role="alert"></div>
        <div id="notice" role="status"></div>
        <main>
          <section><h2>Sites</h2><div id="sites"></div></section>
          <section><h2>Tunnels</h2><div id="tunnels"></div></section>
          <section id="exposed-section">
            <div class="section-head"><h2>Exposed apps</h2>
              <button type="button" class="primary" id="exposed-add">Add an exposed app</button></div>
            <form id="exposed-form" class="app-form" hidden novalidate>
              <h3 class="form-title">Add an exposed app</h3>
              <div class="fields">
                <div class="field" data-field="appName"><label for="ex-appName">Name</label>
                  <input id="ex-appName" name="appName" autocomplete="off" placeholder="web"><div class="field-error"></div></div>
                <div class="field" data-field="mode"><label for="ex-mode">Mode</label>
                  <select id="ex-mode" name="mode"><option value="single">single: one socket</option>
                  <option value="range">range: addresses and ports</option></select><div class="field-error"></div></div>
                <div class="field single" data-field="appSocket"><label for="ex-appSocket">App socket</label>
                  <input id="ex-appSocket" name="appSocket" autocomplete="off" placeholder="tcp:127.0.0.1:8080">
                  <div class="hint">tcp:IP:PORT, udp:IP:PORT or unix:/path</div><div class="field-error"></div></div>
                <div class="field range" data-field="addressRange"><label for="ex-addressRange">Addresses</label>
                  <input id="ex-addressRange" name="addressRange" autocomplete="off" placeholder="192.168.1.0/24, 10.0.0.5">
                  <div class="hint">comma-separated</div><div class="field-error"></div></div>
                <div class="field range" data-field="portRange"><label for="ex-portRange">Ports</label>
                  <input id="ex-portRange" name="portRange" autocomplete="off" placeholder="22, 8000-8100">
                  <div class="hint">comma-separated</div><div class="field-error"></div></div>
                <div class="field range" data-field="protocols"><label for="ex-protocols">Protocols</label>
                  <select id="ex-protocols" name="protocols"><option value="tcp">TCP</option><option value="udp">UDP</option>
                  <option value="tcp,udp">TCP and UDP</option></select><div class="field-error"></div></div>
                <div class="field" data-field="allowedSites"><label for="ex-allowedSites">Allowed sites</label>
                  <input id="ex-allowedSites" name="allowedSites" autocomplete="off" placeholder="every site of the mesh">
                  <div class="hint">comma-separated; empty for every site</div><div class="field-error"></div></div>
                <div class="field" data-field="proxyProtocol"><label for="ex-proxyProtocol">PROXY protocol</label>
                  <select id="ex-proxyProtocol" name="proxyProtocol"><option value="">none</option><option value="v1">v1</option>
                  <option value="v2">v2</option></select><div class="field-error"></div></div>
                <div class="field" data-field="udpIdleTimeout"><label for="ex-udpIdleTimeout">UDP idle timeout (s)</label>
                  <input id="ex-udpIdleTimeout" name="udpIdleTimeout" inputmode="numeric" autocomplete="off" placeholder="60">
                  <div class="field-error"></div></div>
              </div>
              <div class="form-error" role="alert"></div>
              <div class="form-buttons"><button type="submit" class="primary">Add</button>
                <button type="button" data-action="cancel">Cancel</button></div>
            </form>
            <div id="exposed"></div>
          </section>
          <section id="remote-section">
            <div class="section-head"><h2>Remote apps</h2>
              <button type="button" class="primary" id="remote-add">Add a remote app</button></div>
            <form id="remote-form" class="app-form" hidden novalidate>
              <h3 class="form-title">Add a remote app</h3>
              <div class="fields">
                <div class="field" data-field="siteName"><label for="re-siteName">Site</label>
                  <input id="re-siteName" name="siteName" list="known-sites" autocomplete="off"><div class="field-error"></div></div>
                <div class="field" data-field="appName"><label for="re-appName">App</label>
                  <input id="re-appName" name="appName" list="known-apps" autocomplete="off"><div class="field-error"></div></div>
                <div class="field" data-field="localSocket"><label for="re-localSocket">Local socket</label>
                  <input id="re-localSocket" name="localSocket" autocomplete="off" placeholder="tcp:127.0.0.1:18080">
                  <div class="hint">where clients here connect: tcp:, udp: or unix:</div><div class="field-error"></div></div>
                <div class="field" data-field="appSocket"><label for="re-appSocket">Target (range apps)</label>
                  <input id="re-appSocket" name="appSocket" autocomplete="off" placeholder="tcp:192.168.1.20:22">
                  <div class="field-error"></div></div>
                <div class="field" data-field="localSocketMode"><label for="re-localSocketMode">Socket file mode (unix:)</label>
                  <input id="re-localSocketMode" name="localSocketMode" autocomplete="off" placeholder="0660">
                  <div class="field-error"></div></div>
                <div class="field" data-field="udpIdleTimeout"><label for="re-udpIdleTimeout">UDP idle timeout (s)</label>
                  <input id="re-udpIdleTimeout" name="udpIdleTimeout" inputmode="numeric" autocomplete="off" placeholder="60">
                  <div class="field-error"></div></div>
                <div class="field" data-field="udpMaxFlows"><label for="re-udpMaxFlows">UDP clients at once</label>
                  <input id="re-udpMaxFlows" name="udpMaxFlows" inputmode="numeric" autocomplete="off" placeholder="1024">
                  <div class="field-error"></div></div>
              </div>
              <div class="form-error" role="alert"></div>
              <div class="form-buttons"><button type="submit" class="primary">Add</button>
                <button type="button" data-action="cancel">Cancel</button></div>
            </form>
            <div id="remote"></div>
          </section>
          <datalist id="known-sites"></datalist><datalist id="known-apps"></datalist>
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
          // A header ending in a space is a number column; an empty one holds buttons.
          const cls = h => h.endsWith(" ") ? ' class="num"' : h === "" ? ' class="actions"' : "";
          const head = headers.map(h => `<th${cls(h)}>${esc(h.trim())}</th>`).join("");
          const body = rows.map((r, i) => `<tr${attrs ? " " + attrs(i) : ""}>` + r.map((c, j) =>
            `<td${cls(headers[j])}>${c}</td>`).join("") + "</tr>").join("");
          return `<table><thead><tr>${head}</tr></thead><tbody>${body}</tbody></table>`;
        }
        // A read for the refresh: an API error becomes an Error that names the path.
        async function get(path) {
          try {
            return await send("GET", path);
          } catch (error) {
            if (error instanceof Error) throw error;
            const status = "HTTP " + error.code;
            throw new Error(`${path} — ${error.message === status ? status : status + ": " + error.message}`);
          }
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
        // The apps of the last poll (for the edit form), their byte counters (for a rate), and
        // the Remove buttons waiting for their confirming click.
        const apps = {exposed: new Map(), remote: new Map()};
        const appCounters = new Map();
        const removals = new Map();
        function appRate(key, t, now) {
          const previous = appCounters.get(key), total = t.bytesSent + t.bytesReceived;
          appCounters.set(key, {t: now, total});
          if (!previous || now <= previous.t || total < previous.total) return null;
          return (total - previous.total) * 8 / ((now - previous.t) / 1000);
        }
        function armed(kind, key) {
          const at = removals.get(kind + " " + key);
          return at != null && Date.now() - at < 5000;
        }
        function path(kind, key) {
          return kind === "exposed" ? "/api/v1/localExposedApps/" + encodeURIComponent(key)
            : "/api/v1/remoteApps/" + key.split("/").map(encodeURIComponent).join("/");
        }
        // One API request; an error answer is thrown as the API's {code, message, field}. A
        // stalled answer must not stop the refreshes behind it: reads give up after 10 s.
        async function send(method, url, body) {
          const options = {method, credentials: "same-origin", cache: "no-store", headers: {},
            signal: AbortSignal.timeout(method === "GET" ? 10000 : 30000)};
          if (body !== undefined) {
            options.headers["Content-Type"] = "application/json";
            options.body = JSON.stringify(body);
          }
          const response = await fetch(url, options);
          if (response.ok) return response.status === 204 ? null : response.json();
          let error = {code: response.status, message: "HTTP " + response.status};
          try { error = await response.json(); } catch (e) { /* not JSON */ }
          throw error;
        }
        // What a change did, or why it failed (kept longer, and apart from the API's banner,
        // which the next good refresh hides).
        function notice(text, failed) {
          const element = document.getElementById("notice");
          element.textContent = text;
          element.className = failed ? "failed" : "";
          element.style.display = "block";
          clearTimeout(notice.timer);
          notice.timer = setTimeout(() => { element.style.display = "none"; }, failed ? 20000 : 6000);
        }

        // The add/edit forms. A form's fields carry the API's keys as names; what it sends is the
        // API's JSON body, and an error with a `field` is shown at that field.
        const forms = {exposed: document.getElementById("exposed-form"), remote: document.getElementById("remote-form")};
        const list = text => text.split(",").map(v => v.trim()).filter(v => v.length);
        const number = text => text.trim() === "" ? undefined : (/^\d+$/.test(text.trim()) ? Number(text.trim()) : text.trim());
        function body(kind) {
          const f = forms[kind].elements;
          const optional = name => f[name].value.trim() === "" ? undefined : f[name].value.trim();
          if (kind === "remote") {
            return {siteName: f.siteName.value.trim(), appName: f.appName.value.trim(), localSocket: f.localSocket.value.trim(),
              appSocket: optional("appSocket"), localSocketMode: optional("localSocketMode"),
              udpIdleTimeout: number(f.udpIdleTimeout.value), udpMaxFlows: number(f.udpMaxFlows.value)};
          }
          const app = {appName: f.appName.value.trim(), mode: f.mode.value, allowedSites: list(f.allowedSites.value),
            proxyProtocol: optional("proxyProtocol"), udpIdleTimeout: number(f.udpIdleTimeout.value)};
          if (f.mode.value === "range") {
            app.addressRange = list(f.addressRange.value);
            app.portRange = list(f.portRange.value);
            if (f.protocols.value !== "tcp") app.protocols = f.protocols.value.split(",");
          } else {
            app.appSocket = f.appSocket.value.trim();
          }
          return app;
        }
        function showMode() {
          const range = forms.exposed.elements.mode.value === "range";
          for (const field of forms.exposed.querySelectorAll(".field.single")) field.hidden = range;
          for (const field of forms.exposed.querySelectorAll(".field.range")) field.hidden = !range;
        }
        function clearErrors(form) {
          for (const field of form.querySelectorAll(".field")) {
            field.classList.remove("invalid");
            field.querySelector(".field-error").textContent = "";
            for (const input of field.querySelectorAll("input, select")) input.removeAttribute("aria-invalid");
          }
          form.querySelector(".form-error").textContent = "";
        }
        function showError(form, error) {
          // "portRange[1]" or "localExposedApps[0].appSocket" is shown at its field's box.
          const name = String(error.field ?? "").split(".").pop().replace(/\[\d+\]$/, "");
          const field = name ? form.querySelector(`.field[data-field="${CSS.escape(name)}"]`) : null;
          if (field && !field.hidden) {
            field.classList.add("invalid");
            // The API names the field in its message too ("appSocket: …"): not again beside it.
            const message = String(error.message ?? "");
            field.querySelector(".field-error").textContent = message.startsWith(error.field + ": ")
              ? message.slice(error.field.length + 2) : message;
            const input = field.querySelector("input, select");
            input.setAttribute("aria-invalid", "true");
            input.focus();
          } else {
            form.querySelector(".form-error").textContent = (error.message ?? "the change failed") +
              (error.code ? ` (HTTP ${error.code})` : "");
          }
        }
        function openForm(kind, key) {
          const form = forms[kind], f = form.elements;
          form.reset();
          clearErrors(form);
          const entries = key == null ? [] : kind === "remote" ? apps.remote.get(key) ?? [] : [apps.exposed.get(key)];
          const app = entries[0] ?? null;
          form.dataset.editing = app ? key : "";
          const what = kind === "exposed" ? "exposed app" : "remote app";
          form.querySelector(".form-title").textContent = app ? `Edit the ${what} ${key}` : `Add ${kind === "exposed" ? "an" : "a"} ${what}`;
          form.querySelector("button[type=submit]").textContent = app ? "Save" : "Add";
          if (app) {
            for (const [name, value] of Object.entries(app)) {
              if (!f[name] || value == null) continue;
              f[name].value = Array.isArray(value) ? value.join(name === "protocols" ? "," : ", ") : String(value);
            }
          }
          if (kind === "exposed") showMode();
          if (entries.length > 1) {
            form.querySelector(".form-error").textContent = `${key} is offered on ${entries.length} local sockets ` +
              `(${entries.map(e => e.localSocket).join(", ")}); saving puts this one entry in place of them all.`;
          }
          form.hidden = false;
          f[kind === "exposed" ? "appName" : "siteName"].focus();
        }
        async function submit(kind) {
          const form = forms[kind], editing = form.dataset.editing;
          const button = form.querySelector("button[type=submit]");
          if (button.disabled) return;  // one change at a time from a form
          button.disabled = true;
          try {
            await change(kind, form, editing);
          } finally {
            button.disabled = false;
          }
        }
        async function change(kind, form, editing) {
          clearErrors(form);
          const app = body(kind);
          const name = kind === "exposed" ? app.appName : app.siteName + "/" + app.appName;
          try {
            if (editing) {
              await send("PUT", path(kind, editing), app);
            } else {
              await send("POST", kind === "exposed" ? "/api/v1/localExposedApps" : "/api/v1/remoteApps", app);
            }
            form.hidden = true;
            notice(`${editing ? "Saved" : "Added"} the ${kind === "exposed" ? "exposed" : "remote"} app ${name}.`);
            await poll();
          } catch (error) {
            showError(form, error instanceof Error ? {message: error.message} : error);
          }
        }
        for (const kind of ["exposed", "remote"]) {
          const form = forms[kind];
          document.getElementById(kind + "-add").addEventListener("click", () => openForm(kind, null));
          form.addEventListener("submit", event => { event.preventDefault(); submit(kind); });
          form.querySelector("[data-action=cancel]").addEventListener("click", () => { form.hidden = true; });
          form.addEventListener("input", event => {
            const field = event.target.closest(".field");
            if (field && field.classList.contains("invalid")) {
              field.classList.remove("invalid");
              field.querySelector(".field-error").textContent = "";
              event.target.removeAttribute("aria-invalid");
            }
          });
          document.getElementById(kind).addEventListener("click", async event => {
            const button = event.target.closest("button[data-action]");
            if (!button) return;
            const key = button.dataset.key;
            if (button.dataset.action === "edit") return openForm(kind, key);
            // Remove asks for a second, separate click on the same button within 5 s (the second
            // click of a double click does not count).
            if (event.detail > 1) return;
            if (!armed(kind, key)) {
              removals.set(kind + " " + key, Date.now());
              button.textContent = "Confirm remove";
              button.className = "armed";
              setTimeout(poll, 5100);
              return;
            }
            removals.delete(kind + " " + key);
            try {
              await send("DELETE", path(kind, key));
              notice(`Removed the ${kind} app ${key}.`);
              if (forms[kind].dataset.editing === key) forms[kind].hidden = true;
            } catch (error) {
              notice(`Cannot remove the ${kind} app ${key}: ${error.message ?? error}`, true);
            }
            await poll();
          });
        }
        forms.exposed.elements.mode.addEventListener("change", showMode);

        // A table is drawn again only when it changed, and not while a button in it is held
        // down: a click is a press and a release on the same element.
        let pressed = null;
        document.addEventListener("pointerdown", event => { pressed = event.target.closest("#exposed, #remote"); });
        for (const kind of ["pointerup", "pointercancel"]) document.addEventListener(kind, () => { pressed = null; });
        function render(id, html) {
          const element = document.getElementById(id);
          if (element === pressed || element.dataset.html === html) return;
          element.innerHTML = html;
          element.dataset.html = html;
        }
        // One refresh at a time, in order: a change's poll runs after the one in flight (which
        // may have read the apps before the change), and the timer's never interleave renders.
        let refreshed = Promise.resolve(), waiting = 0;
        function poll() {
          if (waiting > 0) return refreshed;  // one not yet started will read the latest state
          waiting++;
          refreshed = refreshed.then(() => { waiting--; return refresh(); });
          return refreshed;
        }
        async function refresh() {
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
            apps.exposed = new Map(exposed.map(a => [a.appName, a]));
            // config.yaml may offer one remote app on several sockets: all its entries, by name.
            apps.remote = new Map();
            for (const a of remote) {
              const key = a.siteName + "/" + a.appName;
              apps.remote.set(key, [...(apps.remote.get(key) ?? []), a]);
            }
            const traffic = a => a.traffic ?? {bytesSent: 0, bytesReceived: 0, openStreams: 0, streams: 0};
            const trafficCells = (key, a) => {
              const t = traffic(a), rate = appRate(key, t, now);
              return [`${t.openStreams} / ${t.streams}`, bytes(t.bytesSent), bytes(t.bytesReceived), rate == null ? "–" : bits(rate)];
            };
            const actions = (kind, key) => `<button type="button" data-action="edit" data-kind="${kind}" data-key="${esc(key)}">Edit</button>` +
              `<button type="button" data-action="remove" data-kind="${kind}" data-key="${esc(key)}" class="${armed(kind, key) ? "armed" : "danger"}">${armed(kind, key) ? "Confirm remove" : "Remove"}</button>`;
            render("exposed", table(["app", "mode", "target", "allowed sites", "from", "streams ", "sent ", "received ", "rate ", ""],
              exposed.map(a => [esc(a.appName), esc(a.mode), `<code>${esc(a.mode === "range"
                ? "ports " + a.portRange.join(",") + " at " + a.addressRange.join(",") + (a.protocols ? " " + a.protocols.join("+") : "") : a.appSocket)}</code>` +
                (a.proxyProtocol ? ` PROXY ${esc(a.proxyProtocol)}` : ""), esc(a.allowedSites.join(", ") || "every site"), esc(a.source),
                ...trafficCells("exposed " + a.appName, a), actions("exposed", a.appName)]),
              "none", i => `data-app="${esc(exposed[i].appName)}"`));
            render("remote", table(["site", "app", "local socket", "target", "from", "streams ", "sent ", "received ", "rate ", ""],
              remote.map(a => [esc(a.siteName), esc(a.appName), `<code>${esc(a.localSocket)}</code>`,
                `<code>${esc(a.appSocket ?? "–")}</code>`, esc(a.source), ...trafficCells("remote " + a.siteName + "/" + a.appName + " " + a.localSocket, a),
                actions("remote", a.siteName + "/" + a.appName)]), "none",
              i => `data-app="${esc(remote[i].siteName + "/" + remote[i].appName)}"`));
            render("known-sites", sites.map(s => `<option value="${esc(s.siteName)}">`).join(""));
            render("known-apps", [...new Set(sites.flatMap(s => s.apps))].map(a => `<option value="${esc(a)}">`).join(""));
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
