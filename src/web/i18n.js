// i18n.js - the viewer's labels in English, French, Dutch and German, chosen from
// navigator.languages, and the formatting of DICOM dates and person names for display.
// Labels are plain text: callers insert them with textContent, never as HTML.

const STRINGS = {
  en: {
    title: "Images", patient: "Patient", born: "Born", sex: "Sex", id: "ID", study: "Study",
    accession: "Accession", referring: "Referring", expires: "Link valid until", download: "Download (ZIP)",
    report: "Report", noReport: "No report is attached to these images yet.", series: "Series",
    images: "{n} images", image1: "1 image", tools: "Tools", scroll: "Scroll", wl: "Window/level", zoom: "Zoom", pan: "Pan",
    fit: "Fit", actual: "1:1", reset: "Reset", invert: "Invert", preset: "Window preset", help: "Keyboard shortcuts",
    close: "Close", loading: "Loading images…", loaded: "{n} of {total} images ready",
    imageOf: "Image {n} / {total}", slice: "Slice {v} mm", windowLabel: "W {w}  L {c}", zoomLabel: "Zoom {z}%",
    codeTitle: "This link is protected", codeHelp: "Enter the access code you received separately (for a patient link, the birth date may be asked as DDMMYYYY).",
    code: "Access code", unlock: "Open", codeWrong: "This code is not correct.", codeLimited: "Too many attempts. Please wait a few minutes and try again.",
    errNotFound: "This link is not valid. Check that you copied it completely, or contact the department that sent it.",
    errGone: "This link is no longer valid. Please contact the department that sent it for a new one.",
    errNetwork: "The images could not be loaded. Please check your connection.", retry: "Try again",
    errServer: "The server could not answer ({status}). Please try again later.",
    imgError: "This image could not be loaded.", stackSlider: "Image in the series",
    kScroll: "Previous / next image", kPage: "Back / forward 10 images", kHomeEnd: "First / last image",
    kSeries: "Previous / next series", kTools: "Tools: scroll, window/level, zoom, pan", kPresets: "Window presets",
    kFit: "Fit / actual size / reset", kInvert: "Invert grey scale", kInfo: "Show / hide the image information",
    kHelp: "This help", kMouse: "Mouse: wheel scrolls, Ctrl+wheel zooms, right-drag sets the window, middle-drag pans",
    kTouch: "Touch: swipe up/down scrolls, pinch zooms, two fingers pan, the W/L tool sets the window by dragging",
    info: "Image information", male: "M", female: "F", other: "O", years: "{n} y",
    pDefault: "Default (file)", pAuto: "Auto", pBrain: "Brain", pSubdural: "Subdural", pLung: "Lung", pBone: "Bone",
    pAbdomen: "Abdomen", pSoft: "Soft tissue", pLiver: "Liver", pMediastinum: "Mediastinum", custom: "Custom",
    showReport: "Show report", hideReport: "Hide report",
  },
  fr: {
    title: "Images", patient: "Patient", born: "Né(e) le", sex: "Sexe", id: "ID", study: "Examen",
    accession: "N° d'examen", referring: "Prescripteur", expires: "Lien valable jusqu'au", download: "Télécharger (ZIP)",
    report: "Compte rendu", noReport: "Aucun compte rendu n'est encore joint à ces images.", series: "Séries",
    images: "{n} images", image1: "1 image", tools: "Outils", scroll: "Défiler", wl: "Fenêtrage", zoom: "Zoom", pan: "Déplacer",
    fit: "Ajuster", actual: "1:1", reset: "Réinitialiser", invert: "Inverser", preset: "Fenêtre prédéfinie", help: "Raccourcis clavier",
    close: "Fermer", loading: "Chargement des images…", loaded: "{n} images prêtes sur {total}",
    imageOf: "Image {n} / {total}", slice: "Coupe {v} mm", windowLabel: "L {w}  N {c}", zoomLabel: "Zoom {z} %",
    codeTitle: "Ce lien est protégé", codeHelp: "Saisissez le code d'accès reçu séparément (pour un lien patient, la date de naissance peut être demandée sous la forme JJMMAAAA).",
    code: "Code d'accès", unlock: "Ouvrir", codeWrong: "Ce code n'est pas correct.", codeLimited: "Trop de tentatives. Veuillez patienter quelques minutes avant de réessayer.",
    errNotFound: "Ce lien n'est pas valide. Vérifiez qu'il a été copié en entier ou contactez le service qui l'a envoyé.",
    errGone: "Ce lien n'est plus valide. Veuillez contacter le service qui l'a envoyé pour en obtenir un nouveau.",
    errNetwork: "Les images n'ont pas pu être chargées. Veuillez vérifier votre connexion.", retry: "Réessayer",
    errServer: "Le serveur n'a pas pu répondre ({status}). Veuillez réessayer plus tard.",
    imgError: "Cette image n'a pas pu être chargée.", stackSlider: "Image de la série",
    kScroll: "Image précédente / suivante", kPage: "Reculer / avancer de 10 images", kHomeEnd: "Première / dernière image",
    kSeries: "Série précédente / suivante", kTools: "Outils : défiler, fenêtrage, zoom, déplacer", kPresets: "Fenêtres prédéfinies",
    kFit: "Ajuster / taille réelle / réinitialiser", kInvert: "Inverser les niveaux de gris", kInfo: "Afficher / masquer les informations",
    kHelp: "Cette aide", kMouse: "Souris : la molette fait défiler, Ctrl+molette zoome, le clic droit glissé règle la fenêtre, le clic milieu déplace",
    kTouch: "Tactile : glisser vers le haut/bas fait défiler, pincer zoome, deux doigts déplacent, l'outil fenêtrage règle la fenêtre",
    info: "Informations de l'image", male: "M", female: "F", other: "A", years: "{n} ans",
    pDefault: "Par défaut (fichier)", pAuto: "Auto", pBrain: "Cerveau", pSubdural: "Sous-dural", pLung: "Poumon", pBone: "Os",
    pAbdomen: "Abdomen", pSoft: "Tissus mous", pLiver: "Foie", pMediastinum: "Médiastin", custom: "Personnalisée",
    showReport: "Afficher le compte rendu", hideReport: "Masquer le compte rendu",
  },
  nl: {
    title: "Beelden", patient: "Patiënt", born: "Geboren", sex: "Geslacht", id: "ID", study: "Onderzoek",
    accession: "Onderzoeksnr.", referring: "Verwijzer", expires: "Link geldig tot", download: "Downloaden (ZIP)",
    report: "Verslag", noReport: "Er is nog geen verslag bij deze beelden.", series: "Reeksen",
    images: "{n} beelden", image1: "1 beeld", tools: "Gereedschap", scroll: "Bladeren", wl: "Venster", zoom: "Zoom", pan: "Verschuiven",
    fit: "Passend", actual: "1:1", reset: "Herstellen", invert: "Omkeren", preset: "Vensterinstelling", help: "Sneltoetsen",
    close: "Sluiten", loading: "Beelden laden…", loaded: "{n} van {total} beelden klaar",
    imageOf: "Beeld {n} / {total}", slice: "Snede {v} mm", windowLabel: "W {w}  C {c}", zoomLabel: "Zoom {z}%",
    codeTitle: "Deze link is beveiligd", codeHelp: "Geef de toegangscode in die u apart ontving (voor een patiëntlink kan de geboortedatum als DDMMJJJJ gevraagd worden).",
    code: "Toegangscode", unlock: "Openen", codeWrong: "Deze code is niet juist.", codeLimited: "Te veel pogingen. Wacht enkele minuten en probeer opnieuw.",
    errNotFound: "Deze link is niet geldig. Controleer of u hem volledig kopieerde, of neem contact op met de afzender.",
    errGone: "Deze link is niet meer geldig. Neem contact op met de dienst die hem stuurde voor een nieuwe link.",
    errNetwork: "De beelden konden niet geladen worden. Controleer uw verbinding.", retry: "Opnieuw",
    errServer: "De server kon niet antwoorden ({status}). Probeer later opnieuw.",
    imgError: "Dit beeld kon niet geladen worden.", stackSlider: "Beeld in de reeks",
    kScroll: "Vorig / volgend beeld", kPage: "10 beelden terug / vooruit", kHomeEnd: "Eerste / laatste beeld",
    kSeries: "Vorige / volgende reeks", kTools: "Gereedschap: bladeren, venster, zoom, verschuiven", kPresets: "Vensterinstellingen",
    kFit: "Passend / ware grootte / herstellen", kInvert: "Grijswaarden omkeren", kInfo: "Beeldinformatie tonen / verbergen",
    kHelp: "Deze hulp", kMouse: "Muis: wiel bladert, Ctrl+wiel zoomt, rechts slepen zet het venster, middelste knop verschuift",
    kTouch: "Aanraken: op/neer vegen bladert, knijpen zoomt, twee vingers verschuiven",
    info: "Beeldinformatie", male: "M", female: "V", other: "O", years: "{n} j",
    pDefault: "Standaard (bestand)", pAuto: "Auto", pBrain: "Hersenen", pSubdural: "Subduraal", pLung: "Long", pBone: "Bot",
    pAbdomen: "Abdomen", pSoft: "Weke delen", pLiver: "Lever", pMediastinum: "Mediastinum", custom: "Aangepast",
    showReport: "Verslag tonen", hideReport: "Verslag verbergen",
  },
  de: {
    title: "Bilder", patient: "Patient", born: "Geboren", sex: "Geschlecht", id: "ID", study: "Untersuchung",
    accession: "Auftragsnr.", referring: "Zuweiser", expires: "Link gültig bis", download: "Herunterladen (ZIP)",
    report: "Befund", noReport: "Zu diesen Bildern liegt noch kein Befund vor.", series: "Serien",
    images: "{n} Bilder", image1: "1 Bild", tools: "Werkzeuge", scroll: "Blättern", wl: "Fenster", zoom: "Zoom", pan: "Verschieben",
    fit: "Einpassen", actual: "1:1", reset: "Zurücksetzen", invert: "Invertieren", preset: "Fenstervorgabe", help: "Tastenkürzel",
    close: "Schließen", loading: "Bilder werden geladen…", loaded: "{n} von {total} Bildern bereit",
    imageOf: "Bild {n} / {total}", slice: "Schicht {v} mm", windowLabel: "W {w}  C {c}", zoomLabel: "Zoom {z} %",
    codeTitle: "Dieser Link ist geschützt", codeHelp: "Geben Sie den separat erhaltenen Zugangscode ein (bei einem Patientenlink ggf. das Geburtsdatum als TTMMJJJJ).",
    code: "Zugangscode", unlock: "Öffnen", codeWrong: "Dieser Code ist nicht korrekt.", codeLimited: "Zu viele Versuche. Bitte warten Sie einige Minuten.",
    errNotFound: "Dieser Link ist ungültig. Prüfen Sie, ob er vollständig kopiert wurde, oder wenden Sie sich an den Absender.",
    errGone: "Dieser Link ist nicht mehr gültig. Bitte wenden Sie sich für einen neuen Link an die absendende Abteilung.",
    errNetwork: "Die Bilder konnten nicht geladen werden. Bitte prüfen Sie Ihre Verbindung.", retry: "Erneut versuchen",
    errServer: "Der Server konnte nicht antworten ({status}). Bitte versuchen Sie es später erneut.",
    imgError: "Dieses Bild konnte nicht geladen werden.", stackSlider: "Bild der Serie",
    kScroll: "Vorheriges / nächstes Bild", kPage: "10 Bilder zurück / vor", kHomeEnd: "Erstes / letztes Bild",
    kSeries: "Vorherige / nächste Serie", kTools: "Werkzeuge: blättern, Fenster, Zoom, verschieben", kPresets: "Fenstervorgaben",
    kFit: "Einpassen / Originalgröße / zurücksetzen", kInvert: "Graustufen invertieren", kInfo: "Bildinformationen ein / aus",
    kHelp: "Diese Hilfe", kMouse: "Maus: Rad blättert, Strg+Rad zoomt, Rechtsziehen setzt das Fenster, Mittelziehen verschiebt",
    kTouch: "Touch: auf/ab wischen blättert, Zwei-Finger-Geste zoomt und verschiebt",
    info: "Bildinformationen", male: "M", female: "W", other: "D", years: "{n} J.",
    pDefault: "Standard (Datei)", pAuto: "Auto", pBrain: "Hirn", pSubdural: "Subdural", pLung: "Lunge", pBone: "Knochen",
    pAbdomen: "Abdomen", pSoft: "Weichteile", pLiver: "Leber", pMediastinum: "Mediastinum", custom: "Benutzerdefiniert",
    showReport: "Befund zeigen", hideReport: "Befund ausblenden",
  },
};

export function pickLang(list) {
  for (const l of list || []) {
    const base = String(l).toLowerCase().split("-")[0];
    if (STRINGS[base]) return base;
  }
  return "en";
}

const params = typeof location !== "undefined" ? new URLSearchParams(location.search) : new URLSearchParams();
export const lang = pickLang([params.get("lang"), ...(typeof navigator !== "undefined" ? navigator.languages || [navigator.language] : [])].filter(Boolean));

export function t(key, vars = {}, lng = lang) {
  const s = (STRINGS[lng] && STRINGS[lng][key]) || STRINGS.en[key] || key;
  return s.replace(/\{(\w+)\}/g, (_, k) => (k in vars ? String(vars[k]) : ""));
}

// Formatters are made once: a new Intl.DateTimeFormat costs far more than a format() call, and
// the overlay formats the study date on every image drawn while scrolling.
const formatters = new Map();
function formatter(lng, kind, opts) {
  let f = formatters.get(lng + kind);
  if (!f) formatters.set(lng + kind, (f = new Intl.DateTimeFormat(lng, opts)));
  return f;
}

// "20261203" -> a localised medium date; anything else is shown as it is.
export function fmtDate(d, withTime = "", lng = lang) {
  const m = /^(\d{4})(\d{2})(\d{2})$/.exec(String(d || "").replace(/[-.]/g, ""));
  if (!m) return String(d || "");
  const date = new Date(Date.UTC(+m[1], +m[2] - 1, +m[3]));
  let s = formatter(lng, "d", { dateStyle: "medium", timeZone: "UTC" }).format(date);
  const tm = /^(\d{2})(\d{2})/.exec(String(withTime || ""));
  if (tm) s += ` ${tm[1]}:${tm[2]}`;
  return s;
}

export function fmtIso(iso, lng = lang) {
  const d = new Date(iso);
  if (isNaN(d)) return String(iso || "");
  return formatter(lng, "dt", { dateStyle: "medium", timeStyle: "short" }).format(d);
}

// Age in whole years at the study date, from DICOM dates.
export function age(birth, at) {
  const b = /^(\d{4})(\d{2})(\d{2})$/.exec(birth || ""), s = /^(\d{4})(\d{2})(\d{2})$/.exec(at || "");
  if (!b || !s) return "";
  let y = +s[1] - +b[1];
  if (+s[2] * 100 + +s[3] < +b[2] * 100 + +b[3]) y--;
  return y >= 0 ? t("years", { n: y }) : "";
}

// DICOM PN "FAMILY^Given^Middle^Prefix^Suffix" (first component group) -> "Prefix Given Middle FAMILY Suffix".
export function fmtName(pn, familyFirst = false) {
  const [fam = "", giv = "", mid = "", pre = "", suf = ""] = String(pn || "").split("=")[0].split("^").map((x) => x.trim());
  if (familyFirst) return [fam.toUpperCase(), [giv, mid].filter(Boolean).join(" ")].filter(Boolean).join(", ") + (suf ? " " + suf : "");
  return [pre, giv, mid, fam.toUpperCase(), suf].filter(Boolean).join(" ");
}

export function fmtSex(s) {
  return { M: t("male"), F: t("female"), O: t("other") }[String(s || "").toUpperCase()] || "";
}

// ---- shared with other pages (the staff page): more labels, and the languages by their own names.
// t(), fmtDate() and fmtIso() take a language as their last argument where a page shows two at once
// (the staff UI in one, the patient's handout in another).
export const LANGS = { en: "English", fr: "Français", nl: "Nederlands", de: "Deutsch" };

// tables: { en: {key: text, ...}, fr: {...}, ... }, merged into the viewer's (keys must not collide).
export function addStrings(tables) {
  for (const [l, tab] of Object.entries(tables)) Object.assign(STRINGS[l] || (STRINGS[l] = {}), tab);
}
