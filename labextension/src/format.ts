/**
 * Sizes and durations as the kernel's `%llm ps` writes them.
 */

const UNITS = ['KiB', 'MiB', 'GiB', 'TiB'];

/** 1536 -> "1.5 KiB"; null -> "-". */
export function formatBytes(count: number | null): string {
  if (count === null) {
    return '-';
  }
  if (Math.abs(count) < 1024) {
    return `${count} B`;
  }
  let value = count / 1024;
  let index = 0;
  while (Math.abs(value) >= 1024 && index < UNITS.length - 1) {
    value /= 1024;
    index += 1;
  }
  return `${value.toFixed(1)} ${UNITS[index]}`;
}

/** Bytes as GiB with one decimal, for the status bar. */
export function formatGiB(count: number): string {
  return `${(count / 1024 ** 3).toFixed(1)} GiB`;
}

/** 300 -> "5m"; 90 -> "1m30s"; null -> "forever". */
export function formatDuration(seconds: number | null): string {
  if (seconds === null) {
    return 'forever';
  }
  const whole = Math.round(seconds);
  if (whole < 60) {
    return `${whole}s`;
  }
  if (whole < 3600) {
    const rest = whole % 60;
    return `${Math.floor(whole / 60)}m${rest ? `${rest}s` : ''}`;
  }
  const minutes = Math.floor((whole % 3600) / 60);
  return `${Math.floor(whole / 3600)}h${minutes ? `${minutes}m` : ''}`;
}

/** A countdown: 272 -> "4:32", 3725 -> "1:02:05". */
export function formatCountdown(seconds: number): string {
  const whole = Math.max(0, Math.ceil(seconds));
  const pad = (n: number) => String(n).padStart(2, '0');
  const hours = Math.floor(whole / 3600);
  const minutes = Math.floor((whole % 3600) / 60);
  const rest = whole % 60;
  return hours
    ? `${hours}:${pad(minutes)}:${pad(rest)}`
    : `${minutes}:${pad(rest)}`;
}
