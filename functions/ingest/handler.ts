// Placeholder until this function lands; replaced by its implementation.
export const handler = async (): Promise<never> => {
  throw new Error('not implemented');
};
