// What the post step makes of a report: one annotation per anomaly and per blocked destination
// (errors in block mode, warnings in audit mode), and whether `fail-on` fails the step.
'use strict';

const r = require('./runner');

/** GitHub shows at most 10 error and 10 warning annotations per step. */
const MAX_ANNOTATIONS = 10;

function annotate(rep, mode) {
  const say = mode === 'block' ? r.error : r.warning;
  const notes = [];
  for (const a of rep.anomalies) {
    const where = [a.destination, a.step && `step ${a.step}`, a.process].filter(Boolean).join(', ');
    notes.push([`${a.kind}: ${a.detail} (${where}${a.count > 1 ? `; ${a.count} times` : ''})`, `Warden anomaly: ${a.kind}`]);
  }
  for (const b of rep.blocked) {
    const steps = b.steps.length ? ` in ${b.steps.join(', ')}` : '';
    const allow = b.allow_with
      ? `; to allow it, add to allowed-endpoints: ${b.allow_with}`
      : b.allow_url
        ? `; to allow it, add to allowed-urls: ${b.allow_url}`
        : '';
    notes.push([`${b.destination} was blocked${steps} (${b.processes.join(', ')}; ${b.count}×)${allow}`, 'Warden blocked a destination']);
  }
  // Anomalies come first, so they are the ones shown when there are too many.
  const room = rep.enforcement.held ? MAX_ANNOTATIONS : MAX_ANNOTATIONS - 1;
  const shown = notes.length > room ? notes.slice(0, room - 1) : notes;
  for (const [message, title] of shown) say(message, { title });
  if (shown.length < notes.length) {
    say(`and ${notes.length - shown.length} more blocked destinations or anomalies: see the job summary`, { title: 'Warden' });
  }
  if (!rep.enforcement.held) {
    r.error(`Warden: enforcement did not hold for the whole job: ${rep.enforcement.problems.join('; ')}`);
  }
}

/**
 * Why `fail-on` fails the step for this report (empty: it does not). Enforcement that did not
 * hold fails it unless `fail-on` is `never`.
 */
function verdict(rep, failOn) {
  const t = rep.totals;
  const why = [];
  if (!rep.enforcement.held) why.push('enforcement did not hold');
  if (failOn === 'never') return [];
  if (t.blocked > 0) why.push(`${t.blocked} blocked`);
  if (failOn === 'anomaly' && t.anomalies > 0) why.push(`${t.anomalies} with anomalies`);
  return why;
}

module.exports = { annotate, verdict };
