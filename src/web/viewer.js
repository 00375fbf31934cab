// viewer.js - the share-link viewer: loads /s/{token}/study.json, shows the report beside the
// images, and draws the server-rendered frames (…/frames/{n}/rendered) on a canvas with stack
// scrolling, window/level, zoom and pan. Pixels never reach the browser as DICOM: every window
// change is a new server rendering (debounced; previewed meanwhile with a lookup table on the
// 8-bit image shown). The whole series is prefetched, 6 requests at a time, into a cache of
// ImageBitmaps keyed by instance, frame, window and viewport, so scrolling draws from memory.
// All study data goes into the page with textContent only.

import { t, lang, fmtDate, fmtIso, fmtName, fmtSex, age } from "/viewer/i18n.js";
import { PRESETS, presetsFor, wlFromDrag, lutFor, viewportSize, cacheKey, stepFromWheel, tokenFromPath, multipartBoundary, multipartParts } from "/viewer/stack.js";

const $ = (id) => document.getElementById(id);
const T0 = performance.now();
const MAX_PARALLEL = 6;
const BATCH = 10;             // images per prefetch request (a request costs the browser more than a decode)
const CACHE_BYTES = (navigator.deviceMemory && navigator.deviceMemory <= 4) || matchMedia("(pointer: coarse)").matches ? 256e6 : 768e6;

const S = {
  token: tokenFromPath(location.pathname),
  base: "",
  study: null,
  series: [],
  cur: null,
  tool: "scroll",
  info: true,
  phase: "loading",
  firstImageDrawnAt: null,
  seriesReadyAt: {},
  draws: 0,
  drawn: null,
  errors: 0,
};
S.base = S.token ? `/s/${encodeURIComponent(S.token)}` : "";

// ------------------------------------------------------------------ image cache and loader

const cache = new Map();      // key -> {bm, w, h, bytes}; Map order is the LRU order
const inflight = new Map();   // key -> Promise
let cacheBytes = 0;
const queue = { items: [], active: 0 };

function cacheGet(key) {
  const e = cache.get(key);
  if (e) { cache.delete(key); cache.set(key, e); }
  return e;
}

function cachePut(key, e) {
  cache.set(key, e);
  cacheBytes += e.bytes;
  for (const [k, old] of cache) {
    if (cacheBytes <= CACHE_BYTES) break;
    if (k === key) continue;
    cache.delete(k);
    cacheBytes -= old.bytes;
    old.bm.close && old.bm.close();
  }
}

// The cache key of item i of series s at the series' current window and the stage's size
// (cheap: loadedCount runs it for every image after every load).
function keyOf(s, i, full = false) {
  const it = s.items[i];
  const dev = stageDevice();
  const vp = full ? Math.max(it.cols, it.rows) : viewportSize(it.cols, it.rows, dev.w, dev.h);
  const win = s.win ? `${round(s.win.c)},${round(s.win.w)}` : "";
  return { key: cacheKey(it.sop, it.frame, win, vp), vp, win };
}

// The request for item i of series s at the series' current window and the stage's size.
function request(s, i, full = false) {
  const it = s.items[i];
  const { key, vp, win } = keyOf(s, i, full);
  const st = encodeURIComponent(S.study.study.uid), se = encodeURIComponent(s.uid), sop = encodeURIComponent(it.sop);
  let url = `${S.base}/studies/${st}/series/${se}/instances/${sop}/frames/${it.frame}/rendered?viewport=${vp},${vp}&quality=90`;
  if (win) url += `&window=${win}`;
  return { key, url, series: s, index: i, vp, winq: win, win: s.win ? { ...s.win } : null };
}

// A decoded image (from a Blob, or already an ImageBitmap) into the cache.
async function decoded(r, src) {
  const bm = src instanceof ImageBitmap ? src : await createImageBitmap(src);
  const e = { bm, w: bm.width, h: bm.height, bytes: bm.width * bm.height * 4, win: r.win };
  cachePut(r.key, e);
  return e;
}

function checked(res) {
  if (res.status === 410) { gone(); throw new Error("gone"); }
  if (!res.ok) throw new Error(`HTTP ${res.status}`);
  return res;
}

// The image the page preloaded (Link header; see start()): fetched and decoded while study.json is
// still on its way, then taken by the first load() of the same URL.
const early = new Map();   // url -> Promise<ImageBitmap>
for (const e of performance.getEntriesByType("resource"))
  if (e.initiatorType === "link" && e.name.includes("/rendered?")) {
    const p = fetch(e.name, { credentials: "same-origin" }).then(async (res) => createImageBitmap(await checked(res).blob()));
    p.catch(() => {});   // a failure is the first load()'s to report, if it asks this image
    early.set(e.name, p);
  }

function load(r) {
  if (cache.has(r.key)) return Promise.resolve(cache.get(r.key));
  if (inflight.has(r.key)) return inflight.get(r.key);
  queue.active++;
  const pre = early.get(new URL(r.url, location.href).href);
  early.clear();
  const p = (pre || fetch(r.url, { credentials: "same-origin" }).then((res) => checked(res).blob()))
    .then((src) => decoded(r, src))
    .finally(() => { queue.active--; inflight.delete(r.key); pump(); onLoaded(r); });
  inflight.set(r.key, p);
  return p;
}

// Several images of one series (same window and viewport) in one request: the series'
// /rendered?instances=SOP:N,... answers multipart/related, one part per image in order. Each
// image goes into the cache as soon as it is decoded. If the batch fails (other than 410),
// its images are queued again one by one.
function loadBatch(rs) {
  const r0 = rs[0], s = r0.series;
  const st = encodeURIComponent(S.study.study.uid), se = encodeURIComponent(s.uid);
  const list = rs.map((r) => `${encodeURIComponent(s.items[r.index].sop)}:${s.items[r.index].frame}`).join(",");
  let url = `${S.base}/studies/${st}/series/${se}/rendered?instances=${list}&viewport=${r0.vp},${r0.vp}&quality=90`;
  if (r0.winq) url += `&window=${r0.winq}`;
  queue.active++;
  const settle = new Map(rs.map((r) => [r.key, null]));
  const p = fetch(url, { credentials: "same-origin" })
    .then(async (res) => {
      checked(res);
      const parts = multipartParts(new Uint8Array(await res.arrayBuffer()), multipartBoundary(res.headers.get("content-type")));
      if (parts.length !== rs.length) throw new Error("bad batch");
      await Promise.all(parts.map(async (part, k) => {
        settle.set(rs[k].key, await decoded(rs[k], new Blob([part.body], { type: part.type })));
        inflight.delete(rs[k].key);
        onLoaded(rs[k]);
      }));
    })
    .catch((err) => {
      if (err.message === "gone") throw err;
      queue.items.unshift(...rs.filter((r) => !cache.has(r.key)).map((r) => ({ ...r, single: true })));
    })
    .finally(() => { queue.active--; rs.forEach((r) => inflight.delete(r.key)); pump(); progress(); });
  rs.forEach((r) => inflight.set(r.key, p.then(() => settle.get(r.key) || load(r))));
  return p;
}

function pump() {
  while (queue.active < MAX_PARALLEL && queue.items.length) {
    const r = queue.items.shift();
    if (cache.has(r.key) || inflight.has(r.key)) continue;
    const group = [r];
    while (!r.single && group.length < BATCH && queue.items.length) {
      const q = queue.items[0];
      if (q.single || q.series !== r.series || q.vp !== r.vp || q.winq !== r.winq) break;
      queue.items.shift();
      if (!cache.has(q.key) && !inflight.has(q.key)) group.push(q);
    }
    (group.length > 1 ? loadBatch(group) : load(r)).catch(() => { S.errors++; });
  }
}

// Queue the whole current series, nearest images first, replacing what was queued before.
function prefetch() {
  const s = S.cur;
  if (!s) return;
  const order = [];
  for (let d = 0; d < s.items.length; d++) {
    if (s.idx + d < s.items.length) order.push(s.idx + d);
    if (d && s.idx - d >= 0) order.push(s.idx - d);
  }
  // no more than the cache can hold: past that, each far image would evict a near one
  const it = s.items[s.idx], vp = keyOf(s, s.idx).vp;
  const fits = Math.max(1, Math.floor((0.9 * CACHE_BYTES) / (4 * vp * vp * Math.min(it.cols, it.rows) / Math.max(it.cols, it.rows))));
  s.partial = fits < order.length;   // then the window of prefetched images follows the scrolling
  queue.items = order.slice(0, fits).map((i) => request(s, i)).filter((r) => !cache.has(r.key));
  pump();
  progress();
}

function loadedCount(s) {
  let n = 0;
  for (let i = 0; i < s.items.length; i++) if (cache.has(keyOf(s, i).key)) n++;
  return n;
}

function onLoaded(r) {
  if (r.series !== S.cur) return;
  if (r.index === S.cur.idx) draw();
  progress();
}

let progressTimer = 0, progressFrame = 0;
function progress() {
  const s = S.cur;
  if (!s) return;
  const n = loadedCount(s), total = s.items.length;
  s.loaded = n;
  if (n >= total && !S.seriesReadyAt[s.uid]) {   // "ready": every image of the series decoded in the cache (docs/viewer.md)
    S.seriesReadyAt[s.uid] = performance.now();
    performance.mark("radshare:series-ready", { detail: { series: s.uid, images: total } });
  }
  // the pill is redrawn once per frame at most, not once per image (300 repaints over the image)
  if (!progressFrame) progressFrame = requestAnimationFrame(progressPaint);
}

function progressPaint() {
  progressFrame = 0;
  const s = S.cur, n = s.loaded, total = s.items.length;
  const el = $("progress");
  $("progress-bar").style.width = `${(100 * n) / total}%`;
  $("progress-text").textContent = t("loaded", { n, total });
  if (n >= total || (s.partial && !queue.items.length && !queue.active)) {
    clearTimeout(progressTimer);
    progressTimer = setTimeout(() => { el.hidden = true; }, 500);
  } else {
    clearTimeout(progressTimer);
    el.hidden = false;
  }
}

// ------------------------------------------------------------------ drawing

const canvas = $("canvas");
const ctx = canvas.getContext("2d");
const preview = document.createElement("canvas");
let previewSrc = null;     // {key, data: ImageData} of the 8-bit image a W/L preview is computed from

// The stage's size, read once per layout change (request() runs for every image of a series).
let devCache = null;
function stageDevice() {
  return devCache || (devCache = measureStage());
}

function measureStage() {
  const r = $("stage").getBoundingClientRect();
  const dpr = window.devicePixelRatio || 1;
  return { w: Math.max(1, Math.round(r.width * dpr)), h: Math.max(1, Math.round(r.height * dpr)), dpr, cssW: r.width, cssH: r.height };
}

function resizeCanvas() {
  const d = stageDevice();
  if (canvas.width !== d.w || canvas.height !== d.h) { canvas.width = d.w; canvas.height = d.h; }
  return d;
}

function fitScale(it, d) {
  return Math.min(d.w / it.cols, d.h / it.rows);
}

// The best image we have for item i: the exact rendering, else any rendering of the same frame.
function bestEntry(s, i) {
  const r = request(s, i);
  const exact = cacheGet(r.key);
  if (exact) return { e: exact, exact: true, r };
  const it = s.items[i];
  const prefix = `${it.sop}/${it.frame}|`;
  let other = null;
  for (const [k, e] of cache) if (k.startsWith(prefix)) other = e;
  return { e: other, exact: false, r };
}

let spinnerTimer = 0;
function draw() {
  const s = S.cur;
  if (!s) return;
  const d = resizeCanvas();
  const it = s.items[s.idx];
  let { e, exact, r } = bestEntry(s, s.idx);
  if (s.zoom * fitScale(it, d) > 1.05 && Math.max(it.cols, it.rows) > viewportSize(it.cols, it.rows, d.w, d.h)) {
    const full = request(s, s.idx, true);   // zoomed past the fitted rendering: ask for native size
    const fe = cacheGet(full.key);
    if (fe) { e = fe; exact = true; } else load(full).catch(() => {});
  }
  if (!exact) {
    load(r).catch((err) => imageFailed(r, err));
    clearTimeout(spinnerTimer);
    spinnerTimer = setTimeout(() => { $("spinner").hidden = exact; }, 150);
  } else {
    clearTimeout(spinnerTimer);
    $("spinner").hidden = true;
    stageMsg("");
  }
  ctx.setTransform(1, 0, 0, 1, 0, 0);
  ctx.filter = "none";
  ctx.fillStyle = "#000";
  ctx.fillRect(0, 0, d.w, d.h);
  if (!e) {
    S.drawn = { sop: it.sop, frame: it.frame, w: 0, h: 0, exact: false, win: s.win ? { ...s.win } : null, at: performance.now() };
    overlay();
    return;
  }
  let src = e.bm;
  const want = s.win, have = e.win;
  if (!exact && want && (!have || have.c !== want.c || have.w !== want.w)) {
    const base = have || it.fileWin;
    if (base) src = previewImage(e, base, want);
  }
  const scale = fitScale(it, d) * s.zoom;
  ctx.translate(d.w / 2 + s.panX * d.dpr, d.h / 2 + s.panY * d.dpr);
  ctx.scale(scale, scale);
  ctx.imageSmoothingEnabled = true;
  ctx.imageSmoothingQuality = "high";
  if (s.invert) ctx.filter = "invert(1)";
  ctx.drawImage(src, -it.cols / 2, -it.rows / 2, it.cols, it.rows);
  S.draws++;
  S.drawn = { sop: it.sop, frame: it.frame, w: e.w, h: e.h, exact, win: want ? { ...want } : null, at: performance.now() };
  if (exact && S.firstImageDrawnAt === null) {
    S.firstImageDrawnAt = performance.now();
    performance.mark("radshare:first-image", { detail: { sop: it.sop, frame: it.frame, w: e.w, h: e.h } });
    setPhase("ready");
    loadThumbs();
  }
  overlay();
}

// A W/L preview from the 8-bit rendering `e` made with window `from`: exact inside the old
// window, clipped outside; the server's rendering replaces it a moment later.
function previewImage(e, from, to) {
  if (!previewSrc || previewSrc.e !== e) {
    preview.width = e.w; preview.height = e.h;
    const pc = preview.getContext("2d", { willReadFrequently: true });
    pc.drawImage(e.bm, 0, 0);
    previewSrc = { e, data: pc.getImageData(0, 0, e.w, e.h) };
  }
  const lut = lutFor(from, to);
  const src = previewSrc.data.data;
  const out = new ImageData(e.w, e.h);
  const o = out.data;
  for (let p = 0; p < src.length; p += 4) {
    o[p] = lut[src[p]]; o[p + 1] = lut[src[p + 1]]; o[p + 2] = lut[src[p + 2]]; o[p + 3] = 255;
  }
  preview.getContext("2d").putImageData(out, 0, 0);
  return preview;
}

// The image on screen could not be had: say so politely; a network failure is retried a few
// seconds later (and at once when the browser says it is back online), an HTTP error is not.
let retryTimer = 0;
function imageFailed(r, err) {
  S.errors++;
  if (r.series !== S.cur || r.index !== S.cur.idx || err.message === "gone") return;
  clearTimeout(spinnerTimer);
  $("spinner").hidden = true;
  const network = err instanceof TypeError;
  stageMsg(network ? t("errNetwork") : t("imgError"));
  clearTimeout(retryTimer);
  if (network) retryTimer = setTimeout(() => { if (S.cur) { draw(); prefetch(); } }, 4000);
}

function stageMsg(text) {
  const el = $("stage-msg");
  el.textContent = text;
  el.hidden = !text;
}

function round(v) { return Math.round(v); }
function effWin(s) {
  return s.win || s.items[s.idx].fileWin;
}

function overlay() {
  const s = S.cur, st = S.study;
  const it = s.items[s.idx];
  const p = st.patient || {}, sd = st.study || {};
  lines($("ov-tl"), [fmtName(p.name, true), p.id, [fmtDate(p.birth_date), age(p.birth_date, sd.date), fmtSex(p.sex)].filter(Boolean).join("  ")]);
  lines($("ov-tr"), [sd.description, fmtDate(sd.date, sd.time), sd.accession]);
  const loc = it.slice_location;
  lines($("ov-bl"), [`${s.number != null ? s.number + " · " : ""}${s.description || s.modality}`,
    t("imageOf", { n: s.idx + 1, total: s.items.length }) + (it.frames > 1 ? ` (${it.frame}/${it.frames})` : ""),
    loc != null && isFinite(loc) ? t("slice", { v: Number(loc).toFixed(1) }) : ""]);
  const w = effWin(s);
  const d = stageDevice();
  lines($("ov-br"), [w ? t("windowLabel", { w: round(w.w), c: round(w.c) }) : "",
    t("zoomLabel", { z: Math.round(fitScale(it, d) * s.zoom * 100) }), `${it.cols} × ${it.rows}`]);
  const slider = $("stack");
  slider.max = String(s.items.length - 1);
  slider.value = String(s.idx);
  slider.setAttribute("aria-valuetext", t("imageOf", { n: s.idx + 1, total: s.items.length }));
  document.body.classList.toggle("no-info", !S.info);
}

function lines(el, arr) {
  el.replaceChildren(...arr.filter(Boolean).map((x) => { const d = document.createElement("div"); d.textContent = x; return d; }));
}

// ------------------------------------------------------------------ state changes

function setIndex(i) {
  const s = S.cur;
  if (!s) return;
  const n = Math.max(0, Math.min(s.items.length - 1, Math.round(i)));
  if (n === s.idx) return;
  s.idx = n;
  draw();
  if (s.partial) { clearTimeout(refocusTimer); refocusTimer = setTimeout(() => { if (S.cur === s) prefetch(); }, 250); }
}
let refocusTimer = 0;

let wlTimer = 0, wlPrefetchTimer = 0;
function setWindow(c, w, presetId = "custom") {
  const s = S.cur;
  s.win = w == null ? null : { c: Math.round(c), w: Math.max(1, Math.round(w)) };
  s.preset = presetId;
  syncPreset();
  draw();                                  // preview now
  clearTimeout(wlTimer);
  clearTimeout(wlPrefetchTimer);
  wlTimer = setTimeout(() => { if (S.cur === s) load(request(s, s.idx)).catch(() => {}); }, 120);
  wlPrefetchTimer = setTimeout(() => { if (S.cur === s) prefetch(); }, 450);
}

function setZoom(z, cx = 0, cy = 0) {
  const s = S.cur;
  const nz = Math.max(0.1, Math.min(32, z));
  s.panX = cx - ((cx - s.panX) * nz) / s.zoom;
  s.panY = cy - ((cy - s.panY) * nz) / s.zoom;
  s.zoom = nz;
  draw();
}

function fit() { const s = S.cur; s.zoom = 1; s.panX = s.panY = 0; draw(); }
function actual() {
  const s = S.cur, it = s.items[s.idx];
  s.zoom = 1 / fitScale(it, stageDevice());
  s.panX = s.panY = 0;
  draw();
}
function reset() {
  const s = S.cur;
  s.invert = false;
  $("invert").setAttribute("aria-pressed", "false");
  s.zoom = 1; s.panX = s.panY = 0;
  setWindow(null, null, "default");
}

function selectSeries(k) {
  const s = S.series[k];
  if (!s || s === S.cur) return;
  S.cur = s;
  document.querySelectorAll("#series-list button").forEach((b, j) => {
    b.setAttribute("aria-pressed", String(j === k));
    b.classList.toggle("active", j === k);
  });
  const b = document.querySelector(`#series-list li:nth-child(${k + 1}) button`);
  b && b.scrollIntoView({ block: "nearest", inline: "nearest" });
  $("invert").setAttribute("aria-pressed", String(!!s.invert));
  fillPresets();
  draw();
  // the image on screen first, alone on the server and the network; then the rest of the series
  const first = inflight.get(request(s, s.idx).key);
  if (first) first.catch(() => {}).finally(() => { if (S.cur === s) prefetch(); });
  else prefetch();
}

function setTool(tool) {
  S.tool = tool;
  document.querySelectorAll("#tools .tool").forEach((b) => {
    const on = b.dataset.tool === tool;
    b.setAttribute("aria-checked", String(on));
    b.classList.toggle("active", on);
  });
  $("stage").dataset.tool = tool;
}

function fillPresets() {
  const s = S.cur;
  const sel = $("preset");
  const opts = presetsFor(s.modality).map((p) => {
    const o = document.createElement("option");
    o.value = p.id;
    o.textContent = p.c == null ? t(p.label) : `${t(p.label)}  (${p.w}/${p.c})`;
    return o;
  });
  const custom = document.createElement("option");
  custom.value = "custom"; custom.textContent = t("custom"); custom.hidden = true;
  sel.replaceChildren(...opts, custom);
  syncPreset();
}

function syncPreset() {
  $("preset").value = S.cur.preset || "default";
}

function applyPreset(id) {
  const s = S.cur;
  const p = PRESETS.find((x) => x.id === id);
  if (!p) return;
  if (p.id === "default") return setWindow(null, null, "default");
  if (p.id === "auto") return autoWindow();
  setWindow(p.c, p.w, p.id);
}

// Auto: the 1st-99th percentile of the body (non-background) pixels of the image on screen,
// mapped back through the window it was rendered with.
function autoWindow() {
  const s = S.cur, it = s.items[s.idx];
  const { e } = bestEntry(s, s.idx);
  const from = (e && e.win) || it.fileWin;
  if (!e || !from) return setWindow(null, null, "auto");
  const c = document.createElement("canvas");
  c.width = e.w; c.height = e.h;
  const cc = c.getContext("2d", { willReadFrequently: true });
  cc.drawImage(e.bm, 0, 0);
  const px = cc.getImageData(0, 0, e.w, e.h).data;
  const hist = new Uint32Array(256);
  let n = 0;
  for (let p = 0; p < px.length; p += 4) if (px[p] > 4) { hist[px[p]]++; n++; }
  if (!n) return setWindow(null, null, "auto");
  let acc = 0, lo = 0, hi = 255;
  for (let v = 0; v < 256; v++) { acc += hist[v]; if (acc >= n * 0.01) { lo = v; break; } }
  acc = 0;
  for (let v = 255; v >= 0; v--) { acc += hist[v]; if (acc >= n * 0.01) { hi = v; break; } }
  const x = (v) => from.c - 0.5 + (v / 255 - 0.5) * (from.w - 1);
  setWindow((x(lo) + x(hi)) / 2, Math.max(2, x(hi) - x(lo)), "auto");
}

// ------------------------------------------------------------------ input

const pointers = new Map();
let drag = null;

function stagePoint(ev) {
  const r = $("stage").getBoundingClientRect();
  return { x: ev.clientX - r.left - r.width / 2, y: ev.clientY - r.top - r.height / 2 };
}

function bindInput() {
  const stage = $("stage");
  stage.addEventListener("contextmenu", (ev) => ev.preventDefault());
  stage.addEventListener("dblclick", () => S.cur && fit());
  stage.addEventListener("pointerdown", (ev) => {
    if (!S.cur || ev.target.id === "stack") return;
    stage.setPointerCapture(ev.pointerId);
    stage.focus({ preventScroll: true });
    pointers.set(ev.pointerId, { x: ev.clientX, y: ev.clientY });
    const s = S.cur;
    if (pointers.size === 2) {
      const [a, b] = [...pointers.values()];
      drag = { kind: "pinch", dist: Math.hypot(a.x - b.x, a.y - b.y), zoom: s.zoom, mid: { x: (a.x + b.x) / 2, y: (a.y + b.y) / 2 }, panX: s.panX, panY: s.panY };
      return;
    }
    let kind = S.tool;
    if (ev.button === 2) kind = "wl";
    else if (ev.button === 1) kind = "pan";
    const w = effWin(s) || { c: 128, w: 256 };
    drag = { kind, x: ev.clientX, y: ev.clientY, idx: s.idx, zoom: s.zoom, panX: s.panX, panY: s.panY, win: { ...w }, p: stagePoint(ev), touch: ev.pointerType === "touch" };
    ev.preventDefault();
  });
  stage.addEventListener("pointermove", (ev) => {
    if (!pointers.has(ev.pointerId) || !drag) return;
    pointers.set(ev.pointerId, { x: ev.clientX, y: ev.clientY });
    const s = S.cur;
    if (drag.kind === "pinch" && pointers.size >= 2) {
      const [a, b] = [...pointers.values()];
      const dist = Math.hypot(a.x - b.x, a.y - b.y);
      const mid = { x: (a.x + b.x) / 2, y: (a.y + b.y) / 2 };
      s.zoom = Math.max(0.1, Math.min(32, (drag.zoom * dist) / Math.max(10, drag.dist)));
      s.panX = drag.panX + (mid.x - drag.mid.x);
      s.panY = drag.panY + (mid.y - drag.mid.y);
      draw();
      return;
    }
    const dx = ev.clientX - drag.x, dy = ev.clientY - drag.y;
    if (drag.kind === "scroll") {
      const step = Math.max(4, Math.min(24, $("stage").clientHeight / Math.max(1, s.items.length)));
      setIndex(drag.idx + Math.round(((drag.touch ? -1 : 1) * dy) / step));   // finger up / mouse down = next
    } else if (drag.kind === "wl") {
      const w = wlFromDrag(drag.win, dx, dy);
      setWindow(w.c, w.w);
    } else if (drag.kind === "zoom") {
      setZoom(drag.zoom * Math.exp(-dy / 200), drag.p.x, drag.p.y);
    } else if (drag.kind === "pan") {
      s.panX = drag.panX + dx; s.panY = drag.panY + dy;
      draw();
    }
  });
  const end = (ev) => {
    pointers.delete(ev.pointerId);
    if (pointers.size === 0) drag = null;
    else if (drag && drag.kind === "pinch") {
      const [a] = [...pointers.values()];
      drag = { kind: "pan", x: a.x, y: a.y, panX: S.cur.panX, panY: S.cur.panY };
    }
  };
  stage.addEventListener("pointerup", end);
  stage.addEventListener("pointercancel", end);
  let wheelAcc = 0;
  stage.addEventListener("wheel", (ev) => {
    if (!S.cur) return;
    ev.preventDefault();
    if (ev.ctrlKey || ev.metaKey) {
      const p = stagePoint(ev);
      setZoom(S.cur.zoom * Math.exp(-ev.deltaY / (ev.deltaMode ? 10 : 300)), p.x, p.y);
      return;
    }
    const r = stepFromWheel(wheelAcc, ev.deltaY, ev.deltaMode);
    wheelAcc = r.acc;
    if (r.steps) setIndex(S.cur.idx + r.steps);
  }, { passive: false });
  $("stack").addEventListener("input", (ev) => setIndex(+ev.target.value));
  document.querySelectorAll("#tools .tool").forEach((b) => b.addEventListener("click", () => setTool(b.dataset.tool)));
  $("preset").addEventListener("change", (ev) => applyPreset(ev.target.value));
  $("fit").addEventListener("click", fit);
  $("actual").addEventListener("click", actual);
  $("reset").addEventListener("click", reset);
  $("invert").addEventListener("click", toggleInvert);
  $("info-toggle").addEventListener("click", () => { S.info = !S.info; $("info-toggle").setAttribute("aria-pressed", String(S.info)); overlay(); });
  $("help-btn").addEventListener("click", () => $("help").showModal());
  $("report-toggle").addEventListener("click", () => toggleReport());
  document.addEventListener("keydown", onKey);
  window.addEventListener("resize", () => { devCache = null; });
  window.addEventListener("online", () => { if (S.cur) { draw(); prefetch(); } });
  new ResizeObserver(() => { devCache = null; if (S.cur) { draw(); prefetch(); } }).observe($("stage"));
}

function toggleInvert() {
  const s = S.cur;
  s.invert = !s.invert;
  $("invert").setAttribute("aria-pressed", String(s.invert));
  draw();
}

function toggleReport(open) {
  const on = open ?? document.body.classList.contains("report-closed");
  document.body.classList.toggle("report-closed", !on);
  $("report-toggle").setAttribute("aria-expanded", String(on));
  $("report-toggle").setAttribute("aria-label", t(on ? "hideReport" : "showReport"));
}

const KEYS = [
  ["↑ ↓ ← →", "kScroll"], ["PgUp PgDn", "kPage"], ["Home End", "kHomeEnd"], ["[ ]", "kSeries"],
  ["S W Z P", "kTools"], ["1 – 7", "kPresets"], ["F A R", "kFit"], ["I", "kInvert"], ["O", "kInfo"], ["?", "kHelp"],
];

function onKey(ev) {
  if (!S.cur || ev.altKey || ev.ctrlKey || ev.metaKey) return;
  if (ev.target.closest && ev.target.closest("input:not([type=range]), select, textarea, dialog[open]")) return;
  const s = S.cur;
  const k = ev.key;
  const presets = presetsFor(s.modality);
  const act = {
    ArrowUp: () => setIndex(s.idx - 1), ArrowLeft: () => setIndex(s.idx - 1),
    ArrowDown: () => setIndex(s.idx + 1), ArrowRight: () => setIndex(s.idx + 1),
    PageUp: () => setIndex(s.idx - 10), PageDown: () => setIndex(s.idx + 10),
    Home: () => setIndex(0), End: () => setIndex(s.items.length - 1),
    "[": () => selectSeries(Math.max(0, S.series.indexOf(s) - 1)),
    "]": () => selectSeries(Math.min(S.series.length - 1, S.series.indexOf(s) + 1)),
    s: () => setTool("scroll"), w: () => setTool("wl"), z: () => setTool("zoom"), p: () => setTool("pan"),
    f: fit, a: actual, r: reset, i: toggleInvert,
    o: () => $("info-toggle").click(), "?": () => $("help").showModal(),
    "+": () => setZoom(s.zoom * 1.25), "=": () => setZoom(s.zoom * 1.25), "-": () => setZoom(s.zoom / 1.25),
  }[k.length === 1 ? k.toLowerCase() : k] || (/^[1-9]$/.test(k) && presets[+k - 1] ? () => applyPreset(presets[+k - 1].id) : null);
  if (!act) return;
  ev.preventDefault();
  act();
}

// ------------------------------------------------------------------ page

function setPhase(p) {
  S.phase = p;
  document.body.dataset.state = p;
}

function i18nStatic() {
  document.documentElement.lang = lang;
  document.querySelectorAll("[data-i18n]").forEach((el) => { el.textContent = t(el.dataset.i18n); });
  document.querySelectorAll("[data-i18n-label]").forEach((el) => {
    el.setAttribute("aria-label", t(el.dataset.i18nLabel));
    el.title = t(el.dataset.i18nLabel);
  });
  const tb = $("keys");
  tb.replaceChildren(...KEYS.map(([keys, label]) => {
    const tr = document.createElement("tr");
    const a = document.createElement("td"), b = document.createElement("td");
    keys.split(" ").forEach((x) => { const kb = document.createElement("kbd"); kb.textContent = x; a.append(kb, " "); });
    b.textContent = t(label);
    tr.append(a, b);
    return tr;
  }));
  $("help-mouse").textContent = t("kMouse");
  $("help-touch").textContent = t("kTouch");
}

function fail(text, retry = false) {
  setPhase("error");
  $("error-text").textContent = text;
  $("error-retry").hidden = !retry;
  $("error").hidden = false;
}

// The share expired or was revoked while open: show the server's own 410 page.
let goneOnce = false;
async function gone() {
  if (goneOnce) return;
  goneOnce = true;
  setPhase("error");
  try {
    const r = await fetch(S.base, { headers: { Accept: "text/html" }, cache: "no-store" });
    if (r.status === 410 && (r.headers.get("content-type") || "").includes("text/html")) {
      const html = await r.text();
      document.open(); document.write(html); document.close();
      document.body && (document.body.dataset.state = "error");
      return;
    }
  } catch (_) { /* fall through to our own message */ }
  fail(t("errGone"));
}

function showGate(msg = "") {
  setPhase("code");
  $("gate").hidden = false;
  $("gate-err").textContent = msg;
  $("gate-code").focus();
}

async function unlock(ev) {
  ev.preventDefault();
  const code = $("gate-code").value.trim();
  if (!code) return;
  let r;
  try {
    r = await fetch(`${S.base}/unlock`, { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify({ code }), credentials: "same-origin" });
  } catch (_) { return showGate(t("errNetwork")); }
  if (r.ok) { $("gate").hidden = true; setPhase("loading"); return boot(); }
  if (r.status === 410) return gone();
  showGate(t(r.status === 429 ? "codeLimited" : "codeWrong"));
  $("gate-code").select();
}

async function boot() {
  if (!S.token) return fail(t("errNotFound"));
  $("error").hidden = true;
  let r;
  try {
    // plain request, so that it matches the page's Link: rel=preload (the server sends no-store)
    const pending = fetch(`${S.base}/study.json`, { credentials: "same-origin" });
    fmtDate("19700101");   // the first Intl use loads locale data (20-40 ms): do it while the answer travels
    r = await pending;
  } catch (_) { return fail(t("errNetwork"), true); }
  if (r.status === 401) {
    const j = await r.json().catch(() => ({}));
    if (j.need_code) return showGate();
  }
  if (r.status === 410) return gone();
  if (r.status === 404 || r.status === 403 || r.status === 401) return fail(t("errNotFound"));
  if (!r.ok) return fail(t("errServer", { status: r.status }), true);
  let study;
  try { study = await r.json(); } catch (_) { return fail(t("errServer", { status: r.status }), true); }
  start(study);
}

function start(study) {
  S.study = study;
  S.series = (study.series || []).map((se) => ({
    uid: se.uid, number: se.number, modality: se.modality || "", description: se.description || "",
    items: (se.instances || []).flatMap((ins) => Array.from({ length: Math.max(1, ins.frames || 1) }, (_, f) => ({
      sop: ins.uid, frame: f + 1, frames: ins.frames || 1, rows: ins.rows || 512, cols: ins.cols || 512,
      slice_location: ins.slice_location,
      fileWin: ins.window_width > 0 ? { c: ins.window_center, w: ins.window_width } : null,
    }))),
    idx: 0, win: null, preset: "default", zoom: 1, panX: 0, panY: 0, invert: false, loaded: 0,
  })).filter((s) => s.items.length);
  if (!S.series.length) return fail(t("imgError"));
  // Open each series at its middle image: the most informative one for a reader who is not
  // going to scroll through it all (prefetch then spreads out from there).
  S.series.forEach((s) => { s.idx = Math.floor((s.items.length - 1) / 2); });
  // The first image's request before the page is filled in, so that the server and the network
  // work while this thread does (often preloaded by the page's Link header already; the layout
  // may still change, devCache is dropped below, at worst the image is asked again at its size).
  load(request(S.series[0], S.series[0].idx)).catch(() => {});
  const p = study.patient || {}, sd = study.study || {};
  document.title = `${fmtName(p.name, true)} · ${sd.description || t("title")} · radshare`;
  $("pt-name").textContent = fmtName(p.name, true);
  $("pt-meta").textContent = [p.birth_date ? `${t("born")} ${fmtDate(p.birth_date)}` : "", age(p.birth_date, sd.date), fmtSex(p.sex), p.id ? `${t("id")} ${p.id}` : ""].filter(Boolean).join(" · ");
  $("st-meta").textContent = [fmtDate(sd.date), sd.description, sd.accession ? `${t("accession")} ${sd.accession}` : "", sd.referring ? `${t("referring")}: ${fmtName(sd.referring)}` : ""].filter(Boolean).join(" · ");
  if (study.expires) { $("expiry").textContent = `${t("expires")} ${fmtIso(study.expires)}`; $("expiry").hidden = false; }
  const dl = $("download");
  if (study.download === true) { dl.href = `${S.base}/download`; dl.hidden = false; } else { dl.hidden = true; dl.removeAttribute("href"); }
  const rep = study.report;
  const rt = $("report-text");
  if (rep && rep.text) {
    rt.textContent = rep.text;
    $("report-by").textContent = [rep.author, fmtDate(rep.date)].filter(Boolean).join(" · ");
  } else {
    rt.textContent = t("noReport");
    rt.classList.add("empty");
  }
  // beside the images on a desktop when there is a report; an empty column would only take their room
  toggleReport(!matchMedia("(max-width: 760px)").matches && !!(rep && rep.text));
  devCache = null;
  buildStrip();
  setTool("scroll");
  selectSeries(0);
  setTimeout(loadThumbs, 1500);   // even if the first image is slow
}

function buildStrip() {
  const ul = $("series-list");
  const dpr = window.devicePixelRatio || 1;
  const tv = Math.round(96 * dpr);
  ul.replaceChildren(...S.series.map((s, k) => {
    const li = document.createElement("li");
    const b = document.createElement("button");
    b.type = "button";
    b.className = "series-item";
    b.setAttribute("aria-pressed", "false");
    const img = document.createElement("img");
    img.alt = "";
    img.decoding = "async";
    // the series' middle image (where the series opens; the first slice is often the least telling)
    const mid = s.items[Math.floor((s.items.length - 1) / 2)];
    img.dataset.src = `${S.base}/studies/${encodeURIComponent(S.study.study.uid)}/series/${encodeURIComponent(s.uid)}/instances/${encodeURIComponent(mid.sop)}/frames/${mid.frame}/rendered?viewport=${tv},${tv}&quality=85`;
    img.addEventListener("error", () => img.classList.add("broken"));
    const txt = document.createElement("span");
    txt.className = "series-txt";
    const d1 = document.createElement("span"); d1.className = "series-desc"; d1.textContent = s.description || s.modality;
    const d2 = document.createElement("span"); d2.className = "series-meta";
    d2.textContent = `${s.modality}${s.number != null ? " · #" + s.number : ""} · ${s.items.length === 1 ? t("image1") : t("images", { n: s.items.length })}`;
    txt.append(d1, d2);
    b.append(img, txt);
    b.setAttribute("aria-label", `${s.description || s.modality}, ${d2.textContent}`);
    b.addEventListener("click", () => selectSeries(k));
    li.append(b);
    return li;
  }));
}

// Thumbnails wait for the first image so they do not take the connections it needs.
function loadThumbs() {
  document.querySelectorAll("#series-list img[data-src]").forEach((img) => { img.src = img.dataset.src; img.removeAttribute("data-src"); });
}

function snapshot() {
  const s = S.cur;
  const w = s ? effWin(s) : null;
  return {
    phase: S.phase, token: S.token,
    seriesUid: s ? s.uid : null, seriesIndex: s ? S.series.indexOf(s) : -1, seriesCount: S.series.length,
    index: s ? s.idx : -1, count: s ? s.items.length : 0,
    current: s ? { sop: s.items[s.idx].sop, frame: s.items[s.idx].frame } : null,
    window: w ? { center: w.c, width: w.w } : null, windowFromFile: s ? !s.win : true,
    zoom: s ? s.zoom : 1, panX: s ? s.panX : 0, panY: s ? s.panY : 0, invert: s ? s.invert : false, tool: S.tool,
    loaded: s ? loadedCount(s) : 0, total: s ? s.items.length : 0,
    startedAt: T0, firstImageDrawnAt: S.firstImageDrawnAt, seriesReadyAt: { ...S.seriesReadyAt },
    draws: S.draws, drawn: S.drawn ? { ...S.drawn } : null, download: S.study ? S.study.download === true : false,
    canvas: { width: canvas.width, height: canvas.height }, cacheBytes, errors: S.errors,
  };
}

window.radshareViewer = {
  get state() { return snapshot(); },
  setIndex: (i) => setIndex(i), selectSeries: (k) => selectSeries(k), setWindow: (c, w) => setWindow(c, w),
  setZoom: (z) => setZoom(z), fit, reset,
};

i18nStatic();
bindInput();
$("gate-form").addEventListener("submit", unlock);
$("error-retry").addEventListener("click", () => { setPhase("loading"); boot(); });
boot();
