// The warden binary: the one `binary-path` names, or the release pinned in binaries.json for
// this runner's architecture, downloaded over HTTPS and refused unless its SHA-256 is the
// pinned one. Either way it is then installed root-owned in Warden's root-only directory, so no
// later step can swap the program post runs as root.
'use strict';

const fs = require('node:fs');
const path = require('node:path');
const https = require('node:https');
const crypto = require('node:crypto');

const TARGETS = { x64: 'x86_64-unknown-linux-musl', arm64: 'aarch64-unknown-linux-musl' };
const MAX_REDIRECTS = 5;
const TIMEOUT_MS = 60_000;

/** The release target for Node's `process.arch`, or undefined. */
function target(arch = process.arch) {
  return TARGETS[arch];
}

/** The pinned release (binaries.json next to action.yml). */
function pinned() {
  return JSON.parse(fs.readFileSync(path.join(__dirname, '..', 'binaries.json'), 'utf8'));
}

/** SHA-256 of a file, hex. */
function sha256File(file) {
  return crypto.createHash('sha256').update(fs.readFileSync(file)).digest('hex');
}

/** GETs `url` into `dest`, following redirects (GitHub's release assets redirect). */
function download(url, dest, redirects = 0) {
  return new Promise((resolve, reject) => {
    if (!url.startsWith('https://')) {
      reject(new Error(`refusing to download over anything but HTTPS: ${url}`));
      return;
    }
    const req = https.get(url, { timeout: TIMEOUT_MS, headers: { 'user-agent': 'warden-action' } }, (res) => {
      if ([301, 302, 303, 307, 308].includes(res.statusCode) && res.headers.location) {
        res.resume();
        if (redirects >= MAX_REDIRECTS) {
          reject(new Error(`too many redirects from ${url}`));
          return;
        }
        resolve(download(new URL(res.headers.location, url).toString(), dest, redirects + 1));
        return;
      }
      if (res.statusCode !== 200) {
        res.resume();
        reject(new Error(`GET ${url}: HTTP ${res.statusCode}`));
        return;
      }
      const out = fs.createWriteStream(dest, { mode: 0o700 });
      res.pipe(out);
      out.on('finish', () => out.close(resolve));
      out.on('error', reject);
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error(`GET ${url}: no answer in ${TIMEOUT_MS / 1000} s`)));
    req.on('error', reject);
  });
}

/**
 * A verified binary in `tmpDir`: `binaryPath` when given, else the pinned release for this
 * architecture. Throws an Error saying what is wrong (which input, which sum).
 */
async function obtain(binaryPath, tmpDir) {
  if (binaryPath) return binaryPath;
  const t = target();
  if (!t) throw new Error(`no Warden build for this runner's architecture (${process.arch}); set binary-path`);
  const release = pinned();
  const want = (release.sha256 || {})[t];
  if (!release.version || !want) {
    throw new Error(`this version of the action pins no release binary for ${t}; set binary-path (see scripts/release.sh)`);
  }
  const url = release.url.replace('{version}', release.version).replace('{target}', t);
  const dest = path.join(tmpDir, `warden-${t}`);
  await download(url, dest);
  const got = sha256File(dest);
  if (got !== want) {
    fs.rmSync(dest, { force: true });
    throw new Error(`${url}: SHA-256 ${got} is not the pinned ${want}; refusing to run it`);
  }
  return dest;
}

module.exports = { target, pinned, sha256File, download, obtain, TARGETS };
