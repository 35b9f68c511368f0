/**
 * Stands in for `@aws-sdk/credential-provider-node` in the Lambda bundles
 * (an esbuild alias, infra/bundling.ts); never imported by name.
 *
 * The SDK clients resolve credentials with that package's default chain:
 * environment, SSO, shared INI files, web identity, process, container and
 * instance metadata. In Lambda the execution role's credentials are always
 * in the environment (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY,
 * AWS_SESSION_TOKEN), the first source the chain tries, so the rest of the
 * chain never runs there, yet it is about 130 KB of every bundle (with the
 * SSO and STS clients it needs). The local stack and the tests run the
 * sources, with the SDK's full chain.
 */
import { fromEnv } from '@aws-sdk/credential-provider-env';

type FromEnvInit = Parameters<typeof fromEnv>[0];

/** The default chain's signature: the environment's credentials. */
export const defaultProvider = (init?: FromEnvInit) => fromEnv(init);
