// File-name patterns for `watch --pattern`: *, ?, [abc], [!abc] and {a,b}, matched against the
// name alone (not the path), without regard to case on Windows and macOS.

export function globToRegExp(glob: string, caseless = process.platform === 'win32' || process.platform === 'darwin'): RegExp {
  let re = '';
  let inBraces = 0;
  for (let i = 0; i < glob.length; i++) {
    const c = glob[i];
    if (c === '*') re += '[^/\\\\]*';
    else if (c === '?') re += '[^/\\\\]';
    else if (c === '[') {
      const end = glob.indexOf(']', i + 2);
      if (end < 0) { re += '\\['; continue; }
      let body = glob.slice(i + 1, end);
      if (body.startsWith('!')) body = `^${body.slice(1)}`;
      re += `[${body.replace(/\\/g, '\\\\')}]`;
      i = end;
    } else if (c === '{') { inBraces++; re += '(?:'; }
    else if (c === '}' && inBraces > 0) { inBraces--; re += ')'; }
    else if (c === ',' && inBraces > 0) re += '|';
    else re += c.replace(/[.+^$()|\\/]/g, '\\$&');
  }
  if (inBraces > 0) throw new Error(`pattern ${JSON.stringify(glob)} has an unclosed {`);
  return new RegExp(`^${re}$`, caseless ? 'i' : '');
}
