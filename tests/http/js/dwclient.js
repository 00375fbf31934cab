// dwclient.js BASE_URL STUDY SERIES SOP FILE [CSERIES CSOP] - drives radshare with the npm dicomweb-client (written by
// others): search, metadata, retrieve instance and frames, store via STOW-RS. Prints one JSON line
// with what it got; the Python test judges it. CSERIES/CSOP: a compressed instance whose frames are
// retrieved decompressed (default), as stored (image/jls), and through its Pixel Data BulkDataURI. Node has no XMLHttpRequest, so a minimal one over
// node:http stands in for the browser's (transport only: URLs, headers, multipart are the client's).
const http = require('node:http');
const fs = require('node:fs');

class XMLHttpRequest {
  constructor() { this.readyState = 0; this.headers = {}; this.responseType = ''; }
  open(method, url) { this.method = method; this.url = new URL(url); this.readyState = 1; }
  setRequestHeader(k, v) { this.headers[k] = v; }
  getResponseHeader(k) { const v = this.res && this.res.headers[k.toLowerCase()]; return v === undefined ? null : v; }
  getAllResponseHeaders() {
    return Object.entries(this.res ? this.res.headers : {}).map(([k, v]) => `${k}: ${v}`).join('\r\n');
  }
  send(data) {
    const body = data ? Buffer.from(data instanceof ArrayBuffer ? new Uint8Array(data) : data) : null;
    if (body) this.headers['Content-Length'] = body.length;
    const req = http.request(this.url, { method: this.method, headers: this.headers }, (res) => {
      this.res = res;
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => {
        const buf = Buffer.concat(chunks);
        this.status = res.statusCode;
        if (this.responseType === 'arraybuffer') this.response = buf.buffer.slice(buf.byteOffset, buf.byteOffset + buf.length);
        else if (this.responseType === 'json') { try { this.response = JSON.parse(buf.toString()); } catch (e) { this.response = null; } }
        else this.response = buf.toString();
        this.readyState = 4;
        if (this.onreadystatechange) this.onreadystatechange();
      });
    });
    req.on('error', (e) => { this.status = 0; this.readyState = 4; if (this.onreadystatechange) this.onreadystatechange(); });
    if (body) req.write(body);
    req.end();
  }
}
global.XMLHttpRequest = XMLHttpRequest;

const { api } = require('dicomweb-client');

async function main() {
  const [base, study, series, sop, file, cseries, csop] = process.argv.slice(2);
  const client = new api.DICOMwebClient({ url: base });
  const out = {};
  const studies = await client.searchForStudies();
  out.studies = studies.map((s) => s['0020000D'].Value[0]);
  const found = await client.searchForStudies({ queryParams: { PatientName: 'Dupont*' } });
  out.found = found.map((s) => s['00100010'].Value[0].Alphabetic);
  const ser = await client.searchForSeries({ studyInstanceUID: study });
  out.series = ser.map((s) => s['0020000E'].Value[0]);
  const inst = await client.searchForInstances({ studyInstanceUID: study, seriesInstanceUID: series });
  out.instances = inst.map((s) => s['00080018'].Value[0]);
  const meta = await client.retrieveInstanceMetadata({ studyInstanceUID: study, seriesInstanceUID: series, sopInstanceUID: sop });
  out.meta_sop = meta[0]['00080018'].Value[0];
  out.meta_rows = meta[0]['00280010'].Value[0];
  const smeta = await client.retrieveSeriesMetadata({ studyInstanceUID: study, seriesInstanceUID: series });
  out.series_meta = smeta.length;
  const obj = await client.retrieveInstance({ studyInstanceUID: study, seriesInstanceUID: series, sopInstanceUID: sop });
  out.instance_hex = Buffer.from(obj).toString('hex');
  const frames = await client.retrieveInstanceFrames({ studyInstanceUID: study, seriesInstanceUID: series,
    sopInstanceUID: sop, frameNumbers: [1] });
  out.frame_hex = Buffer.from(frames[0]).toString('hex');
  const series_objs = await client.retrieveSeries({ studyInstanceUID: study, seriesInstanceUID: series });
  out.series_objects = series_objs.length;
  const rendered = await client.retrieveInstanceRendered({ studyInstanceUID: study, seriesInstanceUID: series,
    sopInstanceUID: sop, mediaTypes: [{ mediaType: 'image/png' }] });
  out.rendered_png = Buffer.from(Array.isArray(rendered) ? rendered[0] : rendered).subarray(1, 4).toString();
  if (csop) {
    const ids = { studyInstanceUID: study, seriesInstanceUID: cseries, sopInstanceUID: csop };
    const raw = await client.retrieveInstanceFrames({ ...ids, frameNumbers: [1] });
    out.cframe_raw_hex = Buffer.from(raw[0]).toString('hex');
    const jls = await client.retrieveInstanceFrames({ ...ids, frameNumbers: [1], mediaTypes: [
      { mediaType: 'image/jls', transferSyntaxUID: '1.2.840.10008.1.2.4.80' },
      { mediaType: 'application/octet-stream', transferSyntaxUID: '1.2.840.10008.1.2.1' }] });
    out.cframe_jls_hex = Buffer.from(jls[0]).toString('hex');
    const cmeta = await client.retrieveInstanceMetadata(ids);
    const bulk = await client.retrieveBulkData({ BulkDataURI: cmeta[0]['7FE00010'].BulkDataURI });
    out.cbulk_hex = Buffer.from(bulk[0]).toString('hex');
  }
  const data = fs.readFileSync(file);
  const stored = await client.storeInstances({ datasets: [data.buffer.slice(data.byteOffset, data.byteOffset + data.length)] });
  out.stow = typeof stored === 'string' ? JSON.parse(stored) : stored;
  console.log(JSON.stringify(out));
}

main().catch((e) => { console.log(JSON.stringify({ error: String(e), status: e.status, response: String(e.response) })); process.exit(1); });
