#!/usr/bin/env node
// staff_check.mjs - drives the staff page (/staff) in headless Chromium (Debian's, through
// playwright-core) against a running radshare and prints TAP lines; tests/web/test_staff.py starts
// the server, the SMTP relay and the study, then calls
//   node tests/web/staff_check.mjs BASE_URL USER PASSWORD OUT_DIR [--new-password PW] [--shots DIR]
//   node tests/web/staff_check.mjs BASE_URL - - OUT_DIR --admin NAME PW --staff NAME PW [--shots DIR]
// (USER "-": the page before any account exists, in French (a fr-BE browser): the bootstrap banner
// and its form create the first admin, who then adds the staff account and a second one that is
// disabled, and pages through the study list.)
// Lines "## {json}" hand facts to the caller: the links the page created (the report's, the
// patient's) and the PNG of the printed handout, whose QR code the caller decodes with zbarimg.
// Checks: sign-in (wrong then right password), search, recipient prefilled from the directory,
// report sent with HTML in it, delivery shown as delivered, the report in the viewer as text, the
// opening in the share's history, the patient link's handout, a colleague's link with an access
// code, revocation and the link then 410, the handout switched to Dutch and printed so,
// injected HTML in a patient name shown as text, the phone layout, no account management for a
// radiologist, one's own password changed (wrong current one refused) and signing in with it.
import { mkdirSync } from "node:fs";
import path from "node:path";
import { launch, newPage } from "./browser.mjs";

const args = process.argv.slice(2);
const opt = (name) => { const i = args.indexOf(name); return i >= 0 ? args[i + 1] : undefined; };
const [base, user, password, out] = args;
if (!out) {
  console.error("usage: staff_check.mjs BASE_URL USER PASSWORD OUT_DIR [--shots DIR]");
  process.exit(2);
}
const shots = opt("--shots");
const optPair = (name) => { const i = args.indexOf(name); return i >= 0 ? [args[i + 1], args[i + 2]] : [undefined, undefined]; };
let n = 0, failed = 0;
function check(name, ok, detail = "") {
  n++;
  if (!ok) failed++;
  console.log(`${ok ? "ok" : "not ok"} ${n} - ${name}${detail && !ok ? ` # ${String(detail).slice(0, 300)}` : ""}`);
  return ok;
}
const tell = (o) => console.log(`## ${JSON.stringify(o)}`);
const REPORT = "MRI left knee.\nNo meniscal tear. <img src=x onerror=\"window.__xss=1\"> & <b>not bold</b>\nConclusion: normal.";

// A page whose browser asks for fr-BE first (navigator.languages, Accept-Language, Intl).
async function frenchPage(context, size) {
  const { page, cdp } = await newPage(context, size);
  await cdp.send("Emulation.setUserAgentOverride", { userAgent: await page.evaluate(() => navigator.userAgent), acceptLanguage: "fr-BE,fr,en" });
  await cdp.send("Emulation.setLocaleOverride", { locale: "fr-BE" }).catch(() => {});
  return page;
}

// Before any account exists (USER "-"): loopback is staff, the page opens without signing in and
// offers to create the first admin.
async function openMode(context) {
  const [admin, adminPw] = optPair("--admin"), [staff, staffPw] = optPair("--staff");
  const page = await frenchPage(context, { width: 1280, height: 800 });
  await page.goto(`${base}/staff`);
  await page.waitForFunction(() => ["studies", "login"].includes(document.body.dataset.state) && document.querySelectorAll("#studies .study").length > 0, null, { timeout: 15000 }).catch(() => {});
  check("no account yet: the page opens on the study list without a sign-in", await page.evaluate(() => document.body.dataset.state) === "studies" && await page.isHidden("#login"));
  check("no account yet: the header says local access, no sign-out", /accès local/i.test(await page.textContent("#me-name")) && await page.isHidden("#logout"), await page.textContent("#me-name"));
  const fr = await page.evaluate(() => ({ lang: document.documentElement.lang, nav: navigator.languages.join(), search: document.querySelector("#search button[type=submit]").textContent,
    ph: document.getElementById("q").placeholder, boot: document.getElementById("boot-title").textContent, count: document.getElementById("count").textContent,
    date: document.querySelector("#studies .s-date").textContent, sel: document.getElementById("ui-lang").value }));
  check("fr-BE browser: the page is in French (labels, placeholder, count, the language switcher)", fr.lang === "fr" && fr.search === "Rechercher" && /Nom du patient/.test(fr.ph)
    && /examens affichés, d'autres disponibles/.test(fr.count) && fr.sel === "fr", JSON.stringify(fr));
  check("fr-BE browser: study dates in French (\"1 déc. 2026\")", /^\d{1,2} [a-zéû]+\.? \d{4}$/.test(fr.date) && /(janv|févr|mars|avr|mai|juin|juil|août|sept|oct|nov|déc)/.test(fr.date), fr.date);
  check("no account yet: a banner asks to create the first admin account", await page.isVisible("#boot") && /Aucun compte n'existe encore/.test(fr.boot), fr.boot);
  if (shots) await page.screenshot({ path: path.join(shots, "staff-bootstrap.png") });

  // paging: newest first, 50 at a time, "more available" until the end
  const pages = [await page.evaluate(() => document.querySelectorAll("#studies .study").length)];
  while (await page.isVisible("#more") && pages.length < 10) {
    const before = pages[pages.length - 1];
    await page.click("#more");
    await page.waitForFunction((k) => document.querySelectorAll("#studies .study").length > k, before, { timeout: 15000 }).catch(() => {});
    pages.push(await page.evaluate(() => document.querySelectorAll("#studies .study").length));
  }
  const list = await page.evaluate(() => ({ uids: [...document.querySelectorAll("#studies .study")].map((b) => b.dataset.uid), dates: [...document.querySelectorAll("#studies .study")].map((b) => b.dataset.date),
    count: document.getElementById("count").textContent, more: !document.getElementById("more-box").hidden }));
  const total = Number(opt("--studies"));
  check(`paging: 50 per page, "load more" until all ${total} studies, then no more`, pages[0] === 50 && pages.join() === [50, 100, total].join() && !list.more && list.count === `${total} examens`, `${pages} ${list.count}`);
  check("paging: newest first, no study twice", list.dates.every((d, i) => i === 0 || list.dates[i - 1] >= d) && new Set(list.uids).size === list.uids.length, list.dates.slice(0, 8).join());

  // the first admin, from the banner's form
  await page.fill("#boot-user", admin);
  await page.fill("#boot-pass", adminPw);
  await page.fill("#boot-pass2", adminPw + "x");
  await page.click("#boot-go");
  check("bootstrap form: two different passwords are refused before sending", /diffèrent/.test(await page.textContent("#boot-err")), await page.textContent("#boot-err"));
  await page.fill("#boot-pass2", adminPw);
  const [br] = await Promise.all([page.waitForResponse((r) => r.url().endsWith("/api/users") && r.request().method() === "POST"), page.click("#boot-go")]);
  await page.waitForFunction((n) => document.getElementById("me-name").textContent === n && document.getElementById("boot").hidden, admin, { timeout: 15000 }).catch(() => {});
  check("bootstrap form: 201, the admin is created and signed in, the banner gone", br.status() === 201 && (await page.textContent("#me-name")) === admin && await page.isHidden("#boot")
    && await page.evaluate(() => window.radshareStaff.state.role) === "admin" && await page.isVisible("#users-btn"), br.status());

  // the admin adds the staff accounts
  await page.click("#users-btn");
  await page.waitForFunction(() => document.querySelectorAll("#users .user").length === 1, null, { timeout: 10000 }).catch(() => {});
  check("users: the admin sees the account list (just themself)", await page.evaluate(() => document.querySelectorAll("#users .user").length) === 1);
  const addUser = async (name, pw, role) => {
    await page.fill("#u-name", name); await page.fill("#u-pass", pw); await page.selectOption("#u-role", role);
    const [r] = await Promise.all([page.waitForResponse((x) => x.url().endsWith("/api/users") && x.request().method() === "POST"), page.click("#u-go")]);
    await page.waitForFunction((n) => document.querySelector(`#users .user[data-user="${n}"]`), name, { timeout: 10000 }).catch(() => {});
    return r.status();
  };
  await page.fill("#u-name", "trop.court"); await page.fill("#u-pass", "court");
  await page.click("#u-go");
  check("users: a short initial password is refused, in French", /Au moins 10 caractères/.test(await page.textContent("#u-msg")), await page.textContent("#u-msg"));
  check("users: the admin adds a radiologist account", await addUser(staff, staffPw, "radiologist") === 201 && /Radiologue/.test(await page.textContent(`#users .user[data-user="${staff}"]`)));
  check("users: and a second one", await addUser("dr.gone", "a password for a leaver", "radiologist") === 201);
  await page.click('#users .user[data-user="dr.gone"] .u-toggle');
  await page.waitForFunction(() => document.querySelector('#users .user[data-user="dr.gone"]')?.dataset.disabled === "true", null, { timeout: 10000 }).catch(() => {});
  check("users: disabling an account shows it disabled", await page.getAttribute('#users .user[data-user="dr.gone"]', "data-disabled") === "true"
    && /désactivé/.test(await page.textContent('#users .user[data-user="dr.gone"]')));
  check("users: no way to disable oneself", await page.locator(`#users .user[data-user="${admin}"] .u-toggle`).count() === 0);
  if (shots) await page.screenshot({ path: path.join(shots, "staff-users.png") });
  await page.click("#u-close");
  // the switcher: English again
  await Promise.all([page.waitForNavigation(), page.selectOption("#ui-lang", "en")]);
  await page.waitForFunction(() => document.body.dataset.state === "studies", null, { timeout: 15000 });
  check("the language switcher reloads the page in English, still signed in", (await page.textContent("#search button[type=submit]")) === "Search" && (await page.textContent("#me-name")) === admin
    && new URL(page.url()).searchParams.get("lang") === "en");
}

async function main() {
  mkdirSync(out, { recursive: true });
  const { context, close } = await launch();
  try {
    if (user === "-") return await openMode(context);
    const { page } = await newPage(context, { width: 1440, height: 960 });
    const dialogs = [];
    page.on("dialog", (d) => { dialogs.push(d.type()); d.dismiss().catch(() => {}); });
    await page.goto(`${base}/staff`);
    await page.waitForFunction(() => document.body.dataset.state === "login", null, { timeout: 15000 });
    check("the staff page asks to sign in (no browser Basic dialog)", await page.isVisible("#login-form") && dialogs.length === 0, dialogs.join());
    await page.fill("#login-user", user);
    await page.fill("#login-pass", "not the password");
    await page.click("#login-go");
    await page.waitForFunction(() => !document.getElementById("login-err").hidden, null, { timeout: 15000 });
    check("a wrong password is refused with a message", /wrong/i.test(await page.textContent("#login-err")));
    await page.fill("#login-pass", password);
    await page.click("#login-go");
    await page.waitForFunction(() => document.body.dataset.state === "studies" && document.querySelectorAll("#studies .study").length > 0, null, { timeout: 15000 });
    check("signed in: the user's name in the header, studies listed", (await page.textContent("#me-name")) === user);
    check("a radiologist has no account management (only their own password)", await page.isHidden("#users-btn") && await page.isVisible("#pw-btn"));
    const cookies = await context.cookies(base);
    const sess = cookies.find((c) => c.name === "radshare_session");
    check("the session cookie is HttpOnly and SameSite=Strict", sess && sess.httpOnly && sess.sameSite === "Strict", JSON.stringify(sess));

    // an injected patient name is text, not markup
    await page.fill("#q", "Evil");
    await page.click("#search button[type=submit]");
    await page.waitForFunction(() => /Evil|EVIL/.test(document.getElementById("studies").textContent), null, { timeout: 15000 });
    const evil = await page.evaluate(() => ({ text: document.getElementById("studies").textContent, imgs: document.querySelectorAll("#studies img, #studies script").length, xss: window.__xss }));
    check("a patient name holding HTML is shown as text", /<img/i.test(evil.text) && evil.imgs === 0 && evil.xss === undefined, JSON.stringify(evil));

    await page.fill("#q", "Dupont");
    await page.click("#search button[type=submit]");
    await page.waitForFunction(() => document.querySelectorAll("#studies .study").length === 1 && /DUPONT/.test(document.getElementById("studies").textContent), null, { timeout: 15000 });
    check("search by name finds the study", true);
    await page.click("#studies .study");
    await page.waitForFunction(() => document.body.dataset.state === "study" && document.getElementById("r-email").value !== "", null, { timeout: 15000 });
    check("the recipient is prefilled from the directory", (await page.inputValue("#r-email")) === "anne.dir@cabinet.example" && (await page.inputValue("#r-name")) === "Dr Anne Peeters",
      await page.inputValue("#r-email"));

    // send the report
    await page.fill("#r-text", REPORT);
    const [resp] = await Promise.all([page.waitForResponse((r) => r.url().endsWith("/reports") && r.request().method() === "POST"), page.click("#r-send")]);
    const rep = await resp.json().catch(() => ({}));
    check("Send report: 201 with the share's link", resp.status() === 201 && /\/s\/[A-Za-z0-9_-]{40,}$/.test(rep.share && rep.share.url), resp.status());
    const reportUrl = rep.share ? rep.share.url : "";
    const reportShare = rep.share ? rep.share.id : "";
    tell({ report_url: reportUrl, report_share: reportShare });
    await page.waitForFunction((id) => {
      const li = document.querySelector(`#shares li[data-id="${id}"]`);
      return li && li.querySelector('.delivery[data-status="sent"]');
    }, reportShare, { timeout: 30000 }).catch(() => {});
    const row = page.locator(`#shares li[data-id="${reportShare}"]`);
    check("the share is listed with its e-mail delivered", await row.locator('.delivery[data-status="sent"]').count() === 1, await row.textContent().catch(() => ""));
    await row.locator("button", { hasText: "History" }).click();
    const hist = await row.locator(".timeline").textContent();
    check("its history shows the link created, the report and the delivery", /Link created/.test(hist) && /Report written/.test(hist) && /Delivered/.test(hist), hist);

    // the report in the viewer, as text
    const { page: viewer } = await newPage(context, { width: 1280, height: 800 });
    await viewer.goto(reportUrl);
    await viewer.waitForFunction(() => ["ready", "error"].includes(document.body.dataset.state) && document.getElementById("report-text").textContent.length > 0, null, { timeout: 30000 });
    const shown = await viewer.evaluate(() => ({ text: document.getElementById("report-text").textContent, by: document.getElementById("report-by").textContent,
      tags: document.querySelectorAll("#report-text *").length, xss: window.__xss }));
    check("the viewer shows the report text exactly, as text", shown.text === REPORT && shown.tags === 0 && shown.xss === undefined, JSON.stringify(shown));
    check("the viewer names the report's author", shown.by.includes(user), shown.by);
    await viewer.close();
    await page.click("#refresh");
    await page.waitForFunction((id) => /Opened 1 time/.test(document.querySelector(`#shares li[data-id="${id}"] .opened`).textContent), reportShare, { timeout: 15000 }).catch(() => {});
    check("the opening is in the share's access history", /Opened 1 time/.test(await row.locator(".opened").textContent()), await row.locator(".opened").textContent());

    // the patient link and its handout
    const [pr] = await Promise.all([page.waitForResponse((r) => r.url().endsWith("/api/shares") && r.request().method() === "POST"), page.click("#p-go")]);
    const pj = await pr.json().catch(() => ({}));
    check("patient link: 201, a patient share asking for the date of birth", pr.status() === 201 && pj.share && pj.share.recipient.kind === "patient" && pj.share.access_code === "birth_date", JSON.stringify(pj.share));
    await page.waitForFunction(() => document.getElementById("handout-dlg").open && document.getElementById("h-qr").complete && document.getElementById("h-qr").naturalWidth > 0, null, { timeout: 15000 });
    const hUrl = await page.textContent("#h-url");
    check("the handout shows the link and the QR code", hUrl === pj.url && (await page.textContent("#h-patient")).includes("Marie"), hUrl);
    const en = await page.textContent("#h-title");
    await page.selectOption("#h-lang", "nl");
    const nl = await page.evaluate(() => ({ title: document.getElementById("h-title").textContent, step: document.getElementById("h-code-step").textContent, exp: document.getElementById("h-exp").textContent,
      lang: document.getElementById("handout").lang, print: document.getElementById("h-print").textContent, study: document.getElementById("h-study").textContent }));
    check("the handout switches to Dutch on its own (the page stays English)", en === "Your images online" && nl.title === "Uw beelden online" && /geboortedatum/.test(nl.step)
      && /^Geldig tot /.test(nl.exp) && nl.lang === "nl" && nl.print === "Print handout", JSON.stringify(nl));
    check("the handout's dates in Dutch", /\b(jan|feb|mrt|apr|mei|jun|jul|aug|sep|okt|nov|dec)\.? 20\d\d/.test(nl.study + " " + nl.exp), nl.study + " | " + nl.exp);
    const qrPng = path.join(out, "handout.png");
    await page.locator("#handout").screenshot({ path: qrPng });
    if (shots) await page.screenshot({ path: path.join(shots, "staff-handout.png") });
    await page.emulateMedia({ media: "print" });
    const printed = await page.evaluate(() => ({ work: getComputedStyle(document.getElementById("main")).display, handout: getComputedStyle(document.getElementById("handout")).display,
      lang: getComputedStyle(document.querySelector(".dlg-actions")).display, title: document.getElementById("h-title").textContent }));
    check("printing shows the handout alone, in Dutch", printed.work === "none" && printed.handout !== "none" && printed.lang === "none" && printed.title === "Uw beelden online", JSON.stringify(printed));
    if (shots) await page.screenshot({ path: path.join(shots, "print-preview.png"), fullPage: true });
    await page.emulateMedia({ media: "screen" });
    tell({ patient_url: pj.url, qr_png: qrPng });
    await page.click("#h-close");
    check("closing the handout forgets the link", (await page.textContent("#h-url")) === "" && !(await page.evaluate(() => document.getElementById("handout-dlg").open)));

    // a link for a colleague, with an access code: shown once, to copy
    await page.check("#p-for-colleague");
    await page.fill("#c-name", "Dr Second Opinion");
    await page.fill("#c-code", "7391-22");
    const [cr] = await Promise.all([page.waitForResponse((r) => r.url().endsWith("/api/shares") && r.request().method() === "POST"), page.click("#p-go")]);
    const cj = await cr.json().catch(() => ({}));
    const shownUrl = await page.inputValue("#c-url");
    check("colleague link: 201, a practitioner share with a code, its link shown to copy (no QR)", cr.status() === 201 && cj.share.recipient.kind === "practitioner"
      && cj.share.access_code === "code" && !cj.qr_svg && shownUrl === cj.url && await page.isVisible("#c-link"), JSON.stringify(cj.share));
    const { page: col } = await newPage(context, { width: 1280, height: 800 });
    await col.goto(shownUrl);
    await col.waitForFunction(() => ["code", "ready", "error"].includes(document.body.dataset.state), null, { timeout: 15000 });
    check("the colleague's link asks for the access code", await col.evaluate(() => document.body.dataset.state) === "code");
    await col.close();
    await page.check("#p-for-patient");
    check("switching back forgets the colleague's link", await page.inputValue("#c-url") === "" && await page.isHidden("#c-link"));

    // screenshots of the page at work
    if (shots) {
      await page.click("#refresh");
      await page.fill("#r-text", "MRI of the left knee, 2 series.\n\nFindings: menisci intact. Cruciate and collateral ligaments normal. Small joint effusion. No bone marrow oedema.\n\nConclusion: no internal derangement; small effusion.");
      await page.waitForTimeout(400);
      await page.evaluate(() => window.scrollTo(0, 0));
      await page.screenshot({ path: path.join(shots, "staff-desktop.png"), fullPage: true });
    }

    // revocation
    await row.locator("button.revoke").click();
    await page.waitForFunction(() => document.getElementById("confirm-dlg").open, null, { timeout: 5000 });
    await page.click("#confirm-yes");
    await page.waitForFunction((id) => document.querySelector(`#shares li[data-id="${id}"]`)?.dataset.state === "revoked", reportShare, { timeout: 15000 }).catch(() => {});
    check("revoked: the share says so", (await row.getAttribute("data-state")) === "revoked" && await row.locator("button.revoke").count() === 0);
    const { page: again } = await newPage(context, { width: 1280, height: 800 });
    const r410 = await again.goto(reportUrl);
    check("the revoked link now refuses: 410 with a page saying so", r410.status() === 410 && /withdrawn/i.test(await again.textContent("body")), r410.status());
    await again.close();

    // phone
    const { page: phone } = await newPage(context, { width: 390, height: 844, dpr: 3, mobile: true });
    await phone.goto(`${base}/staff`);
    await phone.waitForFunction(() => document.body.dataset.state === "studies" && document.querySelectorAll("#studies .study").length > 0, null, { timeout: 15000 });
    const wide = await phone.evaluate(() => document.documentElement.scrollWidth <= innerWidth + 1);
    check("phone: the study list fits the screen (no horizontal scrolling)", wide);
    if (shots) await phone.screenshot({ path: path.join(shots, "staff-phone-list.png") });
    await phone.fill("#q", "Dupont");
    await phone.click("#search button[type=submit]");
    await phone.waitForFunction(() => document.querySelectorAll("#studies .study").length === 1, null, { timeout: 15000 });
    await phone.click("#studies .study");
    await phone.waitForFunction(() => document.body.dataset.state === "study" && document.querySelectorAll("#shares li").length >= 2, null, { timeout: 15000 });
    const lay = await phone.evaluate(() => ({ list: getComputedStyle(document.getElementById("list-pane")).display, back: getComputedStyle(document.getElementById("back")).display,
      fits: document.documentElement.scrollWidth <= innerWidth + 1 }));
    check("phone: the study replaces the list, with a way back, and fits", lay.list === "none" && lay.back !== "none" && lay.fits, JSON.stringify(lay));
    if (shots) {
      await phone.screenshot({ path: path.join(shots, "staff-phone.png") });
      await phone.locator("#shares").scrollIntoViewIfNeeded();
      await phone.screenshot({ path: path.join(shots, "staff-phone-shares.png") });
    }
    await phone.click("#back");
    check("phone: back to the list", await phone.isVisible("#list-pane"));

    // one's own password
    const newPw = opt("--new-password");
    if (newPw) {
      await page.click("#pw-btn");
      await page.fill("#pw-current", "not my password"); await page.fill("#pw-new", newPw); await page.fill("#pw-new2", newPw);
      const pwMsg = (re) => page.waitForFunction((src) => new RegExp(src).test(document.getElementById("pw-msg").textContent), re.source, { timeout: 10000 }).catch(() => {});
      const [w] = await Promise.all([page.waitForResponse((r) => r.url().endsWith("/password")), page.click("#pw-go")]);
      await pwMsg(/current password is not right/);
      check("my password: a wrong current password is refused (403, said so)", w.status() === 403 && /current password is not right/.test(await page.textContent("#pw-msg")), w.status());
      await page.fill("#pw-current", password);
      const [g] = await Promise.all([page.waitForResponse((r) => r.url().endsWith("/password")), page.click("#pw-go")]);
      await pwMsg(/Password saved/);
      check("my password: changed with the right current one", g.status() === 200 && /Password saved/.test(await page.textContent("#pw-msg")), g.status());
      await page.click("#pw-cancel");
      const still = await page.evaluate(() => fetch("/api/session").then((r) => r.json()));
      check("my password: this session goes on", still.user === user, JSON.stringify(still));
    }

    // sign out
    await page.click("#logout");
    await page.waitForFunction(() => document.body.dataset.state === "login", null, { timeout: 10000 });
    const after = await page.evaluate(() => fetch("/api/shares", { headers: { "X-Requested-With": "x" } }).then((r) => r.status));
    check("signed out: the API refuses the page", after === 401, after);
    if (newPw) {
      await page.fill("#login-user", user); await page.fill("#login-pass", newPw);
      await page.click("#login-go");
      await page.waitForFunction(() => document.body.dataset.state === "studies", null, { timeout: 15000 }).catch(() => {});
      check("signed in again with the new password", (await page.textContent("#me-name")) === user);
      await page.click("#logout");
    }
  } catch (e) {
    check("staff page checks ran without an exception", false, e.stack || e);
  } finally {
    await close();
  }
  console.log(`# ${n - failed} passed, ${failed} failed`);
  process.exit(failed ? 1 : 0);
}

main();
