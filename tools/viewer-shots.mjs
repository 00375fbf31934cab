#!/usr/bin/env node
// viewer-shots.mjs - takes the screenshots of docs/screenshots/ with headless Chromium against
// tools/viewer-dev.py (a development helper, not a test).
// Usage: node tools/viewer-shots.mjs http://127.0.0.1:8765 docs/screenshots
import { launch, newPage } from "../tests/web/browser.mjs";
import path from "node:path";

const [base = "http://127.0.0.1:8765", out = "docs/screenshots"] = process.argv.slice(2);
const shots = [
  { name: "viewer-desktop.png", token: "study1", width: 1440, height: 900, dpr: 1, index: 17 },
  { name: "viewer-desktop-mr.png", token: "study2-nodl", width: 1440, height: 900, dpr: 1, index: 12, series: 0 },
  { name: "viewer-phone.png", token: "study1", width: 390, height: 844, dpr: 3, mobile: true, index: 17 },
  { name: "viewer-phone-report.png", token: "study2", width: 390, height: 844, dpr: 3, mobile: true, index: 12, report: true },
  { name: "viewer-phone-code.png", token: "study1-code", width: 390, height: 844, dpr: 3, mobile: true, gate: true },
];
const { context, close } = await launch();
try {
  for (const s of shots) {
    const { page } = await newPage(context, s);
    page.on("console", (m) => m.type() === "error" && console.error(`[${s.name}] console:`, m.text()));
    page.on("pageerror", (e) => console.error(`[${s.name}] pageerror:`, e.message));
    await page.goto(`${base}/s/${s.token}`);
    if (s.gate) {
      await page.waitForSelector("#gate:not([hidden])");
    } else {
      await page.waitForFunction(() => document.body.dataset.state === "ready", null, { timeout: 20000 });
      if (s.series) await page.evaluate((k) => window.radshareViewer.selectSeries(k), s.series);
      await page.evaluate((i) => window.radshareViewer.setIndex(i), s.index);
      await page.waitForFunction(() => { const v = window.radshareViewer.state; return v.loaded === v.total && v.drawn && v.drawn.exact; }, null, { timeout: 30000 });
      if (s.report) await page.click("#report-toggle");
      await page.waitForTimeout(700);
    }
    await page.screenshot({ path: path.join(out, s.name) });
    console.log("wrote", path.join(out, s.name), JSON.stringify(await page.evaluate(() => window.radshareViewer && window.radshareViewer.state && { ...window.radshareViewer.state, seriesReadyAt: undefined })));
    await page.close();
  }
} finally {
  await close();
}
