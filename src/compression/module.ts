// Compressed chunks, wired into the server: the compress_after stream setting and the
// `compression` job. Readers find segments through read.ts.
import './policy.ts';
import './compression-job.ts';
