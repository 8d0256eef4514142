import { ScalekitClient } from '@scalekit-sdk/node';
import 'dotenv/config';
const connectionName = 'discord'; // get your connection name from connection configurations
const identifier = 'user_123'; // your unique user identifier
// Get your credentials from app.scalekit.com → Developers → Settings → API Credentials
const scalekit = new ScalekitClient(
process.env.SCALEKIT_ENV_URL,
process.env.SCALEKIT_CLIENT_ID,
process.env.SCALEKIT_CLIENT_SECRET
);
const actions = scalekit.actions;
// Authenticate the user — send this link to your user
const { link } = await actions.getAuthorizationLink({
connectionName,
identifier,
});
console.log('🔗 Authorize Discord:', link);
process.stdout.write('Press Enter after authorizing...');
await new Promise(r => process.stdin.once('data', r));
// Fetch the authenticated user's Discord profile via Scalekit proxy
const user = await actions.request({
connectionName,
identifier,
path: '/api/users/@me',
method: 'GET',
});
console.log(user);
