// Largest-Triangle-Three-Buckets (Steinarsson 2013): picks `threshold` points of a series that
// keep its visual shape — the first and last points, and from each of the buckets between them
// the point forming the largest triangle with the point chosen before and the average of the
// next bucket.
//
// NaN points (a series read with nan=propagate) have no area: a bucket that holds one is
// represented by its first NaN, so that the plot shows a gap wherever the readings had one; NaN is
// left out of the next bucket's average, and the triangles keep their last corner that is a number.

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
  while (a < n - 1 && ys[a] !== ys[a]) a++;
  for (let i = 0; i < threshold - 2; i++) {
    const nextStart = Math.floor((i + 1) * every) + 1;
    const nextEnd = Math.min(Math.floor((i + 2) * every) + 1, n);
    let avgX = 0; let avgY = 0; let len = 0;
    for (let k = nextStart; k < nextEnd; k++) {
      if (ys[k] !== ys[k]) continue;
      avgX += xs[k]; avgY += ys[k]; len++;
    }
    if (len > 0) { avgX /= len; avgY /= len; } else { avgX = xs[nextStart]; avgY = ys[a]; }
    const start = Math.floor(i * every) + 1;
    const end = Math.floor((i + 1) * every) + 1;
    let best = -1; let chosen = start; let nan = -1;
    for (let k = start; k < end; k++) {
      if (ys[k] !== ys[k]) { if (nan < 0) nan = k; continue; }
      const area = Math.abs((xs[a] - avgX) * (ys[k] - ys[a]) - (xs[a] - xs[k]) * (avgY - ys[a]));
      if (area > best) { best = area; chosen = k; }
    }
    if (nan >= 0) { out.push(nan); continue; }
    out.push(chosen);
    a = chosen;
  }
  out.push(n - 1);
  return out;
}
