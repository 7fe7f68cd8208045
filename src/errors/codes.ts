// The stable error codes clients can match on. README.md lists each with its meaning;
// a code, once released, keeps its meaning.
export const errorCodes = {
  // authentication and authorisation
  unauthorized: 'missing, unknown or revoked API key',
  forbidden: 'the key’s role or stream scope does not allow this',
  // request shape
  invalid_request: 'a parameter or header is malformed',
  invalid_body: 'the JSON body does not match its schema',
  not_found: 'no such resource',
  conflict: 'the request conflicts with the current state',
  unsupported_media_type: 'the Content-Type is not one Strata ingests',
  unsupported_encoding: 'the Content-Encoding is not supported',
  body_too_large: 'the body (or its inflated size) exceeds a configured limit',
  empty_body: 'the body is empty',
  // ingest: the file itself
  malformed_gzip: 'the gzip stream is corrupt or truncated',
  gzip_without_encoding: 'the body is gzip but Content-Encoding does not say so',
  malformed_arrow: 'the body is not a valid Arrow IPC stream or file',
  truncated_arrow: 'the Arrow body ends before its end-of-stream marker or footer',
  batch_too_large: 'one Arrow record batch exceeds the batch size limit',
  unsupported_type: 'a column has a type Strata cannot store',
  unsupported_codec: 'the body uses a compression codec Strata cannot decode',
  corrupt_batch: 'a record batch’s buffers contradict each other (offsets, lengths, views, dictionary indices); the file is damaged',
  invalid_utf8: 'a text value (or dictionary entry) is not valid UTF-8, or holds a NUL character PostgreSQL text cannot store',
  malformed_hdf5: 'the body is not a readable HDF5 file',
  missing_filter: 'an HDF5 dataset needs a filter Strata does not have',
  corrupt_data: 'a chunk of the file failed its checksum or could not be decoded',
  mapping_failed: 'the HDF5 layout fits no mapping rule, or the given mapping does not fit the file',
  invalid_mapping: 'the mapping JSON does not match its schema',
  shape_mismatch: 'datasets that must have equal lengths do not',
  truncated_hdf5: 'the HDF5 file is shorter than its superblock says: it was cut short',
  external_data: 'the HDF5 file refers to data in other files (external link, virtual dataset, external storage)',
  unsupported_shape: 'an HDF5 dataset has a shape the mapping cannot use (e.g. 2-D where 1-D is expected)',
  chunk_too_large: 'an HDF5 dataset has chunks larger than the batch size limit (a decompression bomb guard)',
  // ingest: the data
  no_time_column: 'no time column could be chosen',
  ambiguous_time_column: 'several columns could be the time column',
  invalid_timestamp: 'a timestamp is null, unparseable or outside the supported range',
  too_many_chunks: 'the batch spans more new chunks than allowed',
  schema_clash: 'a column’s type differs from the stream’s declared type',
  stream_not_found: 'the stream does not exist and the request may not create it',
  invalid_provenance: 'the Strata-Provenance header is not valid JSON of the expected shape',
  too_many_columns: 'the upload has more columns than a stream may hold',
  client_disconnected: 'the client closed the connection before the body was complete',
  body_timeout: 'the client sent no body bytes for longer than the body idle timeout',
  interrupted: 'the server stopped (killed or crashed) while it received the upload; nothing of it was stored',
  // provenance
  original_missing: 'the archived original of an ingest is missing; it cannot be served',
  original_mismatch: 'the archived original no longer matches its recorded SHA-256; it is not served',
  // jobs and retention
  job_busy: 'the job is already running (on this or another replica) and did not finish in time',
  hold_released: 'the legal hold was released already',
  range_expired: 'the upload has rows in a time range whose raw chunk retention already dropped',
  // server side
  decoder_crashed: 'the decoder worker died while reading the file',
  database_unavailable: 'PostgreSQL is not reachable',
  too_many_uploads: 'the server is receiving as many uploads as it allows at once; retry after Retry-After seconds',
  internal: 'an unexpected server error',
  // request shape (continued)
  unknown_parameter: 'the request has a query parameter this endpoint does not take',
  idempotency_key_reused: 'the Idempotency-Key was used before with a different body',
  legal_hold: 'a legal hold covers the stream',
  // ingest: time and layouts of HDF5 / netCDF producers
  time_unit_unknown: 'epoch numbers without a unit fit no plausible window in s, ms, µs or ns; give ?time_unit=',
  unsupported_calendar: 'a CF time coordinate uses a calendar other than standard, gregorian or proleptic_gregorian',
  pickled_only: 'a pandas HDF5 layout carries its column names or values only as pickled Python objects',
  // ingest: Parquet, CSV and constant tags
  content_type_mismatch: 'the body’s first bytes say it is another format than its Content-Type',
  malformed_parquet: 'the body is not a readable Parquet file (corrupt, truncated or not Parquet)',
  row_group_too_large: 'a Parquet row group exceeds the batch size limit',
  malformed_csv: 'the CSV or TSV text cannot be parsed (ragged row, bad quoting, not UTF-8)',
  invalid_value: 'a CSV value does not fit its column’s type',
  tag_clash: 'a constant tag given with ?tag.<name>= has the name of a column in the file',
  invalid_tag: 'a constant tag’s name or value is not acceptable',
} as const;

export type ErrorCode = keyof typeof errorCodes;
