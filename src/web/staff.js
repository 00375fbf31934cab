// staff.js - the staff page (/staff, docs/staff.md): sign-in, study search, report sending, share
// links (practitioner and patient), their deliveries and access history, revocation, and the patient
// handout with the link as a QR code. Talks only to radshare's staff API with the session cookie;
// every request says X-Requested-With (so a 401 comes without a Basic challenge, and no browser
// dialog). Every piece of data goes into the page with textContent or as an attribute: no HTML
// is ever parsed from data.
import { fmtDate, fmtIso, fmtName, fmtSex, age } from "/viewer/i18n.js";

const $ = (id) => document.getElementById(id);
const S = { user: null, open: false, studies: [], study: null, shares: [], deliveries: [], audit: [], qrUrl: null };

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
  if (r.status === 401 && !path.startsWith("/api/login")) { showLogin(); throw new ApiError(401, "Please sign in again."); }
  if (!r.ok) throw new ApiError(r.status, (data && (data.error || data.message)) || `${r.status} ${r.statusText}`);
  return data;
}

// ---- session ----------------------------------------------------------------------------------------
async function start() {
  bind();
  try {
    const s = await api("GET", "/api/session");
    S.user = s.user; S.open = !!s.open;
    if (S.user || S.open) enter(); else showLogin();
  } catch (e) { showLogin(e.message); }
}

function showLogin(err) {
  $("work").hidden = true; $("me").hidden = true; $("login").hidden = false;
  setMsg($("login-err"), err && err !== "Please sign in again." ? err : "", "err");
  document.body.dataset.state = "login";
  $("login-user").focus();
}

function enter() {
  $("login").hidden = true; $("work").hidden = false; $("me").hidden = false;
  $("me-name").textContent = S.user ? S.user : "Local access (no accounts yet)";
  $("logout").hidden = !S.user;
  document.body.dataset.state = "studies";
  search();
}

async function login(ev) {
  ev.preventDefault();
  const go = $("login-go");
  go.disabled = true;
  setMsg($("login-err"), "");
  try {
    const r = await api("POST", "/api/login", { user: $("login-user").value.trim(), password: $("login-pass").value });
    S.user = r.user; $("login-pass").value = "";
    enter();
  } catch (e) {
    setMsg($("login-err"), e.status === 401 ? "Wrong user name or password." : e.status === 429 ? "Too many failed attempts: wait a few minutes." : e.message, "err");
  } finally { go.disabled = false; }
}

async function logout() {
  try { await api("POST", "/api/logout", {}); } catch { /* the cookie is cleared either way */ }
  S.user = null; S.study = null;
  showLogin();
}

// ---- studies ---------------------------------------------------------------------------------------
const plural = (k, word) => `${k} ${word}${k === 1 ? "" : "s"}`;
const dicomDate = (v) => String(v || "").replace(/-/g, "");

async function search(ev) {
  if (ev) ev.preventDefault();
  const q = $("q").value.trim(), p = new URLSearchParams({ limit: "100" });
  // one box: an accession or patient ID is tried as such when it has digits, else it is a name
  if (q) p.set(/\d/.test(q) && !/\s/.test(q) ? "patient_id" : "name", q);
  if ($("from").value) p.set("from", dicomDate($("from").value));
  if ($("to").value) p.set("to", dicomDate($("to").value));
  if ($("modality").value) p.set("modality", $("modality").value);
  $("count").textContent = "Searching…";
  try {
    let rows = await api("GET", `/api/studies?${p}`);
    if (q && !rows.length && p.has("patient_id")) { // maybe an accession number, or a name with digits
      p.delete("patient_id"); p.set("accession", q);
      rows = await api("GET", `/api/studies?${p}`);
      if (!rows.length) { p.delete("accession"); p.set("name", q); rows = await api("GET", `/api/studies?${p}`); }
    }
    rows.sort((a, b) => `${b.date}${b.time}`.localeCompare(`${a.date}${a.time}`));
    S.studies = rows;
    renderStudies();
  } catch (e) { $("count").textContent = e.message; }
}

function renderStudies() {
  const ul = $("studies");
  ul.replaceChildren();
  $("count").textContent = S.studies.length ? (S.studies.length === 1 ? "1 study" : `${S.studies.length} studies`) : "No study matches.";
  for (const st of S.studies) {
    const sel = S.study && S.study.uid === st.uid;
    ul.append(el("li", {},
      el("button", { class: "study" + (sel ? " sel" : ""), type: "button", "aria-pressed": String(!!sel), "data-uid": st.uid, onclick: () => openStudy(st.uid) },
        el("span", { class: "s-top" }, el("span", { class: "s-name", text: fmtName(st.patient_name, true) || "(no name)" }), el("span", { class: "s-date", text: fmtDate(st.date) })),
        el("span", { class: "s-desc", text: st.description || "(no description)" }),
        el("span", { class: "s-meta" },
          (st.modalities || []).map((m) => el("span", { class: "mod", text: m })),
          el("span", { class: "dim", text: [st.patient_id && `ID ${st.patient_id}`, st.accession && `Acc. ${st.accession}`, plural(st.instances || 0, "image")].filter(Boolean).join(" · ") })))));
  }
}

async function openStudy(uid) {
  const st = S.studies.find((x) => x.uid === uid) || { uid };
  S.study = st;
  renderStudies();
  document.body.classList.add("has-study");
  $("empty-detail").hidden = true; $("study").hidden = false;
  $("s-name").textContent = fmtName(st.patient_name, true) || "(no name)";
  $("s-pt").textContent = [st.birth_date && `Born ${fmtDate(st.birth_date)}`, age(st.birth_date, st.date), fmtSex(st.sex), st.patient_id && `ID ${st.patient_id}`].filter(Boolean).join(" · ");
  $("s-study").textContent = [fmtDate(st.date, st.time), st.description, st.accession && `Accession ${st.accession}`, st.referring && `Referred by ${fmtName(st.referring)}`].filter(Boolean).join(" · ");
  $("s-mods").replaceChildren(...(st.modalities || []).map((m) => el("li", { class: "mod", text: m })), el("li", { class: "dim", text: `${st.series || 0} series, ${plural(st.instances || 0, "image")}` }));
  // a fresh form per study
  $("r-text").value = ""; $("r-name").value = ""; $("r-email").value = ""; $("r-hl7").value = "";
  setMsg($("r-msg"), ""); setMsg($("p-msg"), "");
  $("p-for-patient").checked = true; linkKind(); $("c-name").value = ""; $("c-email").value = ""; $("c-code").value = "";
  $("p-name").value = fmtName(st.patient_name) || "";
  $("p-bd").disabled = !st.birth_date; $("p-bd").checked = !!st.birth_date;
  $("p-bd-label").textContent = st.birth_date ? `Ask for the date of birth (${fmtDate(st.birth_date)})` : "Ask for the date of birth (not in the study)";
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
      $("r-hint").textContent = r ? `From the directory for ${fmtName(rep.referring)}.` : rep.referring ? `${fmtName(rep.referring)} is not in the recipients directory: give an e-mail address or an HL7 destination.` : "";
    }
    renderShares(); renderActivity();
  } catch (e) { setMsg($("r-msg"), e.message, "err"); }
}

// ---- sending the report ----------------------------------------------------------------------------
async function sendReport(ev) {
  ev.preventDefault();
  const text = $("r-text").value.trim();
  if (!text) { setMsg($("r-msg"), "Write the report first.", "err"); $("r-text").focus(); return; }
  const recipient = { name: $("r-name").value.trim(), email: $("r-email").value.trim(), hl7: $("r-hl7").value.trim() };
  if (!recipient.email && !recipient.hl7) { setMsg($("r-msg"), "Give the recipient's e-mail address or HL7 destination.", "err"); return; }
  const btn = $("r-send");
  btn.disabled = true;
  setMsg($("r-msg"), "Sending…");
  try {
    const r = await api("POST", `/api/studies/${encodeURIComponent(S.study.uid)}/reports`,
      { text, recipient, expires_in_days: +$("r-days").value || 30, download: $("r-dl").checked });
    const ch = (r.deliveries || []).map((d) => d.channel === "email" ? `e-mail to ${d.recipient}` : `HL7 to ${d.recipient}`).join(" and ");
    setMsg($("r-msg"), `Report queued for ${ch || "delivery"}. The delivery status is below.`, "ok");
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
  $("p-intro").textContent = p ? "For the patient, printed as a QR code on a handout. It can be printed only now: the link is not kept."
    : "For a colleague (a second opinion, a surgeon): a link to copy into your own message. It is shown only now: the link is not kept.";
  $("p-go").textContent = p ? "Create link and handout" : "Create link";
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
  setMsg($("p-msg"), "Creating the link…");
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
      setMsg($("p-msg"), "Link created. Print the handout now: the link cannot be shown again.", "ok");
      showHandout(r, st, !!body.birth_date);
    } else {
      setMsg($("p-msg"), body.access_code ? "Link created: copy it now, and give the access code separately." : "Link created: copy it now, it cannot be shown again.", "ok");
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
  $("c-copy").textContent = "Copied";
  setTimeout(() => { $("c-copy").textContent = "Copy"; }, 1500);
}

function showHandout(r, st, needsBirthDate) {
  if (S.qrUrl) URL.revokeObjectURL(S.qrUrl);
  // the server's SVG goes in as an image (never parsed into this page), through a blob: URL
  S.qrUrl = r.qr_svg ? URL.createObjectURL(new Blob([r.qr_svg], { type: "image/svg+xml" })) : null;
  $("h-qr").hidden = !S.qrUrl;   // no code (a link too long for one): the written address remains
  if (S.qrUrl) $("h-qr").src = S.qrUrl;
  $("h-patient").textContent = $("p-name").value.trim() || fmtName(st.patient_name);
  $("h-study").textContent = [st.description, fmtDate(st.date)].filter(Boolean).join(" · ");
  $("h-url").textContent = r.url;
  $("h-code-step").hidden = !needsBirthDate;
  $("h-exp").textContent = r.share && r.share.expires ? `Valid until ${fmtIso(r.share.expires)}.` : "";
  document.body.dataset.state = "handout";
  $("handout-dlg").showModal();
}

function closeHandout() {
  $("handout-dlg").close();
  // the only copy of the link in this page goes away with the dialog
  $("h-url").textContent = ""; $("h-qr").removeAttribute("src");
  if (S.qrUrl) { URL.revokeObjectURL(S.qrUrl); S.qrUrl = null; }
  document.body.dataset.state = "study";
}

// ---- shares, deliveries, history ----------------------------------------------------------------------
const EVENTS = {
  "share.created": "Link created", "report.created": "Report written", "share.delivered": "Delivered",
  "share.delivery_failed": "Delivery failed", "share.opened": "Link opened", "study.viewed": "Study loaded",
  "images.viewed": "Images viewed", "share.downloaded": "Downloaded", "study.download": "Downloaded",
  "share.revoked": "Link revoked", "access.refused": "Access refused", "access.out_of_scope": "Refused: outside the share",
  "access.code_wrong": "Wrong access code", "access.code_locked": "Access code locked", "access.unlocked": "Unlocked with the code",
};
const eventLabel = (e) => EVENTS[e] || e;
const eventKind = (e) => (e === "share.delivered" || e === "access.unlocked" ? "ok" : e.startsWith("access.") || e.endsWith("failed") ? "bad" : e === "share.revoked" ? "warn" : "");

function shareState(s) {
  if (s.revoked) return ["Revoked", "warn"];
  if (Date.parse(s.expires) < Date.now()) return ["Expired", "muted"];
  return ["Active", "ok"];
}

function deliveryChip(d) {
  const what = d.channel === "email" ? "E-mail" : "HL7";
  const label = { sent: "delivered", pending: d.attempts ? `retrying (${d.attempts} attempts)` : "queued", failed: "failed", cancelled: "cancelled" }[d.status] || d.status;
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
    const toggle = el("button", { class: "btn ghost small", type: "button", "aria-expanded": "false", text: `History (${events.length})` });
    toggle.addEventListener("click", () => { hist.hidden = !hist.hidden; toggle.setAttribute("aria-expanded", String(!hist.hidden)); });
    const revoke = s.revoked ? null : el("button", { class: "btn danger small revoke", type: "button", text: "Revoke", onclick: () => revokeShare(s) });
    ul.append(el("li", { class: "share", "data-id": s.id, "data-state": state.toLowerCase() },
      el("div", { class: "share-top" },
        el("div", { class: "share-who" },
          el("span", { class: "share-name", text: rec.name || rec.email || "(no name)" }),
          el("span", { class: `kind ${rec.kind}`, text: rec.kind === "patient" ? "Patient" : "Practitioner" }),
          el("span", { class: `chip ${kind} state`, text: state })),
        el("div", { class: "share-actions" }, toggle, revoke)),
      el("p", { class: "dim share-meta", text: [rec.email, s.purpose, `created ${fmtIso(s.created)} by ${s.created_by}`, s.revoked ? `revoked ${fmtIso(s.revoked.at)} by ${s.revoked.by}` : `expires ${fmtIso(s.expires)}`,
        s.access_code === "birth_date" ? "date of birth asked" : s.access_code === "code" ? "access code" : "", s.download ? "download allowed" : "view only"].filter(Boolean).join(" · ") }),
      dels.length ? el("ul", { class: "chips" }, dels.map(deliveryChip)) : null,
      el("p", { class: "opened", text: opened.length ? `Opened ${plural(opened.length, "time")}, last ${fmtIso(last.time)}${last.addr ? ` from ${last.addr}` : ""}` : "Not opened yet" }),
      hist));
  }
}

function eventItem(a) {
  const d = a.detail || {};
  const extra = [d.channel && `${d.channel === "email" ? "e-mail" : "HL7"} to ${d.recipient}`, d.error, d.reason, d.by && `by ${d.by}`, a.addr, d.instances && `${d.instances} instances`].filter(Boolean).join(" · ");
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
  if (!recs.length) ol.append(el("li", { class: "dim", text: "Nothing yet." }));
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
  const who = (s.recipient && (s.recipient.name || s.recipient.email)) || "this recipient";
  if (!(await confirmDialog(`Revoke the link of ${who}? It stops working at once, also if it is open right now.`))) return;
  try { await api("DELETE", `/api/shares/${encodeURIComponent(s.id)}`); } catch (e) { setMsg($("r-msg"), e.message, "err"); }
  await refresh();
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
}

// for tests and scripts: what the page shows
window.radshareStaff = { get state() { return { phase: document.body.dataset.state, user: S.user, open: S.open, study: S.study && S.study.uid, shares: S.shares.length }; }, refresh };

start();
