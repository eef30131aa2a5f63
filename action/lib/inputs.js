// The action's inputs: read, checked (every problem at once, each naming its input and why),
// and turned into what main needs. Endpoint and URL syntax is Warden's to check: `warden start`
// refuses a bad list with exit 2 and main names the input then (see warden.js).
'use strict';

const fs = require('node:fs');
const path = require('node:path');
const { input } = require('./runner');

const BOOLEAN_TRUE = ['true', 'True', 'TRUE'];
const BOOLEAN_FALSE = ['false', 'False', 'FALSE'];

/** harden-runner inputs Warden does not need, and what it does about each. */
const IGNORED = {
  'disable-telemetry': 'Warden sends no telemetry at all',
  policy: 'Warden has no policy store: use policy-file',
  'api-key': 'Warden has no policy store or API',
  'use-policy-store': 'Warden has no policy store: use policy-file',
  'deploy-on-self-hosted-vm': 'Warden runs the same way on every Linux runner',
  'exempt-files': 'not supported yet (file monitoring: issue #10)',
};
/** Their defaults in action.yml: a notice only when the workflow set something else. */
const IGNORED_DEFAULTS = { 'disable-telemetry': 'false', 'use-policy-store': 'false', 'deploy-on-self-hosted-vm': 'false' };

const NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

/** A boolean input; pushes a problem for anything but the YAML 1.2 core schema's spellings. */
function bool(name, problems) {
  const v = input(name);
  if (v === '' || BOOLEAN_FALSE.includes(v)) return false;
  if (BOOLEAN_TRUE.includes(v)) return true;
  problems.push(`input ${name}: ${JSON.stringify(v)} is not a boolean (true or false)`);
  return false;
}

/** One of `choices` (case-insensitive), or `fallback` when empty. */
function choice(name, choices, fallback, problems) {
  const v = input(name).toLowerCase();
  if (v === '') return fallback;
  if (choices.includes(v)) return v;
  problems.push(`input ${name}: ${JSON.stringify(input(name))} is not one of ${choices.join(', ')}`);
  return fallback;
}

/**
 * The `secrets` input as { NAME: value }: a JSON object of strings (what `toJSON(secrets)`
 * gives), or NAME=value lines. Problems never quote a value.
 */
function parseSecrets(text, problems) {
  const out = {};
  if (text === '') return out;
  if (text.startsWith('{')) {
    let obj;
    try {
      obj = JSON.parse(text);
    } catch (e) {
      problems.push('input secrets: starts with { but is not valid JSON (give a JSON object or NAME=value lines)');
      return out;
    }
    if (obj === null || typeof obj !== 'object' || Array.isArray(obj)) {
      problems.push('input secrets: the JSON is not an object of NAME: value');
      return out;
    }
    for (const [k, v] of Object.entries(obj)) {
      if (!NAME.test(k)) problems.push(`input secrets: ${JSON.stringify(k)} is not a variable name`);
      else if (typeof v !== 'string') problems.push(`input secrets: the value of ${k} is not a string`);
      else if (v !== '') out[k] = v;
    }
    return out;
  }
  text.split(/\r?\n/).forEach((line, i) => {
    if (line.trim() === '' || line.trim().startsWith('#')) return;
    const eq = line.indexOf('=');
    const name = eq < 0 ? '' : line.slice(0, eq).trim();
    if (eq < 0 || !NAME.test(name)) {
      problems.push(`input secrets: line ${i + 1} is not NAME=value`);
      return;
    }
    const value = line.slice(eq + 1);
    if (value !== '') out[name] = value;
  });
  return out;
}

/** The cgroup v2 mount point, from /proc/mounts. */
function cgroup2Mount(mounts = fs.readFileSync('/proc/mounts', 'utf8')) {
  for (const line of mounts.split('\n')) {
    const f = line.split(/\s+/);
    if (f[2] === 'cgroup2') return f[1].replace(/\\040/g, ' ');
  }
  return '';
}

/** The `cgroup` input checked, or the cgroup v2 root (the whole runner) when empty. */
function cgroupInput(problems) {
  let root;
  try {
    root = cgroup2Mount();
  } catch (e) {
    root = '';
  }
  const v = input('cgroup');
  if (!root) {
    problems.push('no cgroup v2 filesystem is mounted (Warden needs the unified hierarchy)');
    return '';
  }
  if (v === '') return root;
  const resolved = path.resolve(v);
  if (!path.isAbsolute(v)) problems.push(`input cgroup: ${v} is not an absolute path`);
  else if (resolved !== root && !resolved.startsWith(root + '/')) {
    problems.push(`input cgroup: ${v} is not under the cgroup v2 mount ${root}`);
  } else if (!fs.existsSync(path.join(resolved, 'cgroup.procs'))) {
    problems.push(`input cgroup: ${v} is not a cgroup (no cgroup.procs)`);
  }
  return resolved;
}

/** An existing regular file named by input `name` (relative to the workspace), or ''. */
function fileInput(name, problems, { mustExist = true } = {}) {
  const v = input(name);
  if (v === '') return '';
  const base = process.env.GITHUB_WORKSPACE || process.cwd();
  const p = path.resolve(base, v);
  if (mustExist) {
    let st;
    try {
      st = fs.statSync(p);
    } catch (e) {
      problems.push(`input ${name}: ${v} does not exist (${p})`);
      return p;
    }
    if (!st.isFile()) problems.push(`input ${name}: ${v} is not a regular file`);
  }
  return p;
}

/**
 * Every input, checked. Returns { config, problems, notices, warnings }: `problems` fail the
 * step; `notices` and `warnings` are said and the step goes on.
 */
function read() {
  const problems = [];
  const notices = [];
  const warnings = [];
  // Unset: the policy file's mode when there is one, else block (harden-runner's default).
  const modeInput = choice('egress-policy', ['audit', 'block'], '', problems);
  const mode = modeInput || 'block';
  // Unset: decided once the mode is known (blocked in block mode, never in audit mode).
  const failOn = choice('fail-on', ['blocked', 'anomaly', 'never'], '', problems);
  let disableSudo = bool('disable-sudo', problems);
  if (bool('disable-sudo-and-containers', problems)) {
    disableSudo = true;
    warnings.push(
      'input disable-sudo-and-containers: Warden takes sudo away but not container access (the ' +
        'docker group): a step can still get root through Docker. See the known limitations.'
    );
  }
  for (const [name, why] of Object.entries(IGNORED)) {
    const v = input(name);
    if (v !== '' && v !== IGNORED_DEFAULTS[name]) notices.push(`input ${name} is ignored: ${why}`);
  }
  const binaryPath = fileInput('binary-path', problems);
  if (binaryPath) {
    try {
      fs.accessSync(binaryPath, fs.constants.X_OK);
    } catch (e) {
      problems.push(`input binary-path: ${input('binary-path')} is not executable`);
    }
  }
  // On a pull request (and events that check one out) the file is read from a trusted commit
  // (policy.js), not the checkout.
  const isPullRequest = require('./policy').fromCommit();
  const policyFile = fileInput('policy-file', problems, { mustExist: !isPullRequest });
  const config = {
    mode,
    modeInput,
    failOn,
    allowedEndpoints: input('allowed-endpoints'),
    allowedUrls: input('allowed-urls'),
    disableSudo,
    fileMonitoring: !bool('disable-file-monitoring', problems),
    tlsInspection: bool('tls-inspection', problems),
    secrets: parseSecrets(input('secrets'), problems),
    token: input('token'),
    policyFile,
    policyFileInput: input('policy-file'),
    isPullRequest,
    baseline: fileInput('baseline', problems),
    binaryPath,
    cgroup: cgroupInput(problems),
  };
  return { config, problems, notices, warnings };
}

module.exports = { read, parseSecrets, cgroup2Mount, IGNORED };
