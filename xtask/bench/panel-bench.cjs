// The panel and a minimal MQTT.js page, measured side by side in one headless Chromium against
// the same broker and the same simulated devices. `cargo xtask bench panel` starts the broker and
// the fleet and runs this with a JSON configuration as its argument; each result is printed as
// `ROW\t<name>\t<value>\t<unit>\t<how measured>`, everything else is progress.
//
// Every time is taken inside the page: performance.now() just before the click, and again in the
// MutationObserver callback that first sees the confirmed state in the DOM. CPU is the renderer
// main thread's task time (CDP Performance.getMetrics, TaskDuration) over the run.

"use strict";

const fs = require("fs");
const http = require("http");
const path = require("path");

const config = JSON.parse(process.argv[2]);
const { chromium } = require(path.join(config.modules, "playwright-core"));

const TYPES = {
  ".html": "text/html; charset=utf-8",
  ".js": "text/javascript",
  ".wasm": "application/wasm",
  ".css": "text/css",
};

function serve() {
  const server = http.createServer((req, res) => {
    const url = new URL(req.url, "http://localhost");
    let file;
    if (url.pathname === "/mqttjs-peer.html") file = config.peer_html;
    else if (url.pathname === "/mqtt.min.js") file = config.mqtt_js;
    else if (url.pathname === "/") file = path.join(config.dist, "index.html");
    else file = path.join(config.dist, path.normalize(url.pathname).replace(/^([/\\])+/, ""));
    if (!file.startsWith(config.dist) && file !== config.peer_html && file !== config.mqtt_js) {
      res.writeHead(403).end();
      return;
    }
    fs.readFile(file, (err, body) => {
      if (err) {
        res.writeHead(404).end();
        return;
      }
      res.writeHead(200, { "content-type": TYPES[path.extname(file)] || "application/octet-stream" });
      res.end(body);
    });
  });
  return new Promise((resolve) => server.listen(0, "127.0.0.1", () => resolve(server)));
}

// Installed in every page: waits for a DOM state, resolving with the time it was first seen.
const HELPERS = `
window.__waitFor = (ok, ms) => new Promise((resolve, reject) => {
  if (ok()) return resolve(performance.now());
  const timer = setTimeout(() => { mo.disconnect(); reject(new Error("timed out after " + ms + " ms")); }, ms);
  const mo = new MutationObserver(() => {
    if (ok()) { mo.disconnect(); clearTimeout(timer); resolve(performance.now()); }
  });
  mo.observe(document.documentElement, { subtree: true, attributes: true, childList: true, characterData: true });
});
addEventListener("TrunkApplicationStarted", (e) => { window.__wasm = e.detail && e.detail.wasm; });
`;

function row(name, value, unit, how) {
  console.log(["ROW", name, value, unit, how].join("\t"));
}

function quantile(xs, q) {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(q * s.length))];
}

const median = (xs) => quantile(xs, 0.5);
const fmt = (x, digits = 1) => (x === undefined || x === null || Number.isNaN(x) ? "n/a" : x.toFixed(digits));
const thousands = (n) => n.toLocaleString("en-US");

async function open(browser, url) {
  const context = await browser.newContext({ viewport: { width: 1400, height: 1000 } });
  await context.addInitScript(HELPERS);
  const page = await context.newPage();
  page.on("pageerror", (e) => console.log("    page error: " + e.message));
  const cdp = await context.newCDPSession(page);
  await cdp.send("Performance.enable");
  await page.goto(url);
  return { context, page, cdp };
}

async function taskSeconds(cdp) {
  const { metrics } = await cdp.send("Performance.getMetrics");
  return metrics.find((m) => m.name === "TaskDuration").value;
}

// Press and wait for the confirmed state, `n` times; returns each press's time in ms.
async function presses(page, n, which) {
  return page.evaluate(
    async ({ n, which }) => {
      const times = [];
      for (let i = 0; i < n; i++) {
        let target, button;
        if (which === "panel") {
          target = () => document.querySelector('[data-device="device1"]');
          button = target().querySelector('[data-action="light"]');
        } else {
          target = () => document.getElementById("device");
          button = document.getElementById("press");
        }
        const want = target().dataset.light === "on" ? "off" : "on";
        const t0 = performance.now();
        button.click();
        const t1 = await window.__waitFor(() => {
          const t = target();
          return t && t.dataset.light === want && t.dataset.pending === "false";
        }, 15000);
        times.push(t1 - t0);
        await new Promise((r) => setTimeout(r, 5));
      }
      return times;
    },
    { n, which },
  );
}

async function panelFanOut(page, group, expected) {
  await page.selectOption('select[name="group"]', group);
  await page.selectOption('select[name="command"]', "get-state");
  return page.evaluate(
    async ({ expected }) => {
      const before = document.querySelector("[data-fanout]");
      const prev = before ? before.dataset.fanout : "";
      const t0 = performance.now();
      document.querySelector('[data-action="fanout"]').click();
      let tid = "";
      const t1 = await window.__waitFor(() => {
        const f = document.querySelector("[data-fanout]");
        if (!f || f.dataset.fanout === prev || f.dataset.complete !== "true") return false;
        tid = f.dataset.fanout;
        return f.dataset.answered === String(expected);
      }, 60000);
      const tries = await window.__waitFor(() => !!document.querySelector('tr[data-tid="' + tid + '"]'), 5000)
        .then(() => Number(document.querySelector('tr[data-tid="' + tid + '"]').cells[4].textContent));
      const notices = document.querySelectorAll(".notices li").length;
      return { ms: t1 - t0, tries, notices };
    },
    { expected },
  );
}

async function peerFanOut(page, group, expected) {
  return page.evaluate(
    async ({ group, expected }) => {
      const t0 = performance.now();
      const tid = window.fanOut(group, expected);
      const t1 = await window.__waitFor(() => {
        const f = document.getElementById("fanout");
        return f.dataset.tid === tid && f.dataset.complete === "true";
      }, 60000);
      return { ms: t1 - t0 };
    },
    { group, expected },
  );
}

async function heap(page, cdp) {
  await cdp.send("HeapProfiler.collectGarbage");
  const { usedSize } = await cdp.send("Runtime.getHeapUsage");
  const wasm = await page.evaluate(() =>
    window.__wasm && window.__wasm.memory ? window.__wasm.memory.buffer.byteLength : null,
  );
  return { js: usedSize, wasm };
}

async function main() {
  const server = await serve();
  const base = "http://127.0.0.1:" + server.address().port;
  const broker = encodeURIComponent(config.ws);
  const browser = await chromium.launch({
    executablePath: config.chromium,
    args: [
      "--no-sandbox",
      "--disable-gpu",
      "--disable-dev-shm-usage",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
      "--no-first-run",
      "--enable-precise-memory-info",
    ],
  });
  try {
    const fleet = config.discovery;
    // Discovery: page load to every retained status counted in the DOM.
    console.log("    discovery of " + thousands(fleet) + " devices");
    const peer = await open(browser, base + "/mqttjs-peer.html?broker=" + broker);
    const peerFound = await peer.page.evaluate(
      (n) => window.__waitFor(() => document.getElementById("status").dataset.count === String(n), 120000),
      fleet,
    );
    await peer.page.waitForFunction(() => window.peerReady === true);
    const panel = await open(browser, base + "/?broker=" + broker);
    const panelFound = await panel.page.evaluate(
      (n) => window.__waitFor(() => {
        const c = document.querySelector("[data-count]");
        return c && c.dataset.count === String(n);
      }, 120000),
      fleet,
    );
    const how = "page load to the count of retained statuses in the DOM, " + thousands(fleet) + " devices";
    row("discovery of " + thousands(fleet) + " devices, panel", fmt(panelFound, 0), "ms", how);
    row("discovery of " + thousands(fleet) + " devices, MQTT.js page", fmt(peerFound, 0), "ms", how);

    // Press -> confirmed, the peer first, then the panel; same device, same fleet, idle.
    const n = config.presses;
    console.log("    " + thousands(n) + " presses each");
    const results = {};
    for (const [name, p] of [["MQTT.js page", peer], ["panel", panel]]) {
      await p.page.bringToFront();
      const cpu0 = await taskSeconds(p.cdp);
      const times = await presses(p.page, n, name === "panel" ? "panel" : "peer");
      const cpu = ((await taskSeconds(p.cdp)) - cpu0) * 1000 / n;
      results[name] = { times, cpu };
    }
    const pressHow = "click to the confirmed state in the DOM, device1, " + thousands(n) + " presses";
    for (const name of ["panel", "MQTT.js page"]) {
      const r = results[name];
      row("press -> confirmed p50, " + name, fmt(median(r.times), 2), "ms", pressHow);
      row("press -> confirmed p99, " + name, fmt(quantile(r.times, 0.99), 2), "ms", pressHow);
      row("CPU per press, " + name, fmt(r.cpu, 2), "ms", "renderer main-thread task time (CDP TaskDuration) / presses");
    }
    const p = results["panel"], m = results["MQTT.js page"];
    row("press p50, panel / MQTT.js page", fmt(median(p.times) / median(m.times), 2), "x", "target: at most 1.00");
    row("CPU per press, panel / MQTT.js page", fmt(p.cpu / m.cpu, 2), "x", "target: at most 2.00");
    const k = Math.min(100, Math.floor(n / 2));
    for (const [name, r] of [["panel", p], ["MQTT.js page", m]]) {
      const first = median(r.times.slice(0, k)), last = median(r.times.slice(-k));
      row(
        "press p50, last " + k + " / first " + k + ", " + name,
        fmt(last / first, 2),
        "x",
        fmt(first, 2) + " ms -> " + fmt(last, 2) + " ms; target (panel): at most 1.10",
      );
    }

    // Fan-outs, alternating the two pages run by run.
    for (const f of config.fanouts) {
      console.log("    fan-out get_state to " + thousands(f.devices) + " devices, " + f.runs + " runs each");
      const panelRuns = [], peerRuns = [];
      for (let i = 0; i < f.runs; i++) {
        await panel.page.bringToFront();
        panelRuns.push(await panelFanOut(panel.page, f.group, f.devices));
        await new Promise((r) => setTimeout(r, 1000));
        await peer.page.bringToFront();
        peerRuns.push(await peerFanOut(peer.page, f.group, f.devices));
        await new Promise((r) => setTimeout(r, 1000));
      }
      const d = thousands(f.devices);
      const pm = median(panelRuns.map((r) => r.ms)), mm = median(peerRuns.map((r) => r.ms));
      const tries = Math.max(...panelRuns.map((r) => r.tries));
      const fanHow = "click to every answer drawn, median of " + f.runs + " runs";
      row("fan-out to " + d + ", panel", fmt(pm, 0), "ms", fanHow + "; runs: " + panelRuns.map((r) => fmt(r.ms, 0)).join(", "));
      row("fan-out to " + d + ", MQTT.js page", fmt(mm, 0), "ms", fanHow + "; runs: " + peerRuns.map((r) => fmt(r.ms, 0)).join(", "));
      row("fan-out to " + d + ", panel / MQTT.js page", fmt(pm / mm, 2), "x", "target: at most 1.00");
      row(
        "fan-out to " + d + ", panel's transmissions",
        String(tries),
        "tries",
        "most tries of the group command in the history over the runs; 1 = no retransmission while answers streamed in",
      );
    }

    // Memory of a panel left open: fan-out after fan-out to the same group.
    const h = config.heap;
    console.log("    " + h.fanouts + " fan-outs to " + thousands(h.devices) + " devices, heap read along the way");
    await panel.page.bringToFront();
    const marks = [];
    for (let i = 1; i <= h.fanouts; i++) {
      await panelFanOut(panel.page, h.group, h.devices);
      if (h.marks.includes(i)) marks.push({ after: i, ...(await heap(panel.page, panel.cdp)) });
    }
    for (const mk of marks) {
      row(
        "panel JS heap after " + mk.after + " fan-outs to " + thousands(h.devices),
        fmt(mk.js / 1e6, 2),
        "MB",
        "CDP Runtime.getHeapUsage after HeapProfiler.collectGarbage",
      );
    }
    for (const mk of marks) {
      row(
        "panel wasm memory after " + mk.after + " fan-outs to " + thousands(h.devices),
        mk.wasm === null ? "n/a" : fmt(mk.wasm / 1e6, 2),
        "MB",
        "the wasm instance's linear memory (it grows, never shrinks: level = flat)",
      );
    }
    await peer.context.close();
    await panel.context.close();
  } finally {
    await browser.close();
    server.close();
  }
}

main().catch((e) => {
  console.error("panel bench failed: " + (e && e.stack ? e.stack : e));
  process.exit(1);
});
