// Formatting of times and durations for people, in their own time zone.

const timeOfDay = new Intl.DateTimeFormat(undefined, {hour: '2-digit', minute: '2-digit', second: '2-digit'});
const dateAndTime = new Intl.DateTimeFormat(undefined, {
  month: 'short', day: 'numeric', hour: '2-digit', minute: '2-digit', second: '2-digit',
});
const full = new Intl.DateTimeFormat(undefined, {dateStyle: 'full', timeStyle: 'long'});

export function parseTime(iso) {
  if (!iso) return null;
  const date = new Date(iso);
  return Number.isNaN(date.getTime()) ? null : date;
}

// "14:03:07" for today, "Nov 24, 14:03:07" otherwise.
export function formatLocalTime(iso) {
  const date = parseTime(iso);
  if (!date) return '—';
  const now = new Date();
  const sameDay = date.toDateString() === now.toDateString();
  return (sameDay ? timeOfDay : dateAndTime).format(date);
}

export function formatFullTime(iso) {
  const date = parseTime(iso);
  return date ? full.format(date) : '';
}

// Log timestamps: local time of day with milliseconds.
export function formatLogTime(iso) {
  const date = parseTime(iso);
  if (!date) return '';
  const pad = (n, width = 2) => String(n).padStart(width, '0');
  return `${pad(date.getHours())}:${pad(date.getMinutes())}:${pad(date.getSeconds())}.${pad(date.getMilliseconds(), 3)}`;
}

// A finished run: "420 ms", "3.2 s", "1:05", "2:03:09". A live one ticks in
// whole seconds, so it reads "0:07" rather than flickering decimals.
export function formatDuration(ms, live = false) {
  const value = Math.max(0, Number(ms) || 0);
  if (!live && value < 1000) return `${Math.round(value)} ms`;
  if (!live && value < 10000) return `${(value / 1000).toFixed(1)} s`;
  const totalSeconds = Math.floor(value / 1000);
  const hours = Math.floor(totalSeconds / 3600);
  const minutes = Math.floor((totalSeconds % 3600) / 60);
  const seconds = String(totalSeconds % 60).padStart(2, '0');
  return hours > 0 ? `${hours}:${String(minutes).padStart(2, '0')}:${seconds}` : `${minutes}:${seconds}`;
}

export const ACTIVE_STATUSES = new Set(['queued', 'running', 'stopping']);
export const TERMINAL_STATUSES = ['completed', 'failed', 'cancelled'];
export const isActive = (run) => ACTIVE_STATUSES.has(run.status);

export const KIND_LABELS = {installed: 'Installed', remix: 'Remix', local: 'Local'};
