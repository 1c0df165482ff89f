/**
 * The parts of prom-client the daemon uses, each from its own file.
 *
 * prom-client's index also loads its Pushgateway and cluster aggregator, and with them
 * node:http's client, https, tls, crypto and zlib, none of which the daemon uses: ~2.3 MiB of
 * resident memory (issue #15, benchmarks/memory.bench.js). The classes are the same objects
 * the index exports (the index requires these very files), typed by the package's own types.
 */
import type * as Prom from 'prom-client';

export const Registry = require('prom-client/lib/registry') as typeof Prom.Registry;
export type Registry = Prom.Registry;
export const Counter = require('prom-client/lib/counter') as typeof Prom.Counter;
export type Counter<T extends string = string> = Prom.Counter<T>;
export const Gauge = require('prom-client/lib/gauge') as typeof Prom.Gauge;
export type Gauge<T extends string = string> = Prom.Gauge<T>;
export const Histogram = require('prom-client/lib/histogram') as typeof Prom.Histogram;
export type Histogram<T extends string = string> = Prom.Histogram<T>;
export const collectDefaultMetrics = require('prom-client/lib/defaultMetrics') as typeof Prom.collectDefaultMetrics;
