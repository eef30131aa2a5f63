// The action's post step: stop Warden (or, after disable-sudo, only read its log over the
// read-only channel: the daemon keeps enforcing until the runner exits), copy the audit log and
// a JSON report to $RUNNER_TEMP, write the markdown report (rendered by `warden report`) to the
// job summary, annotate every blocked destination and anomaly, set the outputs, and fail the
// step as `fail-on` says.
'use strict';

const fs = require('node:fs');
const path = require('node:path');
const r = require('./lib/runner');
const { annotate, verdict } = require('./lib/outcome');

const state = (name) => r.getState(name);


/** The audit log, copied to `dest`. Returns { live } (the daemon still enforces). */
function collectLog(bin, cgroup, dir, dest) {
  if (state('sudo-disabled') === 'true') {
    // No sudo: the control socket is out of reach, by design. The read-only socket gives the
    // log so far; enforcement goes on.
    const got = r.run([bin, 'log', '--cgroup', cgroup, '--output', dest]);
    r.passthrough(got.stderr);
    if (got.status !== 0) throw new Error(`warden log failed (exit ${got.status}): ${(got.stderr || got.error).trim()}`);
    r.info('Warden: sudo is disabled, so Warden keeps enforcing until the runner exits; this report covers the job up to now');
    return { live: true };
  }
  const stopped = r.run([bin, 'stop', '--cgroup', cgroup], { root: true });
  r.passthrough(stopped.stderr);
  if (stopped.status !== 0) {
    r.warning(`Warden: warden stop exited ${stopped.status}: enforcement was impaired or lost (see the report)`);
  }
  const uid = process.getuid ? String(process.getuid()) : '0';
  const gid = process.getgid ? String(process.getgid()) : '0';
  const copied = r.run(['install', '-m', '0644', '-o', uid, '-g', gid, path.join(dir, 'audit.jsonl'), dest], { root: true });
  if (copied.status !== 0) throw new Error(`cannot copy the audit log: ${(copied.stderr || copied.error).trim()}`);
  // Secrets and policy copies go with the directory; the binary stays for nothing else.
  r.run(['rm', '-rf', '--', dir], { root: true });
  return { live: false };
}

/** `warden report` in `format`, with the baseline when the binary takes one. */
function report(bin, log, format, live, output) {
  const args = [bin, 'report', '--log', log, '--format', format];
  if (output) args.push('--output', output);
  if (live) args.push('--live');
  if (state('baseline') && state('report-baseline') === 'true') args.push('--baseline', state('baseline'));
  const out = r.run(args);
  if (out.status !== 0) throw new Error(`warden report --format ${format} failed: ${(out.stderr || out.error).trim()}`);
  return out.stdout;
}

function post() {
  if (state('started') !== 'true') {
    // Main may have made Warden's directories before it failed.
    for (const d of [state('dir'), state('bin-dir')].filter(Boolean)) r.run(['rm', '-rf', '--', d], { root: true });
    r.info('Warden did not run in this job (see the main step); nothing to report');
    r.summary('## Warden\n\n❌ Warden did not run in this job: see the Warden step.\n');
    return;
  }
  const bin = state('bin');
  const cgroup = state('cgroup');
  const mode = state('mode');
  const failOn = state('fail-on') || (mode === 'block' ? 'blocked' : 'never');
  const tmp = process.env.RUNNER_TEMP || fs.mkdtempSync('/tmp/warden-');
  const log = path.join(tmp, 'warden-audit.jsonl');
  const json = path.join(tmp, 'warden-report.json');
  const { live } = collectLog(bin, cgroup, state('dir'), log);
  report(bin, log, 'json', live, json);
  r.summary(report(bin, log, 'markdown', live));
  const rep = JSON.parse(fs.readFileSync(json, 'utf8'));
  annotate(rep, mode);
  r.setOutput('audit-log', log);
  r.setOutput('report', json);
  r.setOutput('blocked-count', rep.totals.blocked);
  r.setOutput('anomaly-count', rep.totals.anomalies);
  if (!live) r.run(['rm', '-rf', '--', state('bin-dir')], { root: true });
  const why = verdict(rep, failOn);
  if (why.length) {
    r.error(`Warden: failing the step (fail-on: ${failOn}): ${why.join(', ')}`);
    process.exitCode = 1;
  } else if (!rep.enforcement.held) {
    r.warning('Warden: enforcement did not hold, but fail-on is never');
  }
}

try {
  post();
} catch (e) {
  const msg = e && e.message ? e.message : String(e);
  r.error(`Warden: ${msg}`);
  r.summary(`## Warden\n\n❌ The Warden report could not be made: ${msg.replace(/[<>|`*_[\]]/g, ' ')}\n`);
  process.exitCode = 1;
}
