#!/usr/bin/env node
// test_viewer_logic.mjs - the viewer's DOM-free parts (src/web/stack.js, src/web/i18n.js) and
// static properties of src/web: assets only from /viewer/, no external URL, no innerHTML, every
// label in all four languages. The browser behaviour is checked by tests/web/viewer_check.mjs
// against radshare itself (end-to-end test). Prints TAP.
import { readFileSync, readdirSync } from "node:fs";
import path from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
const web = path.join(root, "src/web");
// The modules import each other by their served path (/viewer/x.js): map it for node.
const src = (f) => readFileSync(path.join(web, f), "utf8");
const mod = async (f) => import(pathToFileURL(path.join(web, f)).href);
const stack = await mod("stack.js");
const i18n = await mod("i18n.js");

let n = 0, failed = 0;
const check = (name, ok, detail = "") => {
  n++;
  if (!ok) failed++;
  console.log(`${ok ? "ok" : "not ok"} ${n} - ${name}${detail ? ` # ${detail}` : ""}`);
};

// token in the path
check("token from /s/TOKEN", stack.tokenFromPath("/s/Ab-_09xyz") === "Ab-_09xyz");
check("token with trailing slash", stack.tokenFromPath("/s/abc/") === "abc");
check("no token outside /s/", stack.tokenFromPath("/viewer/index.html") === "" && stack.tokenFromPath("/s/") === "");
check("token with traversal or odd characters refused", stack.tokenFromPath("/s/..%2f") === "" && stack.tokenFromPath("/s/a/b") === "" && stack.tokenFromPath("/s/<x>") === "");

// multipart answers of the prefetch batches (bodies are binary and may contain the boundary's bytes)
{
  const enc = (x) => (typeof x === "string" ? new TextEncoder().encode(x) : x);
  const cat = (...xs) => { const bs = xs.map(enc), out = new Uint8Array(bs.reduce((a, b) => a + b.length, 0)); let o = 0; for (const b of bs) { out.set(b, o); o += b.length; } return out; };
  const B = "radshare-rendered-3f81c0d2";
  const j1 = new Uint8Array([0xff, 0xd8, 13, 10, 13, 10, 45, 45, 0, 0xff, 0xd9]);           // CRLFCRLF and "--" inside
  const j2 = enc(`--${B}\r\n--${B}--`);                                                   // the boundary itself inside
  const part = (loc, body) => cat(`--${B}\r\nContent-Type: image/jpeg\r\nContent-Location: ${loc}\r\nContent-Length: ${body.length}\r\n\r\n`, body, "\r\n");
  const whole = cat(part("1.2.3/1", j1), part("1.2.4/2", j2), `--${B}--\r\n`);
  check("multipart boundary from the Content-Type", stack.multipartBoundary(`multipart/related; type="image/jpeg"; boundary=${B}`) === B
    && stack.multipartBoundary(`multipart/related; boundary="${B}"; type="image/jpeg"`) === B && stack.multipartBoundary("image/jpeg") === "");
  const p = stack.multipartParts(whole, B);
  check("multipart parts: bodies by Content-Length, even with the boundary inside a body",
    p.length === 2 && p[0].location === "1.2.3/1" && p[1].location === "1.2.4/2" && p[0].type === "image/jpeg"
    && p[0].body.join() === j1.join() && p[1].body.join() === j2.join(), JSON.stringify(p.map((x) => [x.location, x.body.length])));
  check("multipart: a cut answer, a missing length or another boundary give no parts",
    stack.multipartParts(whole.subarray(0, whole.length - 20), B).length === 0
    && stack.multipartParts(enc(`--${B}\r\nContent-Type: image/jpeg\r\n\r\nxx\r\n--${B}--\r\n`), B).length === 0
    && stack.multipartParts(whole, "other").length === 0 && stack.multipartParts(whole, "").length === 0);
}

// viewport asked from the server
check("viewport never above the native size", stack.viewportSize(512, 512, 2000, 1500) === 512);
check("viewport fitted and rounded up to 128", stack.viewportSize(3000, 2400, 1000, 800) === 1024, String(stack.viewportSize(3000, 2400, 1000, 800)));
check("viewport stable across small resizes", stack.viewportSize(3000, 2400, 1000, 800) === stack.viewportSize(3000, 2400, 990, 790));
check("a tiny stage still asks 128 pixels", stack.viewportSize(2048, 2048, 10, 10) === 128);

// LUT for the W/L preview
const id = stack.lutFor({ c: 40, w: 80 }, { c: 40, w: 80 });
let maxd = 0;
for (let v = 0; v < 256; v++) maxd = Math.max(maxd, Math.abs(id[v] - v));
check("preview LUT with the same window is the identity (±1)", maxd <= 1, `max diff ${maxd}`);
const lin = (x, c, w) => Math.min(255, Math.max(0, ((x - (c - 0.5)) / (w - 1) + 0.5) * 255));
const from = { c: 40, w: 400 }, to = { c: 60, w: 100 };
let worst = 0;
for (let v = 0; v < 256; v++) {
  const x = from.c - 0.5 + (v / 255 - 0.5) * (from.w - 1);
  worst = Math.max(worst, Math.abs(stack.lutFor(from, to)[v] - lin(x, to.c, to.w)));
}
check("preview LUT follows the LINEAR formula of C.11.2.1.2.1", worst <= 1, `worst ${worst.toFixed(2)}`);
const narrow = stack.lutFor(from, { c: 40, w: 1 });
check("window width 1 is a threshold", narrow[0] === 0 && narrow[255] === 255);

// W/L drag
const d = stack.wlFromDrag({ c: 40, w: 80 }, 30, 15);
check("drag right widens, drag down raises the centre", d.w > 80 && d.c > 40, JSON.stringify(d));
check("width stays >= 1", stack.wlFromDrag({ c: 40, w: 80 }, -100000, 0).w === 1);
const big = stack.wlFromDrag({ c: 1000, w: 4000 }, 30, 0), small = stack.wlFromDrag({ c: 10, w: 40 }, 30, 0);
check("drag proportional to the width", (big.w - 4000) / 4000 === (small.w - 40) / 40);

// wheel
check("mouse notch = one image", stack.stepFromWheel(0, 100, 0).steps === 1 && stack.stepFromWheel(0, -120, 0).steps === -1);
check("line mode = one image", stack.stepFromWheel(0, 3, 1).steps === 1);
let acc = 0, steps = 0;
for (let k = 0; k < 10; k++) { const r = stack.stepFromWheel(acc, 12, 0); acc = r.acc; steps += r.steps; }
check("touchpad deltas accumulate", steps === 4, `${steps} steps for 120 px`);

// presets
const ct = stack.presetsFor("CT").map((p) => p.id), mr = stack.presetsFor("MR").map((p) => p.id);
check("CT presets: brain, lung, bone, abdomen, soft tissue", ["default", "auto", "brain", "lung", "bone", "abdomen", "soft"].every((x) => ct.includes(x)));
check("MR presets: default and auto only", mr.join() === "default,auto");
const lung = stack.PRESETS.find((p) => p.id === "lung");
check("lung preset W1500 L-600", lung.w === 1500 && lung.c === -600);
check("cache key distinguishes window and viewport", new Set([stack.cacheKey("1.2", 1, "", 512), stack.cacheKey("1.2", 1, "40,80", 512), stack.cacheKey("1.2", 1, "", 256), stack.cacheKey("1.2", 2, "", 512)]).size === 4);

// i18n
check("language from navigator list", i18n.pickLang(["fr-BE", "en"]) === "fr" && i18n.pickLang(["nl"]) === "nl" && i18n.pickLang(["de-CH"]) === "de" && i18n.pickLang(["ja", "pt"]) === "en");
check("person name formatted", i18n.fmtName("LAMBERT^Claire^^Dr.") === "Dr. Claire LAMBERT" && i18n.fmtName("DUPONT^Marie", true) === "DUPONT, Marie");
check("name with ideographic groups keeps the first", i18n.fmtName("YAMADA^Tarou=山田^太郎") === "Tarou YAMADA");
check("DICOM date formatted", /2026/.test(i18n.fmtDate("20261203")) && i18n.fmtDate("garbage") === "garbage");
check("age at study date", i18n.age("19580314", "20261203") === "68 y" && i18n.age("19580314", "20260313") === "67 y");
check("placeholders filled", i18n.t("imageOf", { n: 3, total: 40 }) === "Image 3 / 40");

// labels: every key used exists in all four languages
const i18nSrc = src("i18n.js");
const tables = {};
for (const lang of ["en", "fr", "nl", "de"]) {
  const m = new RegExp(`\\n  ${lang}: \\{([\\s\\S]*?)\\n  \\},`).exec(i18nSrc);
  tables[lang] = m ? new Set([...m[1].matchAll(/(\w+):\s*"/g)].map((x) => x[1])) : new Set();
}
const used = new Set([...src("viewer.js").matchAll(/\bt\("(\w+)"/g), ...src("index.html").matchAll(/data-i18n(?:-label)?="(\w+)"/g),
  ...src("stack.js").matchAll(/label: "(\w+)"/g), ...src("viewer.js").matchAll(/\["[^"]*", "(k\w+)"\]/g)].map((m) => m[1]));
const missing = [];
for (const k of used) for (const lang of Object.keys(tables)) if (!tables[lang].has(k)) missing.push(`${lang}.${k}`);
check(`all ${used.size} labels exist in en, fr, nl and de`, used.size > 40 && missing.length === 0, missing.join(" "));
const sizes = Object.values(tables).map((s) => s.size);
check("the four tables have the same keys", sizes.every((s) => s === sizes[0]) && [...tables.en].every((k) => tables.fr.has(k) && tables.nl.has(k) && tables.de.has(k)), sizes.join(","));

// static properties of the served files
const files = readdirSync(web);
const all = files.map((f) => src(f)).join("\n");
check("no external URL in src/web (no CDN)", !/(https?:)?\/\/(?!www\.w3\.org\/2000\/svg)[a-z0-9.-]+\.[a-z]{2,}/i.test(all.replace(/^\s*\/\/.*$/gm, "")));
const html = src("index.html");
const refs = [...html.matchAll(/(?:src|href)="([^"#][^"]*)"/g)].map((m) => m[1]).filter((u) => !u.startsWith("data:"));
check("index.html loads its assets from /viewer/ with absolute paths", refs.length >= 2 && refs.every((u) => u.startsWith("/viewer/") && files.includes(u.slice(8))), refs.join(" "));
const imports = [...files.filter((f) => f.endsWith(".js")).map(src).join("\n").matchAll(/from "([^"]+)"/g)].map((m) => m[1]);
check("modules import each other from /viewer/", imports.length >= 2 && imports.every((u) => u.startsWith("/viewer/") && files.includes(u.slice(8))), imports.join(" "));
check("no innerHTML/outerHTML/insertAdjacentHTML in the viewer", !/innerHTML|outerHTML|insertAdjacentHTML/.test(all));
check("report and names inserted with textContent", /rt\.textContent = rep\.text/.test(src("viewer.js")) && /\$\("pt-name"\)\.textContent/.test(src("viewer.js")));
check("test hook and body state present", /window\.radshareViewer =/.test(src("viewer.js")) && /dataset\.state = p/.test(src("viewer.js")) && /data-state="loading"/.test(html));

console.log(`# ${n - failed} passed, ${failed} failed`);
process.exit(failed ? 1 : 0);
