// Types aws-lite's DynamoDB plugin and vendored marshaller do not ship (the client's are in @aws-lite/client).
declare module '@aws-lite/dynamodb' {
  const plugin: { readonly service: string; readonly property: string; readonly methods: Record<string, unknown> };
  export default plugin;
}

declare module '@aws-lite/client/src/_vendor/aws.js' {
  /** @aws-sdk/util-dynamodb's marshall, as aws-lite vendors it. */
  export function marshall(item: Record<string, unknown>, options?: { removeUndefinedValues?: boolean }): Record<string, unknown>;
  /** @aws-sdk/util-dynamodb's unmarshall, as aws-lite vendors it. */
  export function unmarshall(item: Record<string, unknown>, options?: { wrapNumbers?: boolean }): Record<string, unknown>;
}
