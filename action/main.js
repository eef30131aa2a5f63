// The action's main step: check the inputs, get the binary, start Warden on the runner (or the
// `cgroup` input), wait until enforcement is really on, export what later steps need through
// $GITHUB_ENV, then apply disable-sudo. In block mode anything that keeps Warden from enforcing
// fails the step; in audit mode it is a warning. Never silent.
'use strict';

const fs = require('node:fs');
const path = require('node:path');
const os = require('node:os');
const r = require('./lib/runner');
const inputs = require('./lib/inputs');
const binary = require('./lib/binary');
const policy = require('./lib/policy');
const sudo = require('./lib/sudo');
const warden = require('./lib/warden');

/** Warden's state root; traversable (0711), not listable. */
const RUN_DIR = '/run/warden';

class Failure extends Error {
  /** `problems`: one line each; `input`: true when the workflow's inputs are at fault. */
  constructor(problems, { input = false } = {}) {
    super(problems.join('; '));
    this.problems = problems;
    this.input = input;
  }
}

/** Fails or warns, by mode, for something that keeps Warden from enforcing. */
function notEnforcing(mode, problems) {
  const tail = mode === 'block' ? 'Warden is NOT enforcing: failing the step (block mode)' : 'Warden is NOT recording this job (audit mode goes on)';
  for (const p of problems) (mode === 'block' ? r.error : r.warning)(`Warden: ${p}`);
  (mode === 'block' ? r.error : r.warning)(tail);
  if (mode === 'block') process.exitCode = 1;
}

function rootDirs() {
  const id = `${process.env.GITHUB_RUN_ID || 'local'}-${process.env.GITHUB_RUN_ATTEMPT || '1'}-${process.pid}`;
  const dir = path.join(RUN_DIR, `action-${id}`);
  const binDir = path.join(RUN_DIR, `action-${id}-bin`);
  for (const [d, mode] of [[RUN_DIR, '0711'], [dir, '0700'], [binDir, '0755']]) {
    const made = r.run(['install', '-d', '-m', mode, '-o', '0', '-g', '0', d], { root: true });
    if (made.status !== 0) {
      throw new Failure([`cannot create ${d} as root (${(made.stderr || made.error).trim()}); Warden needs root (passwordless sudo)`]);
    }
  }
  return { dir, binDir };
}

/** The verified binary, installed root-owned where no later step can replace it. */
async function installBinary(config, binDir) {
  const tmp = fs.mkdtempSync(path.join(process.env.RUNNER_TEMP || os.tmpdir(), 'warden-'));
  let src;
  try {
    src = await binary.obtain(config.binaryPath, tmp);
  } catch (e) {
    throw new Failure([config.binaryPath ? `input binary-path: ${e.message}` : e.message]);
  }
  const bin = path.join(binDir, 'warden');
  const copied = r.run(['install', '-m', '0755', '-o', '0', '-g', '0', src, bin], { root: true });
  fs.rmSync(tmp, { recursive: true, force: true });
  if (copied.status !== 0) throw new Failure([`cannot install ${src}: ${(copied.stderr || copied.error).trim()}`]);
  return bin;
}

/** The policy file warden reads: the input's, or on a pull request the base branch's copy. */
function policyPath(config, dir) {
  if (!config.policyFile) return '';
  if (!config.isPullRequest) return config.policyFile;
  let text;
  try {
    text = policy.fromBase(config.policyFile);
  } catch (e) {
    throw new Failure([`input policy-file: ${e.message}`], { input: true });
  }
  const p = path.join(dir, 'policy.yml');
  const w = r.writeRootFile(p, text);
  if (w.status !== 0) throw new Failure([`cannot write ${p}: ${w.stderr.trim()}`]);
  r.info(`Warden: policy-file ${config.policyFileInput} read from the pull request's base branch`);
  return p;
}

/** The secrets file (the `secrets` input plus the token as GITHUB_TOKEN), root-only, or ''. */
function secretFile(config, dir) {
  const secrets = { ...config.secrets };
  if (config.token && !secrets.GITHUB_TOKEN) secrets.GITHUB_TOKEN = config.token;
  if (Object.keys(secrets).length === 0) return '';
  const p = path.join(dir, 'secrets.json');
  const w = r.writeRootFile(p, JSON.stringify(secrets));
  if (w.status !== 0) throw new Failure([`cannot write the secrets file: ${w.stderr.trim()}`]);
  return p;
}

function uidOf(user) {
  const id = r.run(['id', '-u', user]);
  return id.status === 0 ? Number(id.stdout.trim()) : undefined;
}

async function start(config) {
  const { dir, binDir } = rootDirs();
  // Saved at once: post (and nothing else) removes them, even when main fails from here on.
  r.saveState('dir', dir);
  r.saveState('bin-dir', binDir);
  const bin = await installBinary(config, binDir);
  const f = warden.features(bin);
  const paths = {
    auditLog: path.join(dir, 'audit.jsonl'),
    policy: policyPath(config, dir),
    secretFile: secretFile(config, dir),
    readerUid: uidOf(sudo.jobUser()),
  };
  const { args, problems, notices } = warden.startArgs(config, paths, f);
  if (config.baseline && !f.baseline) {
    notices.push('input baseline is not used: this warden binary has no `report --baseline` (issue #9)');
  }
  notices.forEach((n) => r.notice(`Warden: ${n}`));
  if (problems.length) throw new Failure(problems, { input: true });
  r.saveState('bin', bin);
  r.saveState('cgroup', config.cgroup);
  r.saveState('baseline', config.baseline);
  r.saveState('report-baseline', f.baseline ? 'true' : 'false');
  r.info(`Warden: warden start ${args.join(' ')}`);
  const started = r.run([bin, 'start', ...args], { root: true });
  r.passthrough(started.stderr);
  if (started.status === 2) {
    throw new Failure(warden.inputProblems(started.stderr, config.policyFileInput, paths.policy), { input: true });
  }
  if (started.status !== 0) {
    throw new Failure([`warden start failed (exit ${started.status}): ${(started.stderr || started.error).trim().split('\n').pop()}`]);
  }
  r.saveState('started', 'true');
  r.saveState('mode', config.mode);
  // `start` returns only once the hooks are attached and the proxy listens; ask once more, so
  // the step says "on" only when the daemon itself says so.
  const status = r.run([bin, 'status', '--json', '--cgroup', config.cgroup], { root: true });
  let said = {};
  try {
    said = JSON.parse(status.stdout);
  } catch (e) {
    said = {};
  }
  if (said.state !== 'on') throw new Failure([`warden status says ${JSON.stringify(said.state || status.stdout.trim())}, not on`]);
  // The mode in force: the input's, or the policy file's when the input was unset.
  if (said.mode === 'audit' || said.mode === 'block') config.mode = said.mode;
  r.saveState('mode', config.mode);
  r.saveState('fail-on', config.failOn || (config.mode === 'block' ? 'blocked' : 'never'));
  for (const line of started.stdout.split('\n')) {
    const eq = line.indexOf('=');
    if (eq > 0) r.exportVariable(line.slice(0, eq), line.slice(eq + 1));
  }
  r.info(`Warden: enforcing (${config.mode} mode) on ${config.cgroup}`);
  return dir;
}

async function main() {
  const { config, problems, notices, warnings } = inputs.read();
  if (process.platform !== 'linux') {
    const say = config.mode === 'block' ? r.error : r.warning;
    say(`Warden supports Linux runners only; this runner is ${process.platform}: nothing is recorded or blocked`);
    r.saveState('started', 'false');
    if (config.mode === 'block') process.exitCode = 1;
    return;
  }
  notices.forEach((n) => r.notice(`Warden: ${n}`));
  warnings.forEach((w) => r.warning(`Warden: ${w}`));
  if (problems.length) {
    problems.forEach((p) => r.error(`Warden: ${p}`));
    r.saveState('started', 'false');
    process.exitCode = 1;
    return;
  }
  let dir;
  try {
    dir = await start(config);
  } catch (e) {
    if (!(e instanceof Failure)) throw e;
    if (e.input) {
      e.problems.forEach((p) => r.error(`Warden: ${p}`));
      process.exitCode = 1;
    } else {
      notEnforcing(config.mode, e.problems);
    }
    return;
  }
  if (config.disableSudo) {
    const { ok, said } = sudo.disable(dir);
    said.forEach((s) => r.info(`Warden: disable-sudo: ${s}`));
    if (ok) {
      r.saveState('sudo-disabled', 'true');
    } else {
      const say = config.mode === 'block' ? r.error : r.warning;
      say(`Warden: disable-sudo did not take effect: ${said[said.length - 1]}`);
      if (config.mode === 'block') process.exitCode = 1;
    }
  }
}

main().catch((e) => {
  r.error(`Warden: internal error: ${e && e.stack ? e.stack : e}`);
  process.exitCode = 1;
});
