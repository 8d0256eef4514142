// The Node SDK's account and tool calls, for the compatibility tests: prints one JSON document
// with what each call returned or the exception it raised. Run after "user_123" was linked.
import { ScalekitClient } from '@scalekit-sdk/node';

const client = new ScalekitClient(
  process.env.SCALEKIT_ENV_URL,
  process.env.SCALEKIT_CLIENT_ID,
  process.env.SCALEKIT_CLIENT_SECRET,
);
const actions = client.actions;
const connectionName = 'discord';
const results = {};

async function attempt(name, call) {
  try {
    results[name] = { ok: true, value: await call() };
  } catch (error) {
    results[name] = {
      ok: false,
      name: error.name,
      errorCode: error.errorCode ?? null,
      toolErrorCode: error.toolErrorCode ?? null,
    };
  }
}

await attempt('me', async () => {
  const response = await actions.executeTool({
    toolName: 'discord_get_my_user',
    toolInput: {},
    identifier: 'user_123',
    connector: connectionName,
  });
  return { data: response.data, executionId: response.executionId };
});
await attempt('guilds', async () => {
  const response = await actions.executeTool({
    toolName: 'discord_list_my_guilds',
    toolInput: { limit: 1 },
    identifier: 'user_123',
    connector: connectionName,
  });
  return response.data;
});
await attempt('toolError', () =>
  actions.executeTool({
    toolName: 'discord_get_my_guild_member',
    toolInput: { guild_id: '1200000000000000999' },
    identifier: 'user_123',
    connector: connectionName,
  }),
);
await attempt('account', async () => {
  const response = await actions.getConnectedAccount({ connectionName, identifier: 'user_123' });
  const account = response.connectedAccount;
  return { id: account.id, status: account.status, connector: account.connector };
});
await attempt('missing', () => actions.getConnectedAccount({ connectionName, identifier: 'nobody' }));
await attempt('created', async () => {
  const response = await actions.getOrCreateConnectedAccount({ connectionName, identifier: 'node_new' });
  return { id: response.connectedAccount.id, status: response.connectedAccount.status };
});
await attempt('listed', async () => {
  const response = await actions.listConnectedAccounts({ connectionName });
  return response.connectedAccounts.map((a) => a.identifier);
});
await attempt('deleted', () => actions.deleteConnectedAccount({ connectionName, identifier: 'node_new' }));
await attempt('gone', () => actions.getConnectedAccount({ connectionName, identifier: 'node_new' }));
await attempt('badRequest', () =>
  actions.getAuthorizationLink({ connectionName: 'no/such/name', identifier: 'user_123' }),
);

console.log(JSON.stringify(results));
