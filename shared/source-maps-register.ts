/**
 * Imported first by every function's handler (functions/<name>/handler.ts),
 * so that it runs before any other module of the bundle: source-mapped
 * stack traces (stack-traces.ts) for everything the bundle throws, an error
 * at load (a configuration refused by config.ts) included. Its map is read
 * on the first stack that needs it, not at cold start. From the TypeScript
 * sources (tests, the local stack) it does nothing.
 */
import { sourceMappedStackTraces } from './stack-traces.ts';

sourceMappedStackTraces(import.meta.url);
