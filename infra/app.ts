/**
 * CDK entry point (`cdk.json`: `npx tsx infra/app.ts`). The CLI sets
 * CDK_OUTDIR, so the app synthesizes itself when this module finishes.
 */
import { createKairosApp } from './kairos-app.ts';

createKairosApp();
