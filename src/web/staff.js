// staff.js - the staff page (/staff, docs/staff.md): sign-in, study search, report sending, share
// links (practitioner and patient), their deliveries and access history, revocation, and the patient
// handout with the link as a QR code (printed in the patient's language), staff accounts for admins,
// the first admin account on the loopback bootstrap. Labels in en/fr/nl/de through the viewer's
// i18n.js (staff-i18n.js adds the page's own). Talks only to radshare's staff API with the session cookie;
// every request says X-Requested-With (so a 401 comes without a Basic challenge, and no browser
// dialog). Every piece of data goes into the page with textContent or as an attribute: no HTML
// is ever parsed from data.
import { t, lang, LANGS, fmtDate, fmtIso, fmtName, fmtSex, age } from "/viewer/i18n.js";
import "/viewer/staff-i18n.js";

const $ = (id) => document.getElementById(id);
const PAGE = 50; // studies per page of the list
const S = { user: null, role: null, open: false, studies: [], more: false, query: null, study: null, shares: [], deliveries: [], audit: [],
  qrUrl: null, handout: null, users: [], pwFor: null };

// The page's fixed labels, in lng: data-i18n (text), data-i18n-ph (placeholder), -aria, -alt.
// The handout has its own language (the patient's), so the rest of the page skips it.
function translate(root, lng, skip = null) {
  const all = (attr) => [...root.querySelectorAll(`[${attr}]`)].filter((e) => !skip || !skip.contains(e));
  for (const e of all("data-i18n")) e.textContent = t(e.dataset.i18n, {}, lng);
  for (const e of all("data-i18n-ph")) e.placeholder = t(e.dataset.i18nPh, {}, lng);
  for (const e of all("data-i18n-aria")) e.setAttribute("aria-label", t(e.dataset.i18nAria, {}, lng));
  for (const e of all("data-i18n-alt")) e.alt = t(e.dataset.i18nAlt, {}, lng);
}

function langOptions(select, value) {
  select.replaceChildren(...Object.entries(LANGS).map(([k, name]) => el("option", { value: k, lang: k, text: name })));
  select.value = value;
}

// The UI language comes from ?lang= or the browser (i18n.js); the switcher reloads with ?lang=,
// the session cookie keeps one signed in.
function switchLang() {
  const u = new URL(location.href);
  u.searchParams.set("lang", $("ui-lang").value);
  location.replace(u.toString());
}

// ---- DOM without HTML strings ------------------------------------------------------------------
function el(tag, props = {}, ...kids) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(props)) {
    if (v === undefined || v === null || v === false) continue;
    if (k === "class") e.className = v;
    else if (k === "text") e.textContent = v;
    else if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
    else e.setAttribute(k, v === true ? "" : String(v));
  }
  for (const c of kids.flat()) if (c !== null && c !== undefined && c !== false) e.append(c instanceof Node ? c : String(c));
  return e;
}

function setMsg(node, text, kind = "") {
  node.textContent = text || "";
  node.className = "msg" + (kind ? " " + kind : "");
  node.hidden = !text;
}

// ---- the API --------------------------------------------------------------------------------------
class ApiError extends Error {
  constructor(status, message) { super(message); this.status = status; }
}

async function api(method, path, body) {
  const headers = { "X-Requested-With": "radshare-staff", Accept: "application/json" };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const r = await fetch(path, { method, headers, credentials: "same-origin", cache: "no-store",
    body: body === undefined ? undefined : JSON.stringify(body) });
  let data = null;
  try { data = await r.json(); } catch { data = null; }
  if (r.status === 401 && !path.startsWith("/api/login")) { showLogin(); throw new ApiError(401, t("sPleaseSignIn")); }
  if (!r.ok) throw new ApiError(r.status, (data && (data.error || data.message)) || `${r.status} ${r.statusText}`);
  return data;
}

// ---- session ----------------------------------------------------------------------------------------
async function start() {
  document.documentElement.lang = lang;
  translate(document, lang, $("handout"));
  langOptions($("ui-lang"), lang);
  bind();
  try {
    const s = await api("GET", "/api/session");
    S.user = s.user; S.role = s.role || null; S.open = !!s.open;
    if (S.user || S.open) enter(); else showLogin();
  } catch (e) { showLogin(e.message); }
}

function showLogin(err) {
  $("work").hidden = true; $("me").hidden = true; $("login").hidden = false; $("boot").hidden = true;
  setMsg($("login-err"), err && err !== t("sPleaseSignIn") ? err : "", "err");
  document.body.dataset.state = "login";
  $("login-user").focus();
}

function enter() {
  $("login").hidden = true; $("work").hidden = false; $("me").hidden = false;
  $("me-name").textContent = S.user ? S.user : t("sLocalAccess");
  $("logout").hidden = !S.user; $("pw-btn").hidden = !S.user;
  $("users-btn").hidden = S.role !== "admin";
  // no account at all: this machine's browser is let in, and asked to create the first admin
  $("boot").hidden = !!S.user || !S.open;
  document.body.dataset.state = "studies";
  search();
}

// The loopback bootstrap's form: the first admin account, then signed in with it.
async function bootstrap(ev) {
  ev.preventDefault();
  const name = $("boot-user").value.trim(), pw = $("boot-pass").value;
  const bad = newPasswordProblem(pw, $("boot-pass2").value) || (!name && t("sNameNeeded"));
  if (bad) { setMsg($("boot-err"), bad, "err"); return; }
  $("boot-go").disabled = true;
  setMsg($("boot-err"), "");
  try {
    await api("POST", "/api/users", { name, password: pw, role: "admin" });
    const r = await api("POST", "/api/login", { user: name, password: pw });
    S.user = r.user; S.role = r.role; S.open = false;
    $("boot-pass").value = ""; $("boot-pass2").value = "";
    enter();
  } catch (e) { setMsg($("boot-err"), e.message, "err"); }
  finally { $("boot-go").disabled = false; }
}

async function login(ev) {
  ev.preventDefault();
  const go = $("login-go");
  go.disabled = true;
  setMsg($("login-err"), "");
  try {
    const r = await api("POST", "/api/login", { user: $("login-user").value.trim(), password: $("login-pass").value });
    S.user = r.user; S.role = r.role; $("login-pass").value = "";
    enter();
  } catch (e) {
    setMsg($("login-err"), e.status === 401 ? t("sWrongLogin") : e.status === 429 ? t("sTooManyLogins") : e.message, "err");
  } finally { go.disabled = false; }
}

async function logout() {
  try { await api("POST", "/api/logout", {}); } catch { /* the cookie is cleared either way */ }
  S.user = null; S.role = null; S.study = null;
  showLogin();
}

// ---- studies ---------------------------------------------------------------------------------------
const images = (k) => (k === 1 ? t("image1") : t("images", { n: k }));
const dicomDate = (v) => String(v || "").replace(/-/g, "");
const noName = (pn, familyFirst) => fmtName(pn, familyFirst) || t("sNoName");

// One page of the list: the server gives studies newest first; one more than a page tells whether
// there are more.
async function fetchPage(p, offset) {
  p.set("limit", String(PAGE + 1)); p.set("offset", String(offset));
  const rows = await api("GET", `/api/studies?${p}`);
  return { rows: rows.slice(0, PAGE), more: rows.length > PAGE };
}

async function search(ev) {
  if (ev) ev.preventDefault();
  const q = $("q").value.trim(), p = new URLSearchParams();
  // one box: an accession or patient ID is tried as such when it has digits, else it is a name
  if (q) p.set(/\d/.test(q) && !/\s/.test(q) ? "patient_id" : "name", q);
  if ($("from").value) p.set("from", dicomDate($("from").value));
  if ($("to").value) p.set("to", dicomDate($("to").value));
  if ($("modality").value) p.set("modality", $("modality").value);
  $("count").textContent = t("sSearching");
  try {
    let pg = await fetchPage(p, 0);
    if (q && !pg.rows.length && p.has("patient_id")) { // maybe an accession number, or a name with digits
      p.delete("patient_id"); p.set("accession", q);
      pg = await fetchPage(p, 0);
      if (!pg.rows.length) { p.delete("accession"); p.set("name", q); pg = await fetchPage(p, 0); }
    }
    S.query = p; S.studies = pg.rows; S.more = pg.more;
    renderStudies();
  } catch (e) { $("count").textContent = e.message; }
}

async function loadMore() {
  const btn = $("more"), p = S.query;
  if (!p) return;
  btn.disabled = true;
  try {
    const pg = await fetchPage(p, S.studies.length);
    if (S.query !== p) return; // a new search started meanwhile
    const seen = new Set(S.studies.map((x) => x.uid)); // a study stored meanwhile may shift the pages
    S.studies.push(...pg.rows.filter((x) => !seen.has(x.uid))); S.more = pg.more;
    renderStudies();
  } catch (e) { $("count").textContent = e.message; }
  finally { btn.disabled = false; }
}

function renderStudies() {
  const ul = $("studies"), k = S.studies.length;
  ul.replaceChildren();
  $("count").textContent = !k ? t("sNoMatch") : S.more ? t("sCountMore", { n: k }) : k === 1 ? t("sCount1") : t("sCount", { n: k });
  $("more-box").hidden = !S.more;
  for (const st of S.studies) {
    const sel = S.study && S.study.uid === st.uid;
    ul.append(el("li", {},
      el("button", { class: "study" + (sel ? " sel" : ""), type: "button", "aria-pressed": String(!!sel), "data-uid": st.uid, "data-date": st.date || "", onclick: () => openStudy(st.uid) },
        el("span", { class: "s-top" }, el("span", { class: "s-name", text: noName(st.patient_name, true) }), el("span", { class: "s-date", text: fmtDate(st.date) })),
        el("span", { class: "s-desc", text: st.description || t("sNoDesc") }),
        el("span", { class: "s-meta" },
          (st.modalities || []).map((m) => el("span", { class: "mod", text: m })),
          el("span", { class: "dim", text: [st.patient_id && `${t("id")} ${st.patient_id}`, st.accession && t("sAcc", { v: st.accession }), images(st.instances || 0)].filter(Boolean).join(" · ") })))));
  }
}

async function openStudy(uid) {
  const st = S.studies.find((x) => x.uid === uid) || { uid };
  S.study = st;
  renderStudies();
  document.body.classList.add("has-study");
  $("empty-detail").hidden = true; $("study").hidden = false;
  $("s-name").textContent = noName(st.patient_name, true);
  $("s-pt").textContent = [st.birth_date && `${t("born")} ${fmtDate(st.birth_date)}`, age(st.birth_date, st.date), fmtSex(st.sex), st.patient_id && `${t("id")} ${st.patient_id}`].filter(Boolean).join(" · ");
  $("s-study").textContent = [fmtDate(st.date, st.time), st.description, st.accession && `${t("accession")} ${st.accession}`, st.referring && t("sReferredBy", { name: fmtName(st.referring) })].filter(Boolean).join(" · ");
  $("s-mods").replaceChildren(...(st.modalities || []).map((m) => el("li", { class: "mod", text: m })), el("li", { class: "dim", text: `${t("sSeriesCount", { n: st.series || 0 })}, ${images(st.instances || 0)}` }));
  // a fresh form per study
  $("r-text").value = ""; $("r-name").value = ""; $("r-email").value = ""; $("r-hl7").value = "";
  setMsg($("r-msg"), ""); setMsg($("p-msg"), "");
  $("p-for-patient").checked = true; linkKind(); $("c-name").value = ""; $("c-email").value = ""; $("c-code").value = "";
  $("p-name").value = fmtName(st.patient_name) || "";
  $("p-bd").disabled = !st.birth_date; $("p-bd").checked = !!st.birth_date;
  $("p-bd-label").textContent = st.birth_date ? t("sAskBirth", { d: fmtDate(st.birth_date) }) : t("sAskBirthNone");
  document.body.dataset.state = "study";
  window.scrollTo({ top: 0 });
  await refresh(true);
}

// Shares, deliveries and the audit trail of the open study; prefill the recipient the first time.
async function refresh(prefill = false) {
  const st = S.study;
  if (!st) return;
  const uid = encodeURIComponent(st.uid);
  try {
    const [sh, rep, au] = await Promise.all([api("GET", `/api/shares?study=${uid}`), api("GET", `/api/studies/${uid}/reports`), api("GET", `/api/studies/${uid}/audit`)]);
    if (S.study !== st) return;
    S.shares = sh.shares || []; S.deliveries = rep.deliveries || []; S.audit = au.records || [];
    if (prefill) {
      const r = rep.recipient;
      if (r) { $("r-name").value = r.name || ""; $("r-email").value = r.email || ""; $("r-hl7").value = r.hl7 || ""; }
      $("r-hint").textContent = r ? t("sFromDirectory", { name: fmtName(rep.referring) }) : rep.referring ? t("sNotInDirectory", { name: fmtName(rep.referring) }) : "";
    }
    renderShares(); renderActivity();
  } catch (e) { setMsg($("r-msg"), e.message, "err"); }
}

// ---- sending the report ----------------------------------------------------------------------------
async function sendReport(ev) {
  ev.preventDefault();
  const text = $("r-text").value.trim();
  if (!text) { setMsg($("r-msg"), t("sWriteFirst"), "err"); $("r-text").focus(); return; }
  const recipient = { name: $("r-name").value.trim(), email: $("r-email").value.trim(), hl7: $("r-hl7").value.trim() };
  if (!recipient.email && !recipient.hl7) { setMsg($("r-msg"), t("sGiveRecipient"), "err"); return; }
  const btn = $("r-send");
  btn.disabled = true;
  setMsg($("r-msg"), t("sSending"));
  try {
    const r = await api("POST", `/api/studies/${encodeURIComponent(S.study.uid)}/reports`,
      { text, recipient, expires_in_days: +$("r-days").value || 30, download: $("r-dl").checked });
    const ch = (r.deliveries || []).map((d) => t(d.channel === "email" ? "sEmailTo" : "sHl7To", { r: d.recipient })).join(t("sAnd"));
    setMsg($("r-msg"), t("sQueued", { ch: ch || t("sDelivery") }), "ok");
    $("r-text").value = "";
    await refresh();
    pollDeliveries();
  } catch (e) { setMsg($("r-msg"), e.message, "err"); }
  finally { btn.disabled = false; }
}

// Follow pending deliveries for a while (the outbox sends within seconds when the relay is up).
let pollTimer = 0;
function pollDeliveries(n = 0) {
  clearTimeout(pollTimer);
  if (n > 30 || !S.deliveries.some((d) => d.status === "pending")) return;
  pollTimer = setTimeout(async () => { await refresh(); pollDeliveries(n + 1); }, 1000 + n * 300);
}

// ---- the patient link and its handout -----------------------------------------------------------------
const forPatient = () => $("p-for-patient").checked;

function linkKind() {
  const p = forPatient();
  $("p-patient").hidden = !p; $("p-colleague").hidden = p;
  $("p-intro").textContent = t(p ? "sIntroPatient" : "sIntroColleague");
  $("p-go").textContent = t(p ? "sCreateHandout" : "sCreateLink");
  forgetLink();
  setMsg($("p-msg"), "");
}

// The colleague's link is on the page until the study changes or another link is made.
function forgetLink() { $("c-url").value = ""; $("c-link").hidden = true; }

async function createLink(ev) {
  ev.preventDefault();
  const st = S.study, btn = $("p-go"), patient = forPatient();
  btn.disabled = true;
  forgetLink();
  setMsg($("p-msg"), t("sCreating"));
  try {
    const body = { study: st.uid, expires_in_days: +$("p-days").value || 30, download: $("p-dl").checked };
    if (patient) {
      Object.assign(body, { recipient: { kind: "patient", name: $("p-name").value.trim() }, purpose: "patient handout", qr: true });
      if ($("p-bd").checked && st.birth_date) body.birth_date = st.birth_date;
    } else {
      Object.assign(body, { recipient: { kind: "practitioner", name: $("c-name").value.trim(), email: $("c-email").value.trim() }, purpose: "colleague" });
      if ($("c-code").value.trim()) body.access_code = $("c-code").value.trim();
    }
    const r = await api("POST", "/api/shares", body);
    if (patient) {
      setMsg($("p-msg"), t("sCreatedPatient"), "ok");
      showHandout(r, st, !!body.birth_date);
    } else {
      setMsg($("p-msg"), t(body.access_code ? "sCreatedCode" : "sCreatedCopy"), "ok");
      $("c-url").value = r.url; $("c-link").hidden = false; $("c-code").value = "";
      $("c-url").select();
    }
    await refresh();
  } catch (e) { setMsg($("p-msg"), e.message, "err"); }
  finally { btn.disabled = false; }
}

async function copyLink() {
  const u = $("c-url");
  u.select();
  try { await navigator.clipboard.writeText(u.value); } catch { document.execCommand("copy"); }
  $("c-copy").textContent = t("sCopied");
  setTimeout(() => { $("c-copy").textContent = t("sCopy"); }, 1500);
}

function showHandout(r, st, needsBirthDate) {
  if (S.qrUrl) URL.revokeObjectURL(S.qrUrl);
  // the server's SVG goes in as an image (never parsed into this page), through a blob: URL
  S.qrUrl = r.qr_svg ? URL.createObjectURL(new Blob([r.qr_svg], { type: "image/svg+xml" })) : null;
  $("h-qr").hidden = !S.qrUrl;   // no code (a link too long for one): the written address remains
  if (S.qrUrl) $("h-qr").src = S.qrUrl;
  $("h-patient").textContent = $("p-name").value.trim() || fmtName(st.patient_name);
  $("h-url").textContent = r.url;
  $("h-code-step").hidden = !needsBirthDate;
  S.handout = { study: st, expires: r.share && r.share.expires };
  langOptions($("h-lang"), lang);
  renderHandout();
  document.body.dataset.state = "handout";
  $("handout-dlg").showModal();
}

// The handout in the language chosen for the patient (by default the page's).
function renderHandout() {
  const hl = $("h-lang").value || lang, h = S.handout;
  if (!h) return;
  $("handout").lang = hl;
  translate($("handout"), hl);
  $("h-study").textContent = [h.study.description, fmtDate(h.study.date, "", hl)].filter(Boolean).join(" · ");
  $("h-exp").textContent = h.expires ? t("hValid", { d: fmtIso(h.expires, hl) }, hl) : "";
}

function closeHandout() {
  $("handout-dlg").close();
  // the only copy of the link in this page goes away with the dialog
  $("h-url").textContent = ""; $("h-qr").removeAttribute("src");
  if (S.qrUrl) { URL.revokeObjectURL(S.qrUrl); S.qrUrl = null; }
  S.handout = null;
  document.body.dataset.state = "study";
}

// ---- shares, deliveries, history ----------------------------------------------------------------------
const EVENTS = {
  "share.created": "evShareCreated", "report.created": "evReportCreated", "share.delivered": "evDelivered",
  "share.delivery_failed": "evDeliveryFailed", "share.opened": "evOpened", "study.viewed": "evStudyViewed",
  "images.viewed": "evImagesViewed", "share.downloaded": "evDownloaded", "study.download": "evDownloaded",
  "share.revoked": "evRevoked", "access.refused": "evRefused", "access.out_of_scope": "evOutOfScope",
  "access.code_wrong": "evCodeWrong", "access.code_locked": "evCodeLocked", "access.unlocked": "evUnlocked",
};
const eventLabel = (e) => (EVENTS[e] ? t(EVENTS[e]) : e);
const eventKind = (e) => (e === "share.delivered" || e === "access.unlocked" ? "ok" : e.startsWith("access.") || e.endsWith("failed") ? "bad" : e === "share.revoked" ? "warn" : "");

function shareState(s) {
  if (s.revoked) return ["revoked", "warn"];
  if (Date.parse(s.expires) < Date.now()) return ["expired", "muted"];
  return ["active", "ok"];
}

function deliveryChip(d) {
  const what = d.channel === "email" ? t("sEmail") : "HL7";
  const label = { sent: t("dDelivered"), pending: d.attempts ? t("dRetrying", { n: d.attempts }) : t("dQueued"), failed: t("dFailed"), cancelled: t("dCancelled") }[d.status] || d.status;
  const kind = { sent: "ok", pending: "pending", failed: "bad", cancelled: "muted" }[d.status] || "";
  const when = d.status === "sent" && d.sent_at ? ` ${fmtIso(d.sent_at)}` : "";
  return el("li", { class: `chip ${kind} delivery`, "data-status": d.status, title: d.last_error || "" },
    `${what} ${label}${when}`, el("span", { class: "chip-to", text: ` · ${d.recipient}` }));
}

function renderShares() {
  const ul = $("shares");
  ul.replaceChildren();
  $("no-shares").hidden = S.shares.length > 0;
  for (const s of S.shares) {
    const [state, kind] = shareState(s);
    const events = S.audit.filter((a) => a.share === s.id);
    const opened = events.filter((a) => a.event === "share.opened");
    const last = opened.length ? opened[opened.length - 1] : null;
    const dels = S.deliveries.filter((d) => d.share === s.id);
    const rec = s.recipient || {};
    const hist = el("ol", { class: "timeline small", hidden: true });
    hist.append(...events.slice().reverse().map(eventItem));
    const toggle = el("button", { class: "btn ghost small history", type: "button", "aria-expanded": "false", text: t("sHistory", { n: events.length }) });
    toggle.addEventListener("click", () => { hist.hidden = !hist.hidden; toggle.setAttribute("aria-expanded", String(!hist.hidden)); });
    const revoke = s.revoked ? null : el("button", { class: "btn danger small revoke", type: "button", text: t("sRevoke"), onclick: () => revokeShare(s) });
    ul.append(el("li", { class: "share", "data-id": s.id, "data-state": state },
      el("div", { class: "share-top" },
        el("div", { class: "share-who" },
          el("span", { class: "share-name", text: rec.name || rec.email || t("sNoName") }),
          el("span", { class: `kind ${rec.kind}`, text: t(rec.kind === "patient" ? "sPatient" : "sPractitioner") }),
          el("span", { class: `chip ${kind} state`, text: t("st_" + state) })),
        el("div", { class: "share-actions" }, toggle, revoke)),
      el("p", { class: "dim share-meta", text: [rec.email, s.purpose, t("sCreatedBy", { d: fmtIso(s.created), u: s.created_by }),
        s.revoked ? t("sRevokedBy", { d: fmtIso(s.revoked.at), u: s.revoked.by }) : t("sExpiresOn", { d: fmtIso(s.expires) }),
        s.access_code === "birth_date" ? t("sBirthAsked") : s.access_code === "code" ? t("sCodeSet") : "", t(s.download ? "sDlAllowed" : "sViewOnly")].filter(Boolean).join(" · ") }),
      dels.length ? el("ul", { class: "chips" }, dels.map(deliveryChip)) : null,
      el("p", { class: "opened", text: opened.length ? t(opened.length === 1 ? "sOpened1" : "sOpenedN", { n: opened.length, d: fmtIso(last.time) }) + (last.addr ? t("sFromAddr", { a: last.addr }) : "") : t("sNotOpened") }),
      hist));
  }
}

function eventItem(a) {
  const d = a.detail || {};
  const extra = [d.channel && t(d.channel === "email" ? "sEmailTo" : "sHl7To", { r: d.recipient }), d.error, d.reason, d.by && t("sBy", { u: d.by }), a.addr, d.instances && t("sInstances", { n: d.instances })].filter(Boolean).join(" · ");
  return el("li", { class: `ev ${eventKind(a.event)}`, "data-event": a.event },
    el("time", { datetime: a.time, text: fmtIso(a.time) }), el("span", { class: "ev-what", text: eventLabel(a.event) }), extra ? el("span", { class: "dim ev-extra", text: extra }) : null);
}

function renderActivity() {
  const ol = $("activity");
  const recs = S.audit.slice().reverse().slice(0, 200);
  ol.replaceChildren(...recs.map((a) => {
    const s = S.shares.find((x) => x.id === a.share);
    const li = eventItem(a);
    if (s) li.append(el("span", { class: "ev-share", text: (s.recipient && (s.recipient.name || s.recipient.email)) || s.id }));
    return li;
  }));
  if (!recs.length) ol.append(el("li", { class: "dim", text: t("sNothingYet") }));
}

function confirmDialog(text) {
  return new Promise((resolve) => {
    const dlg = $("confirm-dlg");
    $("confirm-text").textContent = text;
    dlg.returnValue = "";
    dlg.addEventListener("close", () => resolve(dlg.returnValue === "yes"), { once: true });
    dlg.showModal();
  });
}

async function revokeShare(s) {
  const who = (s.recipient && (s.recipient.name || s.recipient.email)) || t("sThisRecipient");
  if (!(await confirmDialog(t("sRevokeConfirm", { who })))) return;
  try { await api("DELETE", `/api/shares/${encodeURIComponent(s.id)}`); } catch (e) { setMsg($("r-msg"), e.message, "err"); }
  await refresh();
}

// ---- staff accounts ------------------------------------------------------------------------------------
// The same rule as the server's (auth_user_add): said here first, in the page's language.
const MIN_PASSWORD = 10;
function newPasswordProblem(pw, again) {
  if (pw.length < MIN_PASSWORD) return t("sPasswordRule");
  if (pw !== again) return t("sPwMismatch");
  return "";
}

async function openUsers() {
  setMsg($("u-msg"), "");
  $("users-dlg").showModal();
  await loadUsers();
}

async function loadUsers() {
  try {
    S.users = (await api("GET", "/api/users")).users || [];
    renderUsers();
  } catch (e) { setMsg($("u-msg"), e.message, "err"); }
}

function renderUsers() {
  $("users").replaceChildren(...S.users.map((u) => {
    const me = u.name === S.user;
    const toggle = me ? null : el("button", { class: `btn small ${u.disabled ? "" : "danger"} u-toggle`, type: "button", text: t(u.disabled ? "sEnable" : "sDisable"),
      onclick: () => userAction(u, u.disabled ? "enable" : "disable") });
    const reset = el("button", { class: "btn small ghost u-reset", type: "button", text: t("sResetPassword"), onclick: () => openPassword(u.name) });
    return el("li", { class: "user", "data-user": u.name, "data-disabled": String(u.disabled) },
      el("div", { class: "u-who" }, el("span", { class: "u-name", text: u.name + (me ? ` ${t("sYou")}` : "") }),
        el("span", { class: `kind ${u.role}`, text: t(u.role === "admin" ? "sRoleAdmin" : "sRoleRadiologist") }),
        el("span", { class: `chip ${u.disabled ? "muted" : "ok"}`, text: t(u.disabled ? "sUserDisabled" : "sUserActive") }),
        el("span", { class: "dim u-since", text: t("sSince", { d: fmtIso(new Date(u.created * 1000).toISOString()) }) })),
      el("div", { class: "share-actions" }, reset, toggle));
  }));
}

async function userAction(u, action) {
  try {
    await api("POST", `/api/users/${encodeURIComponent(u.name)}/${action}`, {});
    setMsg($("u-msg"), t(action === "disable" ? "sUserWasDisabled" : "sUserWasEnabled", { name: u.name }), "ok");
  } catch (e) { setMsg($("u-msg"), e.message, "err"); }
  await loadUsers();
}

async function addUser(ev) {
  ev.preventDefault();
  const name = $("u-name").value.trim(), pw = $("u-pass").value, role = $("u-role").value;
  const bad = (!name && t("sNameNeeded")) || (pw.length < MIN_PASSWORD && t("sPasswordRule"));
  if (bad) { setMsg($("u-msg"), bad, "err"); return; }
  $("u-go").disabled = true;
  try {
    await api("POST", "/api/users", { name, role, password: pw });
    $("u-name").value = ""; $("u-pass").value = "";
    setMsg($("u-msg"), t("sUserAdded", { name }), "ok");
    await loadUsers();
  } catch (e) { setMsg($("u-msg"), e.message, "err"); }
  finally { $("u-go").disabled = false; }
}

// name: whose password; one's own asks for the current one (the server checks it).
function openPassword(name) {
  const own = name === S.user;
  S.pwFor = name;
  $("pw-title").textContent = own ? t("sPwTitleOwn") : t("sPwTitleReset", { name });
  $("pw-current-f").hidden = !own;
  for (const id of ["pw-current", "pw-new", "pw-new2"]) $(id).value = "";
  setMsg($("pw-msg"), "");
  $("pw-dlg").showModal();
}

async function savePassword(ev) {
  ev.preventDefault();
  const pw = $("pw-new").value, own = S.pwFor === S.user;
  const bad = newPasswordProblem(pw, $("pw-new2").value);
  if (bad) { setMsg($("pw-msg"), bad, "err"); return; }
  $("pw-go").disabled = true;
  try {
    await api("POST", `/api/users/${encodeURIComponent(S.pwFor)}/password`, own ? { current: $("pw-current").value, password: pw } : { password: pw });
    for (const id of ["pw-current", "pw-new", "pw-new2"]) $(id).value = "";
    setMsg($("pw-msg"), t("sPwSaved"), "ok");
  } catch (e) { setMsg($("pw-msg"), e.status === 403 && own ? t("sPwWrongCurrent") : e.message, "err"); }
  finally { $("pw-go").disabled = false; }
}

// ---- wiring ---------------------------------------------------------------------------------------------
function bind() {
  $("login-form").addEventListener("submit", login);
  $("logout").addEventListener("click", logout);
  $("search").addEventListener("submit", search);
  $("report-form").addEventListener("submit", sendReport);
  $("patient-form").addEventListener("submit", createLink);
  $("p-for-patient").addEventListener("change", linkKind);
  $("p-for-colleague").addEventListener("change", linkKind);
  $("c-copy").addEventListener("click", copyLink);
  $("refresh").addEventListener("click", () => refresh());
  $("back").addEventListener("click", () => { document.body.classList.remove("has-study"); document.body.dataset.state = "studies"; });
  $("h-close").addEventListener("click", closeHandout);
  $("handout-dlg").addEventListener("cancel", (e) => { e.preventDefault(); closeHandout(); });
  $("h-print").addEventListener("click", () => window.print());
  $("h-lang").addEventListener("change", renderHandout);
  $("ui-lang").addEventListener("change", switchLang);
  $("more").addEventListener("click", loadMore);
  $("boot-form").addEventListener("submit", bootstrap);
  $("users-btn").addEventListener("click", openUsers);
  $("u-close").addEventListener("click", () => $("users-dlg").close());
  $("u-form").addEventListener("submit", addUser);
  $("pw-btn").addEventListener("click", () => openPassword(S.user));
  $("pw-cancel").addEventListener("click", () => $("pw-dlg").close());
  $("pw-form").addEventListener("submit", savePassword);
}

// for tests and scripts: what the page shows
window.radshareStaff = { get state() { return { phase: document.body.dataset.state, user: S.user, role: S.role, open: S.open, study: S.study && S.study.uid, shares: S.shares.length,
  studies: S.studies.length, more: S.more, lang }; }, refresh };

start();
