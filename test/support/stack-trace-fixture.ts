/**
 * Call paths for the stack-trace test (test/infra/stack-traces.infra.test.ts):
 * built into a bundle as the functions are (infra/bundling.ts buildLikeCdk),
 * each path a chain of the call shapes a stack frame can have (named and
 * anonymous functions, methods, static methods, getters, constructors, async
 * functions, a built-in's callback), ending in an error of a given kind.
 */
import { sourceMappedStackTraces } from '#shared/stack-traces.ts';

/** Whether the lazy source-mapped stack traces were turned on (`KAIROS_LAZY_STACKS=1`). */
export const lazy = process.env.KAIROS_LAZY_STACKS === '1' ? sourceMappedStackTraces(import.meta.url) : false;

export type Step = 'named' | 'arrow' | 'method' | 'static' | 'getter' | 'constructor' | 'async' | 'map';
export type Leaf = 'error' | 'type-error' | 'node-error' | 'custom' | 'thrown-later';

class CatalogProblem extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'CatalogProblem';
  }
}

function throwLeaf(leaf: Leaf, message: string): never {
  switch (leaf) {
    case 'error':
      throw new Error(message);
    case 'type-error': {
      const missing = (globalThis as { notThere?: { field: string } }).notThere;
      throw new TypeError(`${message} ${(missing as { field: string }).field}`);
    }
    case 'node-error':
      Buffer.alloc(-message.length - 1);
      throw new Error('unreachable');
    case 'custom':
      throw new CatalogProblem(message);
    case 'thrown-later': {
      const error = new RangeError(message);
      throw error;
    }
  }
}

class Holder {
  constructor(private readonly leaf: Leaf, private readonly message: string) {}
  method(rest: readonly Step[]): unknown {
    return step(rest, this.leaf, this.message);
  }
  static make(rest: readonly Step[], leaf: Leaf, message: string): unknown {
    return step(rest, leaf, message);
  }
  get chained(): (rest: readonly Step[]) => unknown {
    return (rest) => step(rest, this.leaf, this.message);
  }
}

class Built {
  readonly result: unknown;
  constructor(rest: readonly Step[], leaf: Leaf, message: string) {
    this.result = step(rest, leaf, message);
  }
}

function namedStep(rest: readonly Step[], leaf: Leaf, message: string): unknown {
  return step(rest, leaf, message);
}

async function asyncStep(rest: readonly Step[], leaf: Leaf, message: string): Promise<unknown> {
  await null;
  return await step(rest, leaf, message);
}

/** Follow `path`, then throw an error of kind `leaf` with `message` (a promise once an async step is on the path). */
export function step(path: readonly Step[], leaf: Leaf, message: string): unknown {
  if (path.length === 0) throwLeaf(leaf, message);
  const [head, ...rest] = path;
  switch (head) {
    case 'named':
      return namedStep(rest, leaf, message);
    case 'arrow':
      return ((r: readonly Step[]) => step(r, leaf, message))(rest);
    case 'method':
      return new Holder(leaf, message).method(rest);
    case 'static':
      return Holder.make(rest, leaf, message);
    case 'getter':
      return new Holder(leaf, message).chained(rest);
    case 'constructor':
      return new Built(rest, leaf, message).result;
    case 'async':
      return asyncStep(rest, leaf, message);
    default:
      return [rest].map((r) => step(r, leaf, message))[0];
  }
}
