// Auto-detection: which layout rule fits a file when the request and the stream give no
// mapping. In order: a CF featureType timeSeries file; NeXus NXlog groups; xarray's grid of
// (time, station) variables over a station coordinate (read as timeSeries); otherwise exactly one
// group of 1-D datasets with a time dataset, or one 1-D compound dataset with a time member. A
// file that fits none is a 422 listing what was found and what the rules need.
import { AppError } from '../../../errors/index.ts';
import { type DatasetInfo, type Inspector, describeType } from './inspect.ts';
import type { Mapping } from './mapping.ts';
import { gridCoordinate } from './plan-cf.ts';
import { nxlogGroups } from './plan-nexus.ts';
import { pandasType } from './plan-pandas.ts';
import { isDimensionHelper, isTimeLikeName, mappingError } from './plan.ts';
import { isPandasIndex } from './plan-table.ts';
import { parseSinceUnits } from './time.ts';

const RULES = 'the rules need one of: a netCDF-4 file with featureType "timeSeries"; NeXus NXlog groups; '
  + 'a group of equal-length 1-D datasets, one of them time (named time, timestamp, t, epoch or datetime, possibly with a unit suffix such as time_ms, or with units "<unit> since <instant>"); '
  + 'a 1-D compound dataset with a time member; a pandas DataFrame written by to_hdf; or an explicit ?mapping= (README "HDF5 and netCDF4")';

/** Most datasets listed in a "fits no rule" message. */
const LISTED = 40;

function isTimeLike(ins: Inspector, path: string, name: string, unitsAttr: string): boolean {
  if (isTimeLikeName(name)) return true;
  const u = ins.stringAttr(path, unitsAttr);
  return u !== null && parseSinceUnits(u) !== null;
}

/**
 * A group with a 1-D time and other 1-D datasets, or 2-D ones (channels[n×k]; the planner splits
 * them, or names the shape that does not fit the time).
 */
function flatCandidate(ins: Inspector, group: string, ds: DatasetInfo[]): boolean {
  const oneD = ds.filter((d) => d.shape.length === 1 && d.meta.type !== 6);
  const times = oneD.filter((d) => isTimeLike(ins, d.path, d.name, 'units'));
  if (times.length === 0) return false;
  return oneD.length >= 2 || ds.some((d) => d.shape.length === 2 && d.meta.type !== 6);
}

function compoundCandidate(ins: Inspector, d: DatasetInfo): boolean {
  if (d.meta.type !== 6 || d.shape.length !== 1) return false;
  // pandas' to_hdf(format="table") without a DatetimeIndex: its own rules say what is missing
  if (d.name === 'table' && pandasType(ins, d.path.slice(0, d.path.lastIndexOf('/')) || '/') === 'frame_table') return true;
  return (d.meta.compound_type?.members ?? []).some((m) => isTimeLike(ins, d.path, m.name, `${m.name}_units`) || isPandasIndex(ins, d.path, m.name));
}

export function detectMapping(ins: Inspector): Mapping {
  const featureType = ins.stringAttr('/', 'featureType');
  if (featureType !== null) {
    if (featureType.toLowerCase() === 'timeseries') return { layout: 'cf_timeseries', group: '/' };
    throw mappingError(`the file is a CF discrete sampling geometry of featureType ${JSON.stringify(featureType)}; Strata reads featureType timeSeries (or give a mapping)`);
  }
  if (nxlogGroups(ins).length > 0) return { layout: 'nxlog' };
  // xarray's grid: variables over (time, station) with a station coordinate, no featureType
  if (gridCoordinate(ins, ins.datasets('/').filter((d) => !isDimensionHelper(ins, d))) !== null) return { layout: 'cf_timeseries', group: '/' };

  const found: DatasetInfo[] = [];
  const candidates: Mapping[] = [];
  let sameLengthNoTime: { group: string; datasets: DatasetInfo[] } | null = null;
  for (const g of ins.groups()) {
    const ds = ins.datasets(g.path).filter((d) => !isDimensionHelper(ins, d));
    found.push(...ds);
    if (pandasType(ins, g.path) === 'frame') {
      candidates.push({ layout: 'pandas_fixed', group: g.path });
      continue;
    }
    if (flatCandidate(ins, g.path, ds)) candidates.push({ layout: 'flat_group', group: g.path });
    for (const d of ds) if (compoundCandidate(ins, d)) candidates.push({ layout: 'compound', dataset: d.path });
    const oneD = ds.filter((d) => d.shape.length === 1 && d.meta.type !== 6);
    if (!sameLengthNoTime && oneD.length >= 2 && new Set(oneD.map((d) => d.shape[0])).size === 1 && !flatCandidate(ins, g.path, ds)) {
      sameLengthNoTime = { group: g.path, datasets: oneD };
    }
  }
  if (candidates.length === 1) return candidates[0];
  if (candidates.length > 1) {
    const list = candidates.map((c) => (c.layout === 'compound' ? `compound ${c.dataset}` : c.layout === 'pandas_fixed' ? `pandas frame ${c.group}` : `group ${c.group}`));
    throw mappingError(`several parts of the file could be the series (${list.join('; ')}); choose one with ?mapping= or the stream's hdf5_mapping`,
      { candidates });
  }
  if (sameLengthNoTime) {
    const { group, datasets } = sameLengthNoTime;
    throw new AppError(422, 'no_time_column',
      `group ${group} has 1-D datasets of equal length (${datasets.map((d) => `${d.name} [${d.shape[0]}] ${describeType(d.meta)}`).join(', ')}) but no time dataset: none is named time, timestamp, t, epoch or datetime (or time_s, time_ms …), and none has units "<unit> since <instant>"; name the time dataset with a mapping`,
      { detail: { group, datasets: datasets.map((d) => d.path) } });
  }
  const listing = found.slice(0, LISTED).map((d) => ({ path: d.path, shape: d.shape, type: describeType(d.meta) }));
  const text = listing.map((d) => `${d.path} [${d.shape.join('×')}] ${d.type}`).join(', ') || 'no datasets';
  throw mappingError(`the file fits no mapping rule: found ${text}${found.length > LISTED ? ` and ${found.length - LISTED} more` : ''}; ${RULES}`,
    { found: listing, rules: RULES });
}

