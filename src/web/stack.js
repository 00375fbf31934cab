// stack.js - the viewer's arithmetic, kept free of the DOM so node can test it
// (tests/web/test_viewer_logic.mjs): window presets, W/L drag, the W/L preview lookup table,
// the viewport asked from the server, cache keys, wheel steps, the token in the path.

// Window presets (width/centre in modality units, HU for CT). label = i18n key.
export const PRESETS = [
  { id: "default", label: "pDefault", c: null, w: null },
  { id: "auto", label: "pAuto", c: null, w: null },
  { id: "brain", label: "pBrain", c: 40, w: 80, mod: "CT" },
  { id: "subdural", label: "pSubdural", c: 75, w: 215, mod: "CT" },
  { id: "lung", label: "pLung", c: -600, w: 1500, mod: "CT" },
  { id: "bone", label: "pBone", c: 400, w: 1800, mod: "CT" },
  { id: "abdomen", label: "pAbdomen", c: 60, w: 400, mod: "CT" },
  { id: "soft", label: "pSoft", c: 50, w: 350, mod: "CT" },
  { id: "mediastinum", label: "pMediastinum", c: 50, w: 450, mod: "CT" },
];

export function presetsFor(modality) {
  return PRESETS.filter((p) => !p.mod || p.mod === String(modality || "").toUpperCase());
}

// Right-drag: right widens the window, down raises the centre (darker image), both in
// proportion to the width at the start of the drag so a 2-pixel MR and a 4000-HU CT feel alike.
export function wlFromDrag(start, dx, dy) {
  const k = Math.max(Math.abs(start.w), 2) / 300;
  return { c: start.c + dy * k, w: Math.max(1, start.w + dx * k * 2) };
}

// 256-entry table mapping an 8-bit value rendered with window `from` to the value the
// LINEAR function (PS3.3 C.11.2.1.2.1) gives with window `to`.
export function lutFor(from, to) {
  const lut = new Uint8ClampedArray(256);
  const fw = Math.max(from.w, 1), tw = Math.max(to.w, 1);
  for (let v = 0; v < 256; v++) {
    const x = from.c - 0.5 + (v / 255 - 0.5) * (fw - 1);
    lut[v] = tw <= 1 ? (x > to.c - 0.5 ? 255 : 0) : Math.round(((x - (to.c - 0.5)) / (tw - 1) + 0.5) * 255);
  }
  return lut;
}

// The square viewport (device pixels) to request: the fitted size rounded up to 128 so small
// resizes keep the cache, never more than the image's own size (the server never enlarges).
export function viewportSize(cols, rows, deviceW, deviceH) {
  const native = Math.max(cols, rows);
  const s = Math.min(deviceW / cols, deviceH / rows, 1);
  const want = Math.ceil((native * s) / 128) * 128;
  return Math.max(64, Math.min(native, want));
}

export function cacheKey(sop, frame, win, vp) {
  return `${sop}/${frame}|${win || "file"}|${vp}`;
}

// Wheel deltas to whole images: a mouse notch (|delta| >= 50 pixels, or any line/page delta)
// is one image; touchpads' small deltas add up, one image per 30 pixels.
// Returns the new accumulator and the steps.
export function stepFromWheel(acc, deltaY, deltaMode) {
  if (deltaMode || Math.abs(deltaY) >= 50) return { acc: 0, steps: Math.sign(deltaY) };
  acc += deltaY;
  const steps = Math.trunc(acc / 30);
  return { acc: acc - steps * 30, steps };
}

export function tokenFromPath(path) {
  const m = /^\/s\/([A-Za-z0-9_-]{1,200})\/?$/.exec(path || "");
  return m ? m[1] : "";
}

// The parts of a multipart/related answer (the series batches of the prefetch): boundary from
// the Content-Type, each part's headers, body by its Content-Length. [] when malformed.
export function multipartBoundary(contentType) {
  const m = /boundary="?([^";,\s]+)"?/i.exec(contentType || "");
  return m ? m[1] : "";
}

export function multipartParts(buf, boundary) {
  const dec = new TextDecoder();
  const delim = new TextEncoder().encode(`--${boundary}`);
  const at = (pos) => { for (let k = 0; k < delim.length; k++) if (buf[pos + k] !== delim[k]) return false; return true; };
  const parts = [];
  let pos = 0;
  while (boundary && pos + delim.length <= buf.length && at(pos)) {
    pos += delim.length;
    if (buf[pos] === 45 && buf[pos + 1] === 45) return parts;   // "--": the closing delimiter
    let end = pos;
    while (end + 3 < buf.length && !(buf[end] === 13 && buf[end + 1] === 10 && buf[end + 2] === 13 && buf[end + 3] === 10)) end++;
    if (end + 3 >= buf.length) return [];
    const head = {};
    for (const line of dec.decode(buf.subarray(pos, end)).split("\r\n")) {
      const c = line.indexOf(":");
      if (c > 0) head[line.slice(0, c).trim().toLowerCase()] = line.slice(c + 1).trim();
    }
    const len = Number(head["content-length"]), start = end + 4;
    if (!(len >= 0) || start + len + 2 > buf.length) return [];
    parts.push({ type: head["content-type"] || "", location: head["content-location"] || "", body: buf.subarray(start, start + len) });
    pos = start + len + 2;   // CRLF before the next delimiter
  }
  return [];
}
