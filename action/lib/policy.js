// The `policy-file` input. It is read when main runs, so the repository must be checked out
// before this step. On `pull_request` (and `pull_request_target`) the checkout is the pull
// request's code, which its author controls: a policy read from there would let any pull
// request allow itself anything. So on those events the file is read from the base branch's
// commit (the event's `pull_request.base.sha`) with `git show`, never from the working tree, and
// the step fails if that commit cannot be had.
'use strict';

const fs = require('node:fs');
const path = require('node:path');
const { run } = require('./runner');

/** The base commit of the pull request that triggered this run, from $GITHUB_EVENT_PATH. */
function baseSha() {
  const file = process.env.GITHUB_EVENT_PATH;
  if (!file) throw new Error('$GITHUB_EVENT_PATH is not set, so the base branch is unknown');
  const event = JSON.parse(fs.readFileSync(file, 'utf8'));
  const sha = event && event.pull_request && event.pull_request.base && event.pull_request.base.sha;
  if (typeof sha !== 'string' || !/^[0-9a-f]{40}([0-9a-f]{24})?$/.test(sha)) {
    throw new Error('the event has no pull_request.base.sha');
  }
  return sha;
}

/**
 * Events whose workflows commonly check out a pull request's head although the workflow itself
 * comes from the default branch: there the policy is read from `$GITHUB_SHA` (the commit the
 * workflow came from), never from the working tree.
 */
const HEAD_CHECKOUT_EVENTS = [
  'issue_comment',
  'workflow_run',
  'pull_request_review',
  'pull_request_review_comment',
];

/** Whether this run's policy file must be read from a trusted commit rather than the checkout. */
function fromCommit() {
  const event = process.env.GITHUB_EVENT_NAME || '';
  return ['pull_request', 'pull_request_target', ...HEAD_CHECKOUT_EVENTS].includes(event);
}

/** The commit to read the policy from: a pull request's base, else `$GITHUB_SHA`. */
function trustedSha() {
  if (!HEAD_CHECKOUT_EVENTS.includes(process.env.GITHUB_EVENT_NAME || '')) return baseSha();
  const sha = process.env.GITHUB_SHA || '';
  if (!/^[0-9a-f]{40}([0-9a-f]{24})?$/.test(sha)) throw new Error('$GITHUB_SHA is not a commit id');
  return sha;
}

/**
 * The policy text as it is on the base branch: `file` (absolute, inside the workspace) at the
 * pull request's base commit (or, see [`HEAD_CHECKOUT_EVENTS`], the workflow's own commit).
 * Fetches that commit (depth 1) when the checkout lacks it.
 */
function fromBase(file) {
  const workspace = process.env.GITHUB_WORKSPACE || process.cwd();
  const rel = path.relative(workspace, file);
  if (rel.startsWith('..') || path.isAbsolute(rel)) {
    throw new Error(`${file} is outside the workspace ${workspace}; on a pull request it must be a file of the repository`);
  }
  const sha = trustedSha();
  const spec = `${sha}:./${rel.split(path.sep).join('/')}`;
  const git = (...args) => run(['git', '-C', workspace, ...args]);
  let shown = git('show', spec);
  if (shown.status !== 0) {
    git('fetch', '--no-tags', '--depth=1', 'origin', sha);
    shown = git('show', spec);
  }
  if (shown.status !== 0) {
    const why = (shown.stderr || shown.error).trim();
    throw new Error(
      `on ${process.env.GITHUB_EVENT_NAME} the policy file is read from the base branch (commit ${sha}), ` +
        `never from the pull request's head; it could not be read from there: ${why}`
    );
  }
  return shown.stdout;
}

module.exports = { fromBase, baseSha, fromCommit, HEAD_CHECKOUT_EVENTS };
