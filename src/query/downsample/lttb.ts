// Largest-Triangle-Three-Buckets (Steinarsson 2013): picks `threshold` points of a series that
// keep its visual shape — the first and last points, and from each of the buckets between them
// the point forming the largest triangle with the point chosen before and the average of the
// next bucket.

/** Indices of the chosen points, ascending. xs must be ascending. */
export function lttb(xs: ArrayLike<number>, ys: ArrayLike<number>, threshold: number): number[] {
  const n = xs.length;
  if (threshold >= n || threshold <= 2) {
    if (threshold >= n) return Array.from({ length: n }, (_, i) => i);
    return n === 0 ? [] : threshold <= 1 ? [0] : [0, n - 1];
  }
  const out = [0];
  const every = (n - 2) / (threshold - 2);
  let a = 0;
  for (let i = 0; i < threshold - 2; i++) {
    const nextStart = Math.floor((i + 1) * every) + 1;
    const nextEnd = Math.min(Math.floor((i + 2) * every) + 1, n);
    let avgX = 0; let avgY = 0;
    for (let k = nextStart; k < nextEnd; k++) { avgX += xs[k]; avgY += ys[k]; }
    const len = nextEnd - nextStart;
    avgX /= len; avgY /= len;
    const start = Math.floor(i * every) + 1;
    const end = Math.floor((i + 1) * every) + 1;
    let best = -1; let chosen = start;
    for (let k = start; k < end; k++) {
      const area = Math.abs((xs[a] - avgX) * (ys[k] - ys[a]) - (xs[a] - xs[k]) * (avgY - ys[a]));
      if (area > best) { best = area; chosen = k; }
    }
    out.push(chosen);
    a = chosen;
  }
  out.push(n - 1);
  return out;
}
