// Feature modules that register routes, decoders, query readers or background jobs when
// imported. main.ts, the CLI and the tests import this one file to get the whole server.
import './ingest/decoders/hdf5.ts';
import './ingest/decoders/parquet.ts';
import './ingest/decoders/csv.ts';
import './rollups/module.ts';
import './audit/verify-job.ts';
import './jobs/module.ts';
import './backup/module.ts';
import './compression/module.ts';
