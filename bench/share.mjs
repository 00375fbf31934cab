#!/usr/bin/env node
// bench/share.mjs - the browser half of bench/share: opens a share link in headless Chromium
// (Debian's, through playwright-core; tests/web/browser.mjs) RUNS times, each in a new browser
// with a new profile (cold HTTP cache, no open connection), and reports per run, from the
// navigation start of the viewer page (the click on the link):
//   first image  - performance mark "radshare:first-image" set by the viewer right after it drew
//                  the first server rendering on the canvas (the canvas is checked non-blank),
//   series ready - mark "radshare:series-ready": every image of the opened series decoded
//                  (ImageBitmap) in the viewer's cache at the window and viewport scrolling
//                  shows, so any scroll position draws with no request (checked: the bench then
//                  shows each of the N images and counts requests and exact draws).
// (Image requests are the viewer's at quality=90; the strip's thumbnails, quality=85, are not counted.)
// Usage: node bench/share.mjs URL [--runs N] [--width W --height H --dpr D] [--tsv FILE]
// Prints one line per run, then medians/minima and the verdicts. Exit 1 only if a run failed.
import { launch, newPage } from "../tests/web/browser.mjs";
import { appendFileSync, writeFileSync } from "node:fs";

const args = process.argv.slice(2);
const opt = (name, d) => { const i = args.indexOf(name); return i >= 0 ? args[i + 1] : d; };
const url = args.find((a, i) => !a.startsWith("--") && !(i && args[i - 1].startsWith("--")));
if (!url) { console.error("usage: share.mjs URL [--runs N] [--width W] [--height H] [--dpr D] [--tsv FILE]"); process.exit(2); }
const RUNS = +opt("--runs", 7), W = +opt("--width", 1440), H = +opt("--height", 900), DPR = +opt("--dpr", 1);
const TSV = opt("--tsv");
const TARGET_FIRST = 300, TARGET_READY = 3000;

// Everything the page knows, read once the series is ready.
const collect = () => {
  const mark = (n) => { const e = performance.getEntriesByName(n)[0]; return e ? e.startTime : null; };
  const res = performance.getEntriesByType("resource");
  const nav = performance.getEntriesByType("navigation")[0];
  const img = res.filter((r) => r.name.includes("/rendered") && r.name.includes("quality=90"));
  const sj = res.find((r) => r.name.endsWith("/study.json"));
  const v = window.radshareViewer.state;
  const c = document.getElementById("canvas");
  const d = c.getContext("2d").getImageData(0, 0, c.width, c.height).data;
  let lit = 0;
  const levels = new Set();
  for (let i = 0; i < d.length; i += 16) { if (d[i] > 8) lit++; levels.add(d[i]); }
  return {
    timeOrigin: performance.timeOrigin, first: mark("radshare:first-image"), ready: mark("radshare:series-ready"),
    html: nav ? nav.responseEnd : null, dcl: nav ? nav.domContentLoadedEventEnd : null,
    studyJson: sj ? sj.responseEnd : null, firstImgReq: img.length ? Math.min(...img.map((r) => r.startTime)) : null,
    firstImgResp: img.length ? Math.min(...img.map((r) => r.responseEnd)) : null,
    images: img.length, bytes: img.reduce((a, r) => a + (r.encodedBodySize || 0), 0),
    total: v.total, loaded: v.loaded, drawn: v.drawn, lit: lit / (d.length / 16), levels: levels.size,
    protocol: nav ? nav.nextHopProtocol : "",
  };
};

// Show every image of the series once; each must draw exactly from the cache with no request.
const scrollAll = () => {
  const V = window.radshareViewer;
  const before = performance.getEntriesByType("resource").filter((r) => r.name.includes("/rendered") && r.name.includes("quality=90")).length;
  let exact = 0;
  const n = V.state.count, t0 = performance.now();
  for (let i = 0; i < n; i++) { V.setIndex(i); if (V.state.drawn.exact && V.state.index === i) exact++; }
  const ms = performance.now() - t0;
  V.setIndex(Math.floor((n - 1) / 2));
  return { n, exact, ms, before };
};
const requestsNow = () => performance.getEntriesByType("resource").filter((r) => r.name.includes("/rendered") && r.name.includes("quality=90")).length;

async function run(k) {
  const { context, close } = await launch();
  try {
    const { page } = await newPage(context, { width: W, height: H, dpr: DPR });
    const errors = [];
    page.on("pageerror", (e) => errors.push(e.message));
    await page.addInitScript(() => performance.setResourceTimingBufferSize(100000));
    await page.setContent(`<a id="go" href="${url}">the link in the report</a>`);
    const clickAt = Date.now();
    await page.click("#go", { noWaitAfter: true });
    await page.waitForURL((u) => u.pathname.startsWith("/s/"), { waitUntil: "commit", timeout: 20000 });
    // one evaluate waiting on a PerformanceObserver: no polling and none of playwright's injected
    // script (waitForFunction's) in the page's main thread while it is being timed
    await page.evaluate(() => new Promise((resolve, reject) => {
      const done = () => performance.getEntriesByName("radshare:series-ready").length > 0;
      if (done()) return resolve();
      new PerformanceObserver(() => done() && resolve()).observe({ type: "mark", buffered: true });
      const t = setInterval(() => { if (document.body && document.body.dataset.state === "error") { clearInterval(t); reject(new Error("viewer error page")); } }, 500);
      setTimeout(() => reject(new Error("no series-ready mark within 60 s")), 60000);
    }));
    const r = await page.evaluate(collect);
    const s = await page.evaluate(scrollAll);
    await page.waitForTimeout(300);
    s.after = await page.evaluate(requestsNow);
    r.fromClick = r.first != null ? r.timeOrigin + r.first - clickAt : null;
    r.scroll = s;
    r.errors = errors;
    r.ok = r.first != null && r.ready != null && r.lit > 0.02 && r.levels >= 16 && s.exact === s.n && s.after === s.before && !errors.length;
    return r;
  } finally {
    await close();
  }
}

const f = (x) => (x == null ? "-" : x.toFixed(0).padStart(6));
const median = (a) => { const b = [...a].sort((x, y) => x - y); const m = b.length >> 1; return b.length % 2 ? b[m] : (b[m - 1] + b[m]) / 2; };
console.log(`bench/share: ${url.replace(/\/s\/.*/, "/s/…")}  ${W}x${H}@${DPR}, ${RUNS} runs, a new browser and profile each`);
console.log("run   html  study.json  1st req  1st resp  FIRST IMAGE  (from click)  SERIES READY  images   MB   scroll check");
if (TSV) writeFileSync(TSV, "run\thtml\tstudy_json\tfirst_req\tfirst_resp\tfirst_image\tfirst_from_click\tseries_ready\timages\tbytes\tok\n");
const rows = [];
let bad = 0;
for (let k = 1; k <= RUNS; k++) {
  let r;
  try { r = await run(k); } catch (e) { r = { ok: false, error: e.message.split("\n")[0] }; }
  if (!r.ok) bad++;
  if (r.error) { console.log(`${String(k).padStart(3)}   FAILED: ${r.error}`); continue; }
  rows.push(r);
  const sc = `${r.scroll.exact}/${r.scroll.n} from cache, ${r.scroll.after - r.scroll.before} requests` + (r.ok ? "" : `  FAILED (lit ${(r.lit * 100).toFixed(0)}%, ${r.levels} levels, ${r.errors.join("; ")})`);
  console.log(`${String(k).padStart(3)} ${f(r.html)}  ${f(r.studyJson)}     ${f(r.firstImgReq)}  ${f(r.firstImgResp)}      ${f(r.first)}        ${f(r.fromClick)}        ${f(r.ready)}     ${String(r.images).padStart(4)}  ${(r.bytes / 1e6).toFixed(1).padStart(5)}   ${sc}`);
  if (TSV) appendFileSync(TSV, [k, r.html, r.studyJson, r.firstImgReq, r.firstImgResp, r.first, r.fromClick, r.ready, r.images, r.bytes, r.ok].map((x) => (typeof x === "number" ? x.toFixed(1) : x)).join("\t") + "\n");
}
const good = rows.filter((r) => r.first != null && r.ready != null);
if (!good.length) { console.log("no run measured anything"); process.exit(1); }
const col = (k) => good.map((r) => r[k]).filter((x) => x != null);
const line = (label, k) => console.log(`${label.padEnd(34)} median ${median(col(k)).toFixed(0).padStart(5)} ms   min ${Math.min(...col(k)).toFixed(0).padStart(5)} ms`);
console.log(`(ms from navigation start; ${good[0].images} image requests, ${(good[0].bytes / 1e6).toFixed(1)} MB of images, HTTP ${good[0].protocol})`);
line("page (HTML) received", "html");
line("study.json received", "studyJson");
line("first image received", "firstImgResp");
line("first image drawn", "first");
line("first image drawn, from the click", "fromClick");
line("series ready (all images decoded)", "ready");
const mf = median(col("first")), mr = median(col("ready"));
console.log(`target first image < ${TARGET_FIRST} ms: ${mf < TARGET_FIRST ? "MET" : "NOT MET"} (median ${mf.toFixed(0)} ms)`);
console.log(`series ready < ${TARGET_READY / 1000} s: ${mr < TARGET_READY ? "MET" : "NOT MET"} (median ${(mr / 1000).toFixed(2)} s)`);
if (bad) console.log(`${bad} run(s) FAILED a check (see above)`);
process.exit(bad ? 1 : 0);
