// `disable-sudo`: once Warden runs, the job's user loses sudo, so no later step can become root
// and stop Warden, unload its hooks or edit the trust store. As harden-runner does, the user's
// rules are taken out of /etc/sudoers.d (GitHub's hosted runners grant the `runner` user
// passwordless sudo in /etc/sudoers.d/runner); the files are moved into Warden's root-only
// directory rather than deleted. Then it is checked: `sudo -n true` must fail for the user.
// Rules in /etc/sudoers itself are not edited; if one still grants sudo, the check says so.
//
// WARDEN_SUDOERS_DIR and WARDEN_SUDO_USER exist for the tests only (a private directory and a
// test user name instead of the machine's): they never point at anything real there.
'use strict';

const os = require('node:os');
const path = require('node:path');
const { run, isRoot } = require('./runner');

const SUDOERS_DIR = '/etc/sudoers.d';

/** The job's user: the one whose sudo `disable` takes (and who may read the log after). */
function jobUser() {
  return process.env.WARDEN_SUDO_USER || os.userInfo().username;
}

/** Whether sudoers `text` has a rule for `user` or one of `groups` (or for ALL). */
function grants(text, user, groups) {
  const who = new Set([user, 'ALL', ...groups.map((g) => `%${g}`)]);
  return text.split('\n').some((raw) => {
    const line = raw.replace(/#.*/, '').trim();
    if (line === '' || /^(Defaults|User_Alias|Runas_Alias|Host_Alias|Cmnd_Alias)\b/.test(line)) return false;
    const first = line.split(/[\s,]+/)[0];
    return who.has(first);
  });
}

/**
 * Takes sudo away from the job's user. Returns { ok, said }: `said` lists what was done or why
 * it could not be (each a sentence).
 */
function disable(stash) {
  const dir = process.env.WARDEN_SUDOERS_DIR || SUDOERS_DIR;
  const user = jobUser();
  const said = [];
  if (user === 'root') {
    return { ok: false, said: ['the job runs as root: disable-sudo cannot take root away'] };
  }
  const groups = run(['id', '-nG', user]).stdout.trim().split(/\s+/).filter(Boolean);
  const listed = run(['find', dir, '-maxdepth', '1', '-type', 'f'], { root: true });
  if (listed.status !== 0) {
    said.push(`${dir} could not be listed (${(listed.stderr || listed.error).trim()}); nothing removed`);
  }
  for (const file of listed.stdout.split('\n').filter(Boolean).sort()) {
    const text = run(['cat', file], { root: true });
    if (text.status !== 0 || !grants(text.stdout, user, groups)) continue;
    const moved = run(['mv', file, path.join(stash, `sudoers.d-${path.basename(file)}`)], { root: true });
    if (moved.status === 0) said.push(`removed ${file} (it granted ${user} sudo)`);
    else said.push(`could not remove ${file}: ${(moved.stderr || moved.error).trim()}`);
  }
  if (process.env.WARDEN_SUDOERS_DIR || isRoot()) {
    // Tests (a private directory), or a job already root: there is no sudo of ours to try.
    return { ok: true, said };
  }
  run(['sudo', '-k']);
  const check = run(['sudo', '-n', 'true']);
  if (check.status === 0) {
    said.push(`${user} can still use sudo (a rule outside ${dir}, e.g. in /etc/sudoers, grants it)`);
    return { ok: false, said };
  }
  said.push(`${user} can no longer use sudo`);
  return { ok: true, said };
}

module.exports = { disable, grants, jobUser, SUDOERS_DIR };
