#!/usr/bin/env node
// The `strata` command: runs src/cli/main.ts through tsx (a dependency), in this Node process.
import { register } from 'tsx/esm/api';

register();
await import('../src/cli/main.ts');
