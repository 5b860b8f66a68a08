// Colours from Okabe and Ito's palette (distinguishable with every common
// colour-vision deficiency), and severities on a ramp that also differs in
// lightness. Colour never carries meaning alone: every status and severity
// also has a shape and a word.

import type { Severity, Status } from '../types';

export const STATUS_COLOR: Record<Status, string> = {
  online: '#0072B2',
  offline: '#8a8a8a',
  never_seen: '#c4c4c4',
};

/** A glyph per status, shown next to the word. */
export const STATUS_GLYPH: Record<Status, string> = {
  online: '●',
  offline: '○',
  never_seen: '◌',
};

export const STATUS_LABEL: Record<Status, string> = {
  online: 'Online',
  offline: 'Offline',
  never_seen: 'Never seen',
};

export const SEVERITIES: Severity[] = ['warning', 'minor', 'major', 'critical'];

export const SEVERITY_COLOR: Record<Severity, string> = {
  warning: '#F0E442',
  minor: '#E69F00',
  major: '#D55E00',
  critical: '#7A0403',
};

/** Text colour that reads on the severity colour. */
export const SEVERITY_INK: Record<Severity, string> = {
  warning: '#222',
  minor: '#222',
  major: '#fff',
  critical: '#fff',
};

export const SEVERITY_GLYPH: Record<Severity, string> = {
  warning: '!',
  minor: '▲',
  major: '◆',
  critical: '⬢',
};

/** Glyphs that the common fonts (DejaVu, Liberation) all have. */
export const LIFECYCLE_GLYPH: Record<string, string> = {
  active: '✓',
  throttled: '↓',
  quarantined: '⊡',
  blocked: '⊘',
  retired: '×',
};

/** Categorical series (charts): Okabe-Ito order. */
export const SERIES = ['#0072B2', '#E69F00', '#009E73', '#CC79A7', '#56B4E9', '#D55E00', '#F0E442', '#000000'];
