#!/usr/bin/env node
// viewer_check.mjs - drives the share-link viewer in headless Chromium (Debian's, through
// playwright-core) against a running server and prints TAP lines. It is not a test_* script on
// its own: the end-to-end test starts radshare, makes a share and calls
//   node tests/web/viewer_check.mjs BASE_URL TOKEN [--download yes|no] [--code CODE]
// Checks: first image drawn (non-blank canvas of the stage's device size, image of the expected
// size), first-image time, stack scrolling by wheel, keys, slider and touch swipe up to the last
// image (n/N overlay), window change by right-drag re-rendered by the server (a new request with
// window=C,W and different pixels), presets, zoom/pan/fit, phone layout, download button.
import { launch, newPage } from "./browser.mjs";

const args = process.argv.slice(2);
const opt = (name) => { const i = args.indexOf(name); return i >= 0 ? args[i + 1] : undefined; };
const [base, token] = args.filter((a, i) => !a.startsWith("--") && !(i && args[i - 1].startsWith("--")));
if (!base || !token) {
  console.error("usage: viewer_check.mjs BASE_URL TOKEN [--download yes|no] [--code CODE]");
  process.exit(2);
}
const url = `${base.replace(/\/$/, "")}/s/${token}`;
let n = 0, failed = 0;
function check(name, ok, detail = "") {
  n++;
  if (!ok) failed++;
  console.log(`${ok ? "ok" : "not ok"} ${n} - ${name}${detail ? ` # ${detail}` : ""}`);
  return ok;
}
const state = (page) => page.evaluate(() => window.radshareViewer.state);
const settled = (page, timeout = 15000) => page.waitForFunction(() => {
  const v = window.radshareViewer.state;
  return v.drawn && v.drawn.exact && v.drawn.sop === v.current.sop && v.drawn.frame === v.current.frame && JSON.stringify(v.drawn.win) === JSON.stringify(v.windowFromFile ? null : { c: v.window.center, w: v.window.width });
}, null, { timeout });

// Canvas statistics computed in the page: share of non-black pixels and a pixel hash.
const canvasStats = (page) => page.evaluate(() => {
  const c = document.getElementById("canvas");
  const d = c.getContext("2d").getImageData(0, 0, c.width, c.height).data;
  let lit = 0, h = 2166136261;
  const levels = new Set();
  for (let i = 0; i < d.length; i += 4) {
    if (d[i] > 8) lit++;
    levels.add(d[i]);
    if ((i & 60) === 0) h = Math.imul(h ^ d[i], 16777619) >>> 0;
  }
  const r = document.getElementById("stage").getBoundingClientRect();
  return { lit: lit / (d.length / 4), levels: levels.size, hash: h, w: c.width, h: c.height, cssW: r.width, cssH: r.height, dpr: devicePixelRatio };
});

async function openViewer(page) {
  const t0 = Date.now();
  await page.goto(url);
  const code = opt("--code");
  if (code) {   // the form shows once per browser context: the unlock cookie then opens the share
    await page.waitForFunction(() => ["code", "ready", "error"].includes(document.body.dataset.state), null, { timeout: 20000 });
    if (await page.evaluate(() => document.body.dataset.state) === "code") {
      await page.fill("#gate-code", "0000-wrong");
      await page.click("#gate button[type=submit]");
      await page.waitForFunction(() => document.getElementById("gate-err").textContent.length > 0, null, { timeout: 10000 });
      check("access code: a wrong code is refused with a message", await page.evaluate(() => document.body.dataset.state) === "code",
        await page.locator("#gate-err").textContent());
      await page.fill("#gate-code", code);
      await page.click("#gate button[type=submit]");
    }
  }
  await page.waitForFunction(() => ["ready", "error"].includes(document.body.dataset.state), null, { timeout: 20000 });
  return Date.now() - t0;
}

async function desktop(context) {
  const { page } = await newPage(context, { width: 1440, height: 900, dpr: 1 });
  const errors = [];
  page.on("pageerror", (e) => errors.push(e.message));
  const rendered = [];
  page.on("request", (r) => { if (r.url().includes("/rendered")) rendered.push(r.url()); });
  const ms = await openViewer(page);
  const st0 = await page.evaluate(() => document.body.dataset.state);
  if (!check("desktop: viewer reaches state ready", st0 === "ready", `state=${st0} after ${ms} ms`)) return page;
  let v = await state(page);
  check("desktop: first image time recorded", v.firstImageDrawnAt > 0, `firstImageDrawnAt=${v.firstImageDrawnAt.toFixed(0)} ms after navigation start`);
  const study = await page.evaluate(async (u) => (await fetch(`${u}/study.json`)).json(), url);
  const ins = study.series[0].instances[0];
  const cs = await canvasStats(page);
  check("desktop: canvas is the stage's size in device pixels", cs.w === Math.round(cs.cssW * cs.dpr) && cs.h === Math.round(cs.cssH * cs.dpr), `${cs.w}x${cs.h} for ${cs.cssW}x${cs.cssH}@${cs.dpr}`);
  check("desktop: first image drawn (canvas not blank)", cs.levels >= 8 && cs.lit > 0.001, `${cs.levels} grey levels, ${(cs.lit * 100).toFixed(1)}% lit`);
  const expectW = Math.min(ins.cols, v.drawn.w), ratio = v.drawn.w / v.drawn.h;
  check("desktop: drawn image has the instance's aspect and size", Math.abs(ratio - ins.cols / ins.rows) < 0.02 && v.drawn.w <= ins.cols && v.drawn.w === expectW && v.drawn.w >= Math.min(ins.cols, 256),
    `${v.drawn.w}x${v.drawn.h} of ${ins.cols}x${ins.rows}`);
  check("desktop: first request asks a viewport and no window", /viewport=\d+,\d+/.test(rendered[0] || "") && !/window=/.test(rendered[0] || ""), rendered[0] || "none");
  check("desktop: series strip lists every series with a thumbnail", await page.locator("#series-list img").count() === study.series.length);
  const texts = await page.evaluate(() => [document.getElementById("pt-name").textContent, document.getElementById("ov-tl").textContent]);
  check("desktop: patient name in header and overlay", texts[0].length > 0 && texts[1].includes(texts[0].split(",")[0]), JSON.stringify(texts));

  // prefetch: the whole first series ends up cached
  await page.waitForFunction(() => { const s = window.radshareViewer.state; return s.loaded === s.total; }, null, { timeout: 30000 }).catch(() => {});
  v = await state(page);
  check("desktop: whole series prefetched", v.loaded === v.total && v.total === v.count, `${v.loaded}/${v.total}, ready at ${(v.seriesReadyAt[v.seriesUid] || 0).toFixed(0)} ms`);
  const pre = await page.evaluate(() => {
    const r = performance.getEntriesByType("resource");
    const img = r.filter((e) => e.name.includes("/rendered?") && e.name.includes("quality=90"));
    return { first: img[0] && img[0].initiatorType, same: img.length ? img.filter((e) => e.name === img[0].name).length : 0,
      json: r.filter((e) => e.name.endsWith("/study.json")).map((e) => e.initiatorType) };
  });
  check("desktop: study.json and the first image come from the page's preloads, each fetched once",
    pre.first === "link" && pre.same === 1 && pre.json.join() === "link,fetch", JSON.stringify(pre));   // (the fetch is this script's own, above)
  const batches = rendered.filter((u) => /\/series\/[0-9.]+\/rendered\?instances=/.test(u));
  check("desktop: prefetched in batches (fewer requests than images), first image alone", batches.length >= 1 && rendered.length < v.total
    && !/instances=/.test(rendered[0]) && (await page.evaluate(() => performance.getEntriesByName("radshare:series-ready").length)) === 1,
    `${rendered.length} requests for ${v.total} images, ${batches.length} batches`);

  // stack scrolling: wheel, keys, slider
  const box = await page.locator("#stage").boundingBox();
  await page.mouse.move(box.x + box.width / 2, box.y + box.height / 2);
  const i0 = (await state(page)).index;
  for (let k = 0; k < 3; k++) { await page.mouse.wheel(0, 100); await page.waitForTimeout(30); }
  v = await state(page);
  check("desktop: mouse wheel scrolls 3 images", v.index === Math.min(i0 + 3, v.count - 1), `index ${i0} -> ${v.index}`);
  await page.keyboard.press("End");
  v = await state(page);
  const bl = await page.locator("#ov-bl").textContent();
  check("desktop: End shows the last image with n/N in the overlay", v.index === v.count - 1 && bl.includes(`${v.count} / ${v.count}`), bl);
  await settled(page).catch(() => {});
  const last = await canvasStats(page);
  check("desktop: last image drawn", (await state(page)).drawn.exact && last.levels >= 8, `${last.levels} grey levels`);
  await page.keyboard.press("Home");
  await page.keyboard.press("ArrowDown");
  check("desktop: Home then ArrowDown is image 2", (await state(page)).index === Math.min(1, v.count - 1));
  await page.locator("#stack").fill(String(Math.floor((v.count - 1) / 2)));
  check("desktop: slider moves the stack", (await state(page)).index === Math.floor((v.count - 1) / 2));
  await settled(page).catch(() => {});

  // window/level by right-drag: preview at once, then the server's rendering with window=
  const before = await canvasStats(page), w0 = (await state(page)).window;
  const nReq = rendered.length;
  await page.mouse.move(box.x + box.width / 2, box.y + box.height / 2);
  await page.mouse.down({ button: "right" });
  for (let k = 1; k <= 8; k++) await page.mouse.move(box.x + box.width / 2 + k * 15, box.y + box.height / 2 + k * 6);
  await page.mouse.up({ button: "right" });
  v = await state(page);
  check("desktop: right-drag changes the window", v.window && !v.windowFromFile && (!w0 || v.window.width !== w0.width || v.window.center !== w0.center), `${JSON.stringify(w0)} -> ${JSON.stringify(v.window)}`);
  const ok = await settled(page).then(() => true, () => false);
  const wreq = rendered.slice(nReq).filter((u) => u.includes(`window=${v.window.center},${v.window.width}`));
  check("desktop: new window rendered by the server", ok && wreq.length >= 1, `${wreq.length} requests with window=${v.window.center},${v.window.width}`);
  const after = await canvasStats(page);
  check("desktop: window change re-renders the canvas", after.hash !== before.hash && after.levels >= 4);
  const br = await page.locator("#ov-br").textContent();
  check("desktop: overlay shows the current W/L", br.includes(String(v.window.width)) && br.includes(String(v.window.center)), br);
  const opts = await page.locator("#preset option").evaluateAll((o) => o.map((x) => x.value));
  if (study.series[0].modality === "CT") {
    await page.selectOption("#preset", "lung");
    v = await state(page);
    check("desktop: CT lung preset sets W 1500 L -600", v.window.width === 1500 && v.window.center === -600 && ["brain", "bone", "abdomen", "soft"].every((p) => opts.includes(p)), opts.join(","));
  } else {
    check("desktop: default and auto presets offered", opts.includes("default") && opts.includes("auto"), opts.join(","));
  }
  await page.selectOption("#preset", "default");
  check("desktop: default preset returns to the file's window", (await state(page)).windowFromFile);

  // zoom, pan, fit
  await page.mouse.move(box.x + box.width / 2, box.y + box.height / 2);
  await page.keyboard.down("Control");
  await page.mouse.wheel(0, -300);
  await page.keyboard.up("Control");
  v = await state(page);
  check("desktop: ctrl+wheel zooms in", v.zoom > 1.5, `zoom ${v.zoom.toFixed(2)}`);
  await page.click("[data-tool=pan]");
  await page.mouse.move(box.x + box.width / 2, box.y + box.height / 2);
  await page.mouse.down();
  await page.mouse.move(box.x + box.width / 2 + 80, box.y + box.height / 2 + 40, { steps: 4 });
  await page.mouse.up();
  v = await state(page);
  check("desktop: pan tool moves the image", Math.abs(v.panX - 80) < 50 && v.panY !== 0, `pan ${v.panX.toFixed(0)},${v.panY.toFixed(0)}`);
  await page.keyboard.press("f");
  v = await state(page);
  check("desktop: F fits again", v.zoom === 1 && v.panX === 0 && v.panY === 0);

  // download button as study.json says
  const dlVisible = await page.locator("#download").isVisible();
  const want = opt("--download");
  check("desktop: download button shown exactly when study.json allows it",
    dlVisible === (study.download === true) && (!want || dlVisible === (want === "yes")), `download=${study.download} visible=${dlVisible}`);
  if (dlVisible) {
    const href = await page.locator("#download").getAttribute("href");
    check("desktop: download link points to /s/TOKEN/download", href === `/s/${token}/download`, href);
  }
  // next series
  if (study.series.length > 1) {
    await page.keyboard.press("]");
    await settled(page).catch(() => {});
    v = await state(page);
    check("desktop: ] opens the next series and draws it", v.seriesUid === study.series[1].uid && v.drawn.sop === v.current.sop && study.series[1].instances.some((x) => x.uid === v.drawn.sop) && (await canvasStats(page)).levels >= 8, JSON.stringify(v.drawn));
  }
  check("desktop: no script errors", errors.length === 0, errors.join(" | "));
  return page;
}

async function phone(context) {
  const { page, cdp } = await newPage(context, { width: 390, height: 844, dpr: 3, mobile: true });
  const errors = [];
  page.on("pageerror", (e) => errors.push(e.message));
  await openViewer(page);
  if (!check("phone: viewer reaches state ready", await page.evaluate(() => document.body.dataset.state) === "ready")) return;
  const cs = await canvasStats(page);
  check("phone: canvas in device pixels (dpr 3) and not blank", cs.dpr === 3 && cs.w === Math.round(cs.cssW * 3) && cs.levels >= 8, `${cs.w}x${cs.h}, ${cs.levels} grey levels`);
  const L = await page.evaluate(() => {
    const r = (id) => document.getElementById(id).getBoundingClientRect();
    return { stage: r("stage"), strip: r("series-list"), report: getComputedStyle(document.getElementById("report")).display,
      scrollW: document.documentElement.scrollWidth, top: r("top") };
  });
  check("phone: image takes most of the screen", L.stage.width >= 380 && L.stage.height >= 844 * 0.5, `${L.stage.width}x${L.stage.height}`);
  check("phone: series strip below the image", L.strip.top >= L.stage.bottom - 1 && L.strip.bottom <= 845, `stage bottom ${L.stage.bottom}, strip ${L.strip.top}-${L.strip.bottom}`);
  check("phone: no horizontal overflow", L.scrollW <= 390, `scrollWidth ${L.scrollW}`);
  check("phone: report collapsed at first", L.report === "none");
  await page.click("#report-toggle");
  const rep = await page.evaluate(() => { const r = document.getElementById("report").getBoundingClientRect(); return { h: r.height, d: getComputedStyle(document.getElementById("report")).display }; });
  check("phone: report button opens the report panel", rep.d !== "none" && rep.h > 80, JSON.stringify(rep));
  await page.click("#report-toggle");
  // touch swipe up on the image = next images
  const i0 = (await state(page)).index;
  const x = L.stage.left + L.stage.width / 2, y0 = L.stage.top + L.stage.height * 0.7;
  await cdp.send("Input.dispatchTouchEvent", { type: "touchStart", touchPoints: [{ x, y: y0 }] });
  for (let k = 1; k <= 6; k++) await cdp.send("Input.dispatchTouchEvent", { type: "touchMove", touchPoints: [{ x, y: y0 - k * 25 }] });
  await cdp.send("Input.dispatchTouchEvent", { type: "touchEnd", touchPoints: [] });
  const i1 = (await state(page)).index;
  check("phone: swipe scrolls the stack", i1 !== i0, `index ${i0} -> ${i1}`);
  // pinch
  const c = { x, y: L.stage.top + L.stage.height / 2 };
  await cdp.send("Input.dispatchTouchEvent", { type: "touchStart", touchPoints: [{ x: c.x - 30, y: c.y, id: 1 }, { x: c.x + 30, y: c.y, id: 2 }] });
  for (let k = 1; k <= 5; k++) await cdp.send("Input.dispatchTouchEvent", { type: "touchMove", touchPoints: [{ x: c.x - 30 - k * 15, y: c.y, id: 1 }, { x: c.x + 30 + k * 15, y: c.y, id: 2 }] });
  await cdp.send("Input.dispatchTouchEvent", { type: "touchEnd", touchPoints: [] });
  const z = (await state(page)).zoom;
  check("phone: pinch zooms", z > 1.8, `zoom ${z.toFixed(2)}`);
  check("phone: no script errors", errors.length === 0, errors.join(" | "));
  await page.close();
}

const { context, close } = await launch();
try {
  await desktop(context);
  await phone(context);
} catch (e) {
  check(`no exception (${e.message.split("\n")[0]})`, false);
} finally {
  await close();
}
console.log(`# ${n - failed} passed, ${failed} failed`);
process.exit(failed ? 1 : 0);
