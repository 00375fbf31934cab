// browser.mjs - starts Debian's Chromium through playwright-core for the browser checks
// (tests/web/*.mjs, tools/viewer-shots.mjs, bench/share). playwright-core comes from
// tools/node-deps.sh (tools/node/node_modules); no browser is ever downloaded.
import { createRequire } from "node:module";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
const require = createRequire(path.join(root, "tools/node/package.json"));

export const CHROMIUM = process.env.CHROMIUM || "/usr/bin/chromium";

export async function launch() {
  const { chromium } = require("playwright-core");
  const profile = mkdtempSync(path.join(tmpdir(), "radshare-chromium-"));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
      "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage"],
    acceptDownloads: true,
    viewport: { width: 1440, height: 900 },
  });
  const close = async () => { await context.close().catch(() => {}); rmSync(profile, { recursive: true, force: true }); };
  return { context, close };
}

// A fresh page with the given viewport/device emulation inside the shared context.
export async function newPage(context, { width = 1440, height = 900, dpr = 1, mobile = false, lang } = {}) {
  const page = await context.newPage();
  await page.setViewportSize({ width, height });
  const cdp = await context.newCDPSession(page);
  await cdp.send("Emulation.setDeviceMetricsOverride", { width, height, deviceScaleFactor: dpr, mobile });
  if (mobile) await cdp.send("Emulation.setTouchEmulationEnabled", { enabled: true, maxTouchPoints: 5 });
  if (lang) await cdp.send("Emulation.setLocaleOverride", { locale: lang }).catch(() => {});
  return { page, cdp };
}
