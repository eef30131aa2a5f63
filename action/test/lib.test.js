// Unit tests of the action's pure parts, with node's own test runner (`node --test action/test/`;
// tests/tests/action_unit.rs runs them under cargo test).
'use strict';

const test = require('node:test');
const assert = require('node:assert/strict');
const { parseSecrets, cgroup2Mount } = require('../lib/inputs');
const { grants } = require('../lib/sudo');
const { escapeData, escapeProperty } = require('../lib/runner');
const { startArgs, inputProblems } = require('../lib/warden');
const { target } = require('../lib/binary');

test('secrets: a JSON object or NAME=value lines, problems never quote values', () => {
  const p = [];
  assert.deepEqual(parseSecrets('{"A":"x","B":"","github_token":"t"}', p), { A: 'x', github_token: 't' });
  assert.deepEqual(parseSecrets('A=x=y\n\n# c\nB_2= spaced ', p), { A: 'x=y', B_2: ' spaced ' });
  assert.deepEqual(p, []);
  parseSecrets('{"A": 1, "1B": "v"}', p);
  parseSecrets('novalue-here\nOK=1', p);
  parseSecrets('{not json', p);
  assert.deepEqual(p, [
    'input secrets: the value of A is not a string',
    'input secrets: "1B" is not a variable name',
    'input secrets: line 1 is not NAME=value',
    'input secrets: starts with { but is not valid JSON (give a JSON object or NAME=value lines)',
  ]);
  assert.ok(!p.join().includes('novalue'));
});

test('sudoers rules for the user, its groups or ALL', () => {
  assert.ok(grants('runner ALL=(ALL) NOPASSWD:ALL\n', 'runner', []));
  assert.ok(grants('# x\n%adm ALL=(ALL) ALL\n', 'runner', ['adm']));
  assert.ok(grants('ALL ALL=(ALL) NOPASSWD: ALL', 'runner', []));
  assert.ok(!grants('Defaults env_reset\n# runner ALL=(ALL) ALL\nother ALL=(ALL) ALL\n', 'runner', ['users']));
  assert.ok(!grants('runnerx ALL=(ALL) ALL', 'runner', []));
});

test('workflow command escaping', () => {
  assert.equal(escapeData('a%b\r\nc'), 'a%25b%0D%0Ac');
  assert.equal(escapeProperty('t: a,b'), 't%3A a%2Cb');
});

test('cgroup2 mount from /proc/mounts, hybrid hosts too', () => {
  assert.equal(cgroup2Mount('tmpfs /sys/fs/cgroup tmpfs rw 0 0\ncgroup2 /sys/fs/cgroup/unified cgroup2 rw 0 0\n'), '/sys/fs/cgroup/unified');
  assert.equal(cgroup2Mount('cgroup /a cgroup rw 0 0\n'), '');
});

test('start arguments follow the inputs and what the binary supports', () => {
  const config = {
    cgroup: '/cg', mode: 'block', modeInput: '', allowedEndpoints: 'a.example', allowedUrls: 'GET https://a.example/**',
    tlsInspection: true, secrets: { S: 'v' }, fileMonitoring: true,
  };
  const paths = { auditLog: '/r/a.jsonl', policy: '/r/p.yml', secretFile: '/r/s.json', readerUid: 1001 };
  const all = { allowedUrls: true, secretFile: true, workspace: true, noFileMonitoring: true, readerUid: true, printEnv: true };
  process.env.GITHUB_WORKSPACE = '/ws';
  let r = startArgs(config, paths, all);
  assert.deepEqual(r.problems, []);
  assert.deepEqual(r.args, ['--cgroup', '/cg', '--audit-log', '/r/a.jsonl', '--allowed-endpoints', 'a.example', '--policy', '/r/p.yml',
    '--tls-inspection', '--allowed-urls', 'GET https://a.example/**', '--secret-file', '/r/s.json', '--workspace', '/ws',
    '--reader-uid', '1001', '--print-env']);
  // Without a policy file the mode is always passed; an explicit mode overrides the file's.
  r = startArgs({ ...config, modeInput: 'audit', mode: 'audit' }, paths, all);
  assert.ok(r.args.join(' ').includes('--egress-policy audit'));
  // An older binary: inputs the workflow set fail, defaults degrade with a notice.
  r = startArgs(config, paths, { printEnv: true });
  assert.deepEqual(r.problems, [
    'input allowed-urls: this warden binary has no URL rules (--allowed-urls); use a newer release',
    'input secrets: this warden binary cannot watch secrets (--secret-file); use a newer release',
  ]);
  r = startArgs({ ...config, allowedUrls: '', secrets: {} }, paths, { printEnv: true });
  assert.deepEqual(r.problems, []);
  assert.equal(r.notices.length, 2);
});

test("warden's complaints name the inputs", () => {
  const said = inputProblems('warden: --allowed-endpoints: bad..name: empty label\nwarden: /run/warden/x/policy.yml:3: unknown key "mod"\n',
    '.github/warden.yml', '/run/warden/x/policy.yml');
  assert.deepEqual(said, ['input allowed-endpoints: bad..name: empty label', 'input policy-file: .github/warden.yml:3: unknown key "mod"']);
});

test('release targets', () => {
  assert.equal(target('x64'), 'x86_64-unknown-linux-musl');
  assert.equal(target('arm64'), 'aarch64-unknown-linux-musl');
  assert.equal(target('ia32'), undefined);
});

test('the binary: only over HTTPS, only with a pinned sum', async () => {
  const { download, obtain, pinned } = require('../lib/binary');
  await assert.rejects(download('http://example.invalid/warden', '/nonexistent'), /only HTTPS|anything but HTTPS/);
  if (!pinned().version) {
    await assert.rejects(obtain('', '/nonexistent'), /pins no release binary .*set binary-path/);
  }
  assert.equal(await obtain('/given/warden', '/nonexistent'), '/given/warden');
});

test('fail-on: blocked, anomaly (anomalies or blocked), never; lost enforcement fails unless never', () => {
  const { verdict } = require('../lib/outcome');
  const rep = (blocked, anomalies, held = true) => ({ totals: { blocked, anomalies }, enforcement: { held, problems: [] } });
  assert.deepEqual(verdict(rep(0, 0), 'blocked'), []);
  assert.deepEqual(verdict(rep(2, 1), 'blocked'), ['2 blocked']);
  assert.deepEqual(verdict(rep(0, 1), 'blocked'), []);
  assert.deepEqual(verdict(rep(0, 1), 'anomaly'), ['1 with anomalies']);
  assert.deepEqual(verdict(rep(1, 0), 'anomaly'), ['1 blocked']);
  assert.deepEqual(verdict(rep(5, 5, false), 'never'), []);
  assert.deepEqual(verdict(rep(0, 0, false), 'blocked'), ['enforcement did not hold']);
});

test('annotations: one per anomaly and per blocked destination, error in block mode', () => {
  const { annotate } = require('../lib/outcome');
  const lines = [];
  const write = process.stdout.write;
  process.stdout.write = (s) => lines.push(s);
  try {
    annotate({
      anomalies: [{ kind: 'secret-exfiltration', detail: 'GITHUB_TOKEN in a body', destination: 'x.example:443', step: 's (run: curl)', process: '/usr/bin/curl', count: 2 }],
      blocked: [{ destination: 'y.example:443', allow_with: 'y.example', steps: ['s (run: curl)'], processes: ['/usr/bin/curl'], count: 1 }],
      enforcement: { held: true, problems: [] },
    }, 'audit');
  } finally {
    process.stdout.write = write;
  }
  assert.equal(lines.length, 2);
  assert.match(lines[0], /^::warning title=Warden anomaly%3A secret-exfiltration::secret-exfiltration: GITHUB_TOKEN in a body \(x.example:443, step s \(run: curl\), \/usr\/bin\/curl; 2 times\)/);
  assert.match(lines[1], /^::warning title=Warden blocked a destination::y.example:443 was blocked in s \(run: curl\) .*add to allowed-endpoints: y.example/);
});

test('annotations stop at what GitHub shows, anomalies first', () => {
  const { annotate } = require('../lib/outcome');
  const lines = [];
  const write = process.stdout.write;
  process.stdout.write = (s) => lines.push(s);
  const blocked = Array.from({ length: 12 }, (_, i) => ({ destination: `h${i}.example:443`, steps: [], processes: ['/bin/x'], count: 1 }));
  try {
    annotate({ anomalies: [{ kind: 'doh', detail: 'd', destination: 'dns.example:443', process: '/bin/x', count: 1 }], blocked, enforcement: { held: true, problems: [] } }, 'block');
  } finally {
    process.stdout.write = write;
  }
  assert.equal(lines.length, 10);
  assert.match(lines[0], /^::error title=Warden anomaly%3A doh::/);
  assert.match(lines[9], /and 4 more blocked destinations or anomalies/);
});

test('the policy file comes from a trusted commit on events that check out a pull request', () => {
  const policy = require('../lib/policy');
  const saved = { name: process.env.GITHUB_EVENT_NAME };
  for (const [event, want] of [
    ['push', false],
    ['pull_request', true],
    ['pull_request_target', true],
    ['issue_comment', true],
    ['workflow_run', true],
    ['pull_request_review', true],
  ]) {
    process.env.GITHUB_EVENT_NAME = event;
    assert.equal(policy.fromCommit(), want, event);
  }
  if (saved.name === undefined) delete process.env.GITHUB_EVENT_NAME;
  else process.env.GITHUB_EVENT_NAME = saved.name;
});

test('warden output passes through with workflow commands stopped', () => {
  const r = require('../lib/runner');
  const chunks = [];
  const write = process.stdout.write;
  process.stdout.write = (s) => chunks.push(String(s));
  try {
    r.passthrough('warden: ANOMALY x: a\n::error::injected\n');
  } finally {
    process.stdout.write = write;
  }
  const out = chunks.join('');
  const token = out.match(/^::stop-commands::([0-9a-f]{32})\n/);
  assert.ok(token, out);
  assert.ok(out.endsWith(`::${token[1]}::\n`), out);
  assert.ok(out.includes('\n::error::injected\n'), out);
});
