/**
 * Node flags the daemon is started with (the unit's ExecStart, the lab demo), for its resident
 * memory (issue #15, benchmarks/memory.bench.js):
 *
 * - `--max-semi-space-size=1`: V8 grows each young-generation semi-space up to 16 MiB under
 *   an allocation burst (start-up, the warm-up, a flap storm) and keeps those pages. The
 *   daemon allocates little and in small objects, so a 1 MiB semi-space only means more,
 *   shorter scavenges (well under a millisecond each at this heap size) and ~6 MiB less RSS.
 * - `--v8-pool-size=1`: one V8 platform worker instead of four (concurrent marking and
 *   TurboFan compiles still run off the main thread; the daemon's heap and its few hot
 *   functions need no more), fewer thread stacks and malloc arenas: ~1 MiB.
 *
 * Not chosen: `--max-old-space-size` (a ceiling, not a footprint: the old space holds ~10 MiB
 * and a low limit would only turn a leak into a crash loop), `--optimize-for-size` (no more
 * saving than these two and it trades execution speed on the detection path),
 * `--no-opt`/`--jitless` (the warm-up exists to get the event path optimized), and
 * MALLOC_ARENA_MAX (measured no difference beside these).
 */
export const DAEMON_NODE_FLAGS: readonly string[] = ['--max-semi-space-size=1', '--v8-pool-size=1'];
