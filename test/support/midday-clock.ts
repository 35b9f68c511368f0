/**
 * Sets the process's clock to midday UTC of the current day (clock.ts):
 * the e2e tier's setup file (vitest.config.ts), and preloaded
 * (`node --import`) into the `npm start` of the walk-throughs
 * (walkthrough.ts), so the demo catalog's night quiet hours never hold by
 * the hour a test happens to run at.
 */
import { setClockToMidday } from './clock.ts';

setClockToMidday();
