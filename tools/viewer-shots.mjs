#!/usr/bin/env node
// viewer-shots.mjs - takes the screenshots of docs/screenshots/ in headless Chromium against a
// real `radshare serve`: it starts build/radshare on a throw-away data directory, stores the
// sample studies of tools/sample-studies.py with storescu (written once into build/viewer-sample),
// posts each study's report through POST /api/studies/{uid}/reports (the report module makes the
// share link), makes a view-only share and one with an access code through POST /api/shares, and
// photographs the viewer as a GP would see it: desktop 1440x900 and phone 390x844 at dpr 3.
// A development helper, not a test. Usage:
//   node tools/viewer-shots.mjs [OUTDIR]        (default docs/screenshots; needs `make`, dcmtk)
import { launch, newPage } from "../tests/web/browser.mjs";
import { spawn, spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, openSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const out = path.resolve(process.argv[2] || path.join(root, "docs/screenshots"));
const RADSHARE = process.env.RADSHARE || path.join(root, "build/radshare");
const sample = path.join(root, "build/viewer-sample");

const freePort = () => new Promise((res) => { const s = createServer().listen(0, "127.0.0.1", () => { const p = s.address().port; s.close(() => res(p)); }); });
const run = (cmd, args) => { const r = spawnSync(cmd, args, { stdio: ["ignore", "inherit", "inherit"] }); if (r.status !== 0) throw new Error(`${cmd} failed`); };
const api = async (base, p, body) => {
  const r = await fetch(base + p, { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) });
  if (r.status !== 201) throw new Error(`POST ${p}: ${r.status} ${await r.text()}`);
  return r.json();
};

if (!existsSync(path.join(sample, ".complete"))) {
  rmSync(sample, { recursive: true, force: true });
  run("/usr/bin/python3", [path.join(root, "tools/sample-studies.py"), sample]);
  spawnSync("touch", [path.join(sample, ".complete")]);
}
const work = mkdtempSync(path.join(tmpdir(), "radshare-shots-"));
const [dport, hport] = [await freePort(), await freePort()];
const base = `http://127.0.0.1:${hport}`;
const log = openSync(path.join(work, "server.log"), "w");
const srv = spawn(RADSHARE, ["serve", "--data", path.join(work, "data"), "--dicom-port", String(dport), "--http-port", String(hport),
  "--bind", "127.0.0.1", "--public-url", base], { stdio: ["ignore", log, log] });
let closeBrowser = async () => {};
try {
  for (let i = 0; ; i++) {
    try { if ((await fetch(`${base}/viewer/viewer.css`)).ok) break; } catch (_) { /* not yet */ }
    if (i > 100) throw new Error("radshare serve did not start");
    await new Promise((r) => setTimeout(r, 100));
  }
  run("storescu", ["-aec", "RADSHARE", "+sd", "+r", "+sp", "*.dcm", "127.0.0.1", String(dport), sample]);
  // study UID -> report text (tools/sample-studies.py writes UID.report.txt beside the files)
  const reports = Object.fromEntries(readdirSync(sample).filter((f) => f.endsWith(".report.txt"))
    .map((f) => [f.replace(/\.report\.txt$/, ""), readFileSync(path.join(sample, f), "utf8")]));
  const studies = await (await fetch(`${base}/dicom-web/studies?includefield=StudyDescription`)).json();
  const uid = (desc) => studies.find((s) => (s["00081030"]?.Value || [])[0] === desc)["0020000D"].Value[0];
  const ct = uid("CT HEAD WITHOUT CONTRAST"), mr = uid("MRI BRAIN");
  const send = async (study, name) => {
    const r = await api(base, `/api/studies/${study}/reports`, { text: reports[study], recipient: { name, email: "gp@example.org" } });
    return r.share.url;
  };
  const links = {
    ct: await send(ct, "Dr Claire Lambert"),
    mr: await send(mr, "Dr Luc Dubois"),
    mrView: (await api(base, "/api/shares", { study: mr, recipient: { name: "Dr Luc Dubois" }, download: false })).url,
    code: (await api(base, "/api/shares", { study: ct, recipient: { kind: "patient", name: "Marie-Hélène Dupont" }, access_code: "4711" })).url,
  };
  const shots = [
    { name: "viewer-desktop.png", link: "ct", width: 1440, height: 900, dpr: 1, index: 17 },
    { name: "viewer-desktop-mr.png", link: "mrView", width: 1440, height: 900, dpr: 1, index: 12 },
    { name: "viewer-phone.png", link: "ct", width: 390, height: 844, dpr: 3, mobile: true, index: 17 },
    { name: "viewer-phone-report.png", link: "mr", width: 390, height: 844, dpr: 3, mobile: true, index: 12, report: true },
    { name: "viewer-phone-code.png", link: "code", width: 390, height: 844, dpr: 3, mobile: true, gate: true },
  ];
  const b = await launch();
  closeBrowser = b.close;
  for (const s of shots) {
    const { page } = await newPage(b.context, s);
    page.on("console", (m) => m.type() === "error" && console.error(`[${s.name}] console:`, m.text()));
    page.on("pageerror", (e) => console.error(`[${s.name}] pageerror:`, e.message));
    await page.goto(links[s.link]);
    if (s.gate) {
      await page.waitForSelector("#gate:not([hidden])");
    } else {
      await page.waitForFunction(() => document.body.dataset.state === "ready", null, { timeout: 20000 });
      await page.evaluate((i) => window.radshareViewer.setIndex(i), s.index);
      await page.waitForFunction(() => { const v = window.radshareViewer.state; return v.loaded === v.total && v.drawn && v.drawn.exact; }, null, { timeout: 30000 });
      if (s.report) await page.click("#report-toggle");
      await page.waitForTimeout(900);   // thumbnails, the progress pill fading out
    }
    await page.screenshot({ path: path.join(out, s.name) });
    console.log("wrote", path.join(out, s.name));
    await page.close();
  }
} finally {
  await closeBrowser();
  srv.kill("SIGTERM");
  await new Promise((r) => srv.once("exit", r));
  rmSync(work, { recursive: true, force: true });
}
