export const CHANNELS = ['web', 'app', 'push', 'email', 'sms', 'call_center'] as const;
export type Channel = (typeof CHANNELS)[number];
export const isChannel = (value: unknown): value is Channel =>
  typeof value === 'string' && (CHANNELS as readonly string[]).includes(value);
