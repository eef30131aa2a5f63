// The runner's side of an action, with Node's standard library only: inputs, workflow
// commands (annotations), the files the runner reads back ($GITHUB_ENV, $GITHUB_OUTPUT,
// $GITHUB_STATE, $GITHUB_STEP_SUMMARY), and running programs, as root when needed.
'use strict';

const fs = require('node:fs');
const os = require('node:os');
const crypto = require('node:crypto');
const { spawnSync } = require('node:child_process');

/** The raw value of input `name` ('' when unset), as the runner passes it: INPUT_<NAME>. */
function input(name) {
  const key = `INPUT_${name.replace(/ /g, '_').toUpperCase()}`;
  return (process.env[key] || '').trim();
}

/** Escapes a workflow command's message (toolkit's escapeData). */
function escapeData(s) {
  return String(s).replace(/%/g, '%25').replace(/\r/g, '%0D').replace(/\n/g, '%0A');
}

/** Escapes a workflow command's property (toolkit's escapeProperty). */
function escapeProperty(s) {
  return escapeData(s).replace(/:/g, '%3A').replace(/,/g, '%2C');
}

/** Prints `::command props::message` on stdout. */
function command(name, message, props = {}) {
  const p = Object.entries(props)
    .filter(([, v]) => v !== undefined && v !== '')
    .map(([k, v]) => `${k}=${escapeProperty(v)}`)
    .join(',');
  process.stdout.write(`::${name}${p ? ' ' + p : ''}::${escapeData(message)}${os.EOL}`);
}

const error = (msg, props) => command('error', msg, props);
const warning = (msg, props) => command('warning', msg, props);
const notice = (msg, props) => command('notice', msg, props);
/**
 * Warden's own output, shown as it is but never read as workflow commands: its summary names
 * hosts, paths and programs the job chose, and a line starting `::` would be a command.
 */
function passthrough(text) {
  if (!text) return;
  const token = require('node:crypto').randomBytes(16).toString('hex');
  process.stdout.write(`::stop-commands::${token}\n${text}${text.endsWith('\n') ? '' : '\n'}::${token}::\n`);
}

const info = (msg) => process.stdout.write(`${msg}${os.EOL}`);

/** Appends `name=value` to the runner file named by `$variable` (heredoc form when multiline). */
function appendKeyValue(variable, name, value) {
  const file = process.env[variable];
  if (!file) {
    throw new Error(`$${variable} is not set: is this running as a GitHub Action step?`);
  }
  value = String(value);
  let line;
  if (/[\r\n]/.test(value)) {
    const delimiter = `warden_${crypto.randomUUID()}`;
    line = `${name}<<${delimiter}${os.EOL}${value}${os.EOL}${delimiter}${os.EOL}`;
  } else {
    line = `${name}=${value}${os.EOL}`;
  }
  fs.appendFileSync(file, line);
}

const setOutput = (name, value) => appendKeyValue('GITHUB_OUTPUT', name, value);
const exportVariable = (name, value) => appendKeyValue('GITHUB_ENV', name, value);
const saveState = (name, value) => appendKeyValue('GITHUB_STATE', name, value);
/** What main saved with saveState, as the runner gives it to post: STATE_<name>. */
const getState = (name) => process.env[`STATE_${name}`] || '';

/** Appends markdown to the job summary. */
function summary(markdown) {
  const file = process.env.GITHUB_STEP_SUMMARY;
  if (!file) {
    warning('$GITHUB_STEP_SUMMARY is not set: the Warden report is not in the job summary');
    return;
  }
  fs.appendFileSync(file, markdown.endsWith('\n') ? markdown : markdown + '\n');
}

const isRoot = () => typeof process.getuid === 'function' && process.getuid() === 0;

/**
 * Runs `argv` (as root through `sudo -n` when `root` and this process is not root); returns
 * { status, stdout, stderr, error }. Never throws.
 */
function run(argv, { root = false, input: stdin, env } = {}) {
  const [cmd, ...args] = root && !isRoot() ? ['sudo', '-n', '--', ...argv] : argv;
  const r = spawnSync(cmd, args, {
    input: stdin,
    env: env || process.env,
    encoding: 'utf8',
    maxBuffer: 64 * 1024 * 1024,
  });
  return {
    status: r.status === null ? -1 : r.status,
    stdout: r.stdout || '',
    stderr: r.stderr || '',
    error: r.error ? r.error.message : '',
  };
}

/** Writes `content` to `path` as root, mode 0600 (root-only directory files: secrets, policy). */
function writeRootFile(path, content) {
  return run(['sh', '-c', 'umask 077 && cat > "$1"', 'sh', path], { root: true, input: content });
}

module.exports = {
  input,
  escapeData,
  escapeProperty,
  command,
  error,
  warning,
  notice,
  info,
  setOutput,
  exportVariable,
  saveState,
  getState,
  summary,
  isRoot,
  run,
  writeRootFile,
  passthrough,
};
