// Talking to the warden binary: which flags it has (so an action newer or older than its
// binary degrades clearly instead of failing on an unknown flag), the `warden start` command
// line for the inputs, and Warden's own complaints turned back into input names.
'use strict';

const { run } = require('./runner');

/** Flags the binary's `start` and `report` know, from their --help. */
function features(bin) {
  const start = run([bin, 'start', '--help']).stdout;
  const report = run([bin, 'report', '--help']).stdout;
  const has = (text, flag) => new RegExp(`(^|\\s)${flag}(\\s|=|$)`, 'm').test(text);
  return {
    allowedUrls: has(start, '--allowed-urls'),
    secretFile: has(start, '--secret-file'),
    workspace: has(start, '--workspace'),
    noFileMonitoring: has(start, '--no-file-monitoring'),
    readerUid: has(start, '--reader-uid'),
    printEnv: has(start, '--print-env'),
    baseline: has(report, '--baseline'),
    startBaseline: has(start, '--baseline'),
  };
}

/**
 * The arguments after `warden start` for `config`; `paths` has auditLog, policy (a file or ''),
 * secretFile (or ''), readerUid. Returns { args, problems, notices }: a problem when an input
 * the workflow set needs a flag this binary lacks.
 */
function startArgs(config, paths, f) {
  const args = ['--cgroup', config.cgroup, '--audit-log', paths.auditLog];
  // Inline inputs override the policy file key by key; an unset mode leaves the file's.
  if (config.modeInput || !paths.policy) args.push('--egress-policy', config.mode);
  const problems = [];
  const notices = [];
  if (config.allowedEndpoints) args.push('--allowed-endpoints', config.allowedEndpoints);
  if (paths.policy) args.push('--policy', paths.policy);
  if (config.tlsInspection) args.push('--tls-inspection');
  if (config.allowedUrls) {
    if (f.allowedUrls) args.push('--allowed-urls', config.allowedUrls);
    else problems.push('input allowed-urls: this warden binary has no URL rules (--allowed-urls); use a newer release');
  }
  if (paths.secretFile) {
    if (f.secretFile) args.push('--secret-file', paths.secretFile);
    else if (Object.keys(config.secrets).length > 0) {
      problems.push('input secrets: this warden binary cannot watch secrets (--secret-file); use a newer release');
    } else {
      notices.push('this warden binary cannot watch secrets (--secret-file): the token is not watched');
    }
  }
  const workspace = process.env.GITHUB_WORKSPACE;
  if (config.fileMonitoring) {
    if (f.workspace && workspace) {
      args.push('--workspace', workspace);
      // The baseline's expected file writers.
      if (config.baseline && f.startBaseline) args.push('--baseline', config.baseline);
    } else if (!f.workspace) notices.push('this warden binary has no file monitoring (--workspace): source files are not watched');
  } else if (f.noFileMonitoring) {
    args.push('--no-file-monitoring');
  }
  if (f.readerUid && paths.readerUid !== undefined && paths.readerUid !== 0) {
    args.push('--reader-uid', String(paths.readerUid));
  }
  if (f.printEnv) args.push('--print-env');
  return { args, problems, notices };
}

/** Warden's flag names in its messages, as the inputs that set them. */
const FLAG_INPUTS = [
  ['--allowed-endpoints', 'allowed-endpoints'],
  ['--allowed-urls', 'allowed-urls'],
  ['--no-inspect', 'policy-file'],
  ['--egress-policy', 'egress-policy'],
  ['--cgroup', 'cgroup'],
  ['--secret-file', 'secrets'],
  ['--baseline', 'baseline'],
];

/**
 * `warden start`'s complaints about its input (exit 2) as problems naming the input: a flag's
 * message names its input; anything about the policy file names `policy-file`.
 */
function inputProblems(stderr, policyShown, policyPath) {
  return stderr
    .split('\n')
    .map((l) => l.replace(/^warden: /, '').trim())
    .filter((l) => l !== '' && !/^(Usage|For more information)/.test(l))
    .map((l) => {
      for (const [flag, name] of FLAG_INPUTS) {
        if (l.startsWith(`${flag}:`)) return `input ${name}: ${l.slice(flag.length + 1).trim()}`;
      }
      if (policyPath && l.includes(policyPath)) {
        return `input policy-file: ${l.split(policyPath).join(policyShown)}`;
      }
      return l;
    });
}

module.exports = { features, startArgs, inputProblems };
