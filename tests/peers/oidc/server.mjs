// A real OpenID provider (oidc-provider, certified) for keyward's SSO tests
// (tests/app/sso.rs). It listens on a free port of 127.0.0.1 and prints
// "listening http://127.0.0.1:PORT"; that address is its issuer. The test
// then drives it over a small control API:
//
//   POST /test/setup  {"redirect_uri", "clients": [{"client_id", "client_secret"}]}
//                     registers the clients (keyward's port is known only then)
//   POST /test/user   {"sub", "email", "email_verified", "groups"}
//                     who signs in next: the login step is not interactive
//   POST /test/rotate {}
//                     a new signing key (a new kid) replaces the old one
//   POST /test/mode   {"deny": bool, "audience": string|null}
//                     deny: the user refuses (error=access_denied at the
//                     callback); audience: ID tokens are re-signed, with the
//                     provider's own key, for that audience (another client)
import http from 'node:http';
import crypto from 'node:crypto';
import Provider from 'oidc-provider';
import * as jose from 'jose';

let user = { sub: 'user-1', email: 'user@example.com', email_verified: true, groups: [] };
let mode = { deny: false, audience: null };
let provider = null;

// The signing key, made here so that a token can be re-signed with it.
let privateKey;
let jwk;
let generation = 0;
async function newKey() {
  generation += 1;
  ({ privateKey } = await jose.generateKeyPair('RS256', { extractable: true }));
  jwk = { ...(await jose.exportJWK(privateKey)), kid: `test-key-${generation}`, alg: 'RS256', use: 'sig' };
}
await newKey();
let lastSetup = null;

const server = http.createServer();
await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
const issuer = `http://127.0.0.1:${server.address().port}`;

async function body(req) {
  let data = '';
  for await (const chunk of req) data += chunk;
  return data ? JSON.parse(data) : {};
}

function setup({ redirect_uri, clients }) {
  lastSetup = { redirect_uri, clients };
  provider = new Provider(issuer, {
    clients: clients.map((c) => ({
      client_id: c.client_id,
      client_secret: c.client_secret,
      redirect_uris: [redirect_uri],
      grant_types: ['authorization_code'],
      response_types: ['code'],
    })),
    jwks: { keys: [jwk] },
    cookies: { keys: [crypto.randomBytes(16).toString('hex')] },
    // The claims go into the ID token itself (keyward reads no userinfo).
    conformIdTokenClaims: false,
    claims: { openid: ['sub'], email: ['email', 'email_verified'], groups: ['groups'] },
    scopes: ['openid', 'email', 'groups', 'profile'],
    pkce: { required: () => true },
    features: { devInteractions: { enabled: false } },
    interactions: { url: (ctx, interaction) => `/interaction/${interaction.uid}` },
    findAccount: (ctx, id) => ({
      accountId: id,
      claims: () => ({ sub: id, email: user.email, email_verified: user.email_verified, groups: user.groups }),
    }),
    // First-party: consent is implied, so only the login step interacts.
    loadExistingGrant: async (ctx) => {
      const grant = new ctx.oidc.provider.Grant({
        clientId: ctx.oidc.client.clientId,
        accountId: ctx.oidc.session.accountId,
      });
      grant.addOIDCScope('openid email groups profile');
      grant.addOIDCClaims(['sub', 'email', 'email_verified', 'groups']);
      await grant.save();
      return grant;
    },
  });
  // An ID token for another audience, properly signed: what a token meant
  // for another client at the same provider looks like.
  provider.use(async (ctx, next) => {
    await next();
    if (ctx.path === '/token' && mode.audience && ctx.body && ctx.body.id_token) {
      const claims = jose.decodeJwt(ctx.body.id_token);
      claims.aud = mode.audience;
      ctx.body = {
        ...ctx.body,
        id_token: await new jose.SignJWT(claims)
          .setProtectedHeader({ alg: 'RS256', kid: jwk.kid })
          .sign(privateKey),
      };
    }
  });
}

server.on('request', async (req, res) => {
  try {
    const url = new URL(req.url, issuer);
    if (req.method === 'POST' && url.pathname.startsWith('/test/')) {
      const input = await body(req);
      if (url.pathname === '/test/setup') setup(input);
      else if (url.pathname === '/test/user') user = { ...user, ...input };
      else if (url.pathname === '/test/rotate') { await newKey(); setup(lastSetup); }
      else if (url.pathname === '/test/mode') mode = { ...mode, ...input };
      else { res.statusCode = 404; return res.end(); }
      res.statusCode = 204;
      return res.end();
    }
    if (!provider) { res.statusCode = 503; return res.end('not set up'); }
    if (url.pathname.startsWith('/interaction/')) {
      // Not interactive: the configured user signs in at once (or refuses).
      const details = await provider.interactionDetails(req, res);
      const result = mode.deny
        ? { error: 'access_denied', error_description: 'The user refused.' }
        : { login: { accountId: user.sub } };
      return await provider.interactionFinished(req, res, result, { mergeWithLastSubmission: false });
    }
    return provider.callback()(req, res);
  } catch (e) {
    console.error(e);
    res.statusCode = 500;
    res.end(String(e));
  }
});

// The test reads standard output up to this line and then stops reading:
// everything after it (oidc-provider's notices included) goes to standard
// error, so that a write to the closed pipe cannot end the process.
process.stdout.write(`listening ${issuer}\n`);
process.stdout.on('error', () => {});
for (const level of ['log', 'info', 'warn', 'debug']) {
  console[level] = (...args) => process.stderr.write(`${args.join(' ')}\n`);
}
