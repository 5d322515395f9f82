// Test-only OAuth 2.0 authorization server for oauthcli's end-to-end tests.
//
// A real, independent implementation (panva's oidc-provider) configured for the
// client_credentials grant, listening on 127.0.0.1 only. Never use it for anything else:
// keys are generated per run, storage is in memory, and the /__* routes are test hooks.
//
// Configuration (environment):
//   OP_PORT               port to listen on (or argv[2]); required
//   OP_RESOURCE           the API resource indicator, e.g. http://127.0.0.1:8081/api; required
//   OP_ACCESS_TOKEN_TTL   access token lifetime in seconds (default 300)
//   OP_CLI_JWT_JWKS       path of a JSON file with the public JWKS of client cli-jwt; required
//   OP_PARENT_PID         optional: exit when this process is gone (no orphan after a crash)
//
// Test hooks (no authentication, loopback only):
//   GET  /__stats   -> JSON counters of HTTP requests to the token, revocation and
//                      introspection endpoints, and a short history of token requests
//   POST /__reset   -> zero the counters, clear the history and any pending failure injection
//   POST /__config  -> JSON body {access_token_ttl}: lifetime of the tokens issued from now on
//   POST /__fail    -> JSON body {count, status, error, error_description, delay_ms}: the next
//                      `count` token endpoint requests wait delay_ms, then answer `status` with
//                      {error, error_description} (status 0: only the delay, then normal handling)
//
// Logs one line per HTTP request to stderr (method, path, status, client_id, duration); never
// a secret, a token, a query string or a request body.

import { AsyncLocalStorage } from 'node:async_hooks';
import * as crypto from 'node:crypto';
import { readFileSync } from 'node:fs';
import * as http from 'node:http';

import Provider, { errors } from 'oidc-provider';

const HOST = '127.0.0.1';
const SCOPES = 'api.read api.write';

function fatal(message) {
  console.error(`oidc-provider-e2e: ${message}`);
  process.exit(2);
}

const port = Number.parseInt(process.env.OP_PORT || process.argv[2] || '', 10);
if (!Number.isInteger(port) || port <= 0 || port > 65535) fatal('OP_PORT (or argv[2]) must be a port number');

const resource = process.env.OP_RESOURCE;
if (!resource) fatal('OP_RESOURCE must be set to the API resource indicator');
{
  const url = new URL(resource);
  if (url.hostname !== HOST) fatal('OP_RESOURCE must be a loopback (127.0.0.1) URL');
}

let accessTokenTTL = Number.parseInt(process.env.OP_ACCESS_TOKEN_TTL || '300', 10);
if (!Number.isInteger(accessTokenTTL) || accessTokenTTL <= 0) fatal('OP_ACCESS_TOKEN_TTL must be a positive integer');

const jwksPath = process.env.OP_CLI_JWT_JWKS;
if (!jwksPath) fatal('OP_CLI_JWT_JWKS must be the path of the public JWKS of client cli-jwt');
const cliJwtJwks = JSON.parse(readFileSync(jwksPath, 'utf8'));

const issuer = `http://${HOST}:${port}`;

// Fresh RS256 signing key for every run.
const { privateKey } = crypto.generateKeyPairSync('rsa', { modulusLength: 2048 });
const signingJwk = {
  ...privateKey.export({ format: 'jwk' }),
  kid: `op-${crypto.randomBytes(6).toString('hex')}`,
  alg: 'RS256',
  use: 'sig',
};

const grantTypes = ['client_credentials'];
const clients = [
  {
    client_id: 'cli-basic',
    // '+', '%', ':' and '/' prove the RFC 6749 section 2.3.1 form-urlencoding before Basic.
    client_secret: 'b4s1c+s3cr%t:with/odd',
    token_endpoint_auth_method: 'client_secret_basic',
  },
  {
    client_id: 'cli-post',
    client_secret: 'p0st-s3cret+with%odd:chars/too',
    token_endpoint_auth_method: 'client_secret_post',
  },
  {
    client_id: 'cli-jwt',
    token_endpoint_auth_method: 'private_key_jwt',
    token_endpoint_auth_signing_alg: 'RS256',
    jwks: cliJwtJwks,
  },
  {
    client_id: 'cli-secret-jwt',
    // HS256 needs a secret of at least 256 bits.
    client_secret: 'hs256-shared-secret-for-cli-secret-jwt-0123456789abcdef',
    token_endpoint_auth_method: 'client_secret_jwt',
    token_endpoint_auth_signing_alg: 'HS256',
  },
].map((client) => ({
  grant_types: grantTypes,
  response_types: [],
  redirect_uris: [],
  scope: SCOPES,
  ...client,
}));

const provider = new Provider(issuer, {
  clients,
  jwks: { keys: [signingJwk] },
  cookies: { keys: [crypto.randomBytes(32).toString('base64url')] },
  scopes: ['openid', ...SCOPES.split(' ')],
  clientAuthMethods: ['client_secret_basic', 'client_secret_post', 'client_secret_jwt', 'private_key_jwt'],
  features: {
    devInteractions: { enabled: false },
    clientCredentials: { enabled: true },
    revocation: { enabled: true },
    introspection: {
      enabled: true,
      // Any authenticated registered client may introspect any token (test server).
      allowedPolicy: async () => true,
    },
    resourceIndicators: {
      enabled: true,
      // A token request without a resource parameter gets the API anyway, so a JWT is issued.
      defaultResource: async (ctx) => {
        ctx.state.resourceDefaulted = true;
        return resource;
      },
      useGrantedResource: async () => true,
      getResourceServerInfo: async (ctx, indicator) => {
        if (indicator !== resource) {
          throw new errors.InvalidTarget(`unknown resource indicator, this server only knows ${resource}`);
        }
        return {
          scope: SCOPES,
          audience: resource,
          accessTokenTTL,
          accessTokenFormat: 'jwt',
          jwt: { sign: { alg: 'RS256' } },
        };
      },
    },
  },
  // Millisecond issuance time, so that the resource server's "reject tokens issued before now"
  // hook can tell apart tokens issued within the same second as the hook call.
  extraTokenClaims: async () => ({ iat_ms: Date.now() }),
  // Functions, not numbers: a number would take precedence over the resource server's
  // accessTokenTTL and freeze the value, while POST /__config changes it at run time.
  ttl: {
    AccessToken: () => accessTokenTTL,
    ClientCredentials: () => accessTokenTTL,
    Grant: 600,
    IdToken: 600,
    Interaction: 600,
    Session: 600,
    RefreshToken: 600,
    DeviceCode: 600,
    BackchannelAuthenticationRequest: 600,
  },
  renderError: async (ctx, out) => {
    ctx.type = 'json';
    ctx.body = out;
  },
});

// --- strict client authentication -------------------------------------------------------
// oidc-provider treats client_secret_basic and client_secret_post as interchangeable for a
// client registered with either. The tests must prove the CLI uses the configured method, so
// the registered method is enforced here: basic needs the Authorization header, post needs
// client_secret in the body and no Authorization header.
const requestContext = new AsyncLocalStorage();
const { compareClientSecret } = provider.Client.prototype;
provider.Client.prototype.compareClientSecret = function strictCompareClientSecret(actual) {
  const ctx = requestContext.getStore();
  if (ctx && (this.clientAuthMethod === 'client_secret_basic' || this.clientAuthMethod === 'client_secret_post')) {
    const usedBasic = ctx.headers.authorization !== undefined;
    if (usedBasic !== (this.clientAuthMethod === 'client_secret_basic')) {
      throw new errors.InvalidClientAuth(
        `the provided authentication mechanism does not match the registered client authentication method (${this.clientAuthMethod})`,
      );
    }
  }
  return compareClientSecret.call(this, actual);
};

// --- test-only counters ---------------------------------------------------------------
const endpoints = {
  [new URL(provider.urlFor('token')).pathname]: 'token',
  [new URL(provider.urlFor('revocation')).pathname]: 'revocation',
  [new URL(provider.urlFor('introspection')).pathname]: 'introspection',
};

function emptyStats() {
  const counter = () => ({ total: 0, ok: 0, error: 0 });
  return {
    token: counter(),
    revocation: counter(),
    introspection: counter(),
    token_history: [],
  };
}

let stats = emptyStats();
let failure = { count: 0 };
const HISTORY_MAX = 200;

function clientAuthKind(ctx) {
  const params = ctx.oidc?.params || {};
  if (ctx.headers.authorization !== undefined) return 'client_secret_basic';
  if (params.client_assertion) {
    try {
      const header = JSON.parse(Buffer.from(String(params.client_assertion).split('.')[0], 'base64url'));
      return String(header.alg || '').startsWith('HS') ? 'client_secret_jwt' : 'private_key_jwt';
    } catch {
      return 'client_assertion';
    }
  }
  if (params.client_secret) return 'client_secret_post';
  return 'none';
}

function readJson(ctx) {
  return new Promise((resolve, reject) => {
    const chunks = [];
    ctx.req.on('data', (chunk) => chunks.push(chunk));
    ctx.req.on('end', () => {
      const text = Buffer.concat(chunks).toString('utf8');
      try {
        resolve(text ? JSON.parse(text) : {});
      } catch (err) {
        reject(err);
      }
    });
    ctx.req.on('error', reject);
  });
}

const sleep = (ms) => new Promise((resolve) => { setTimeout(resolve, ms); });

provider.use(async (ctx, next) => {
  const started = process.hrtime.bigint();
  const kind = endpoints[ctx.path];
  try {
    if (ctx.path === '/__stats' && ctx.method === 'GET') {
      ctx.body = stats;
      return;
    }
    if (ctx.path === '/__reset' && ctx.method === 'POST') {
      stats = emptyStats();
      failure = { count: 0 };
      ctx.body = { reset: true };
      return;
    }
    if (ctx.path === '/__config' && ctx.method === 'POST') {
      const body = await readJson(ctx);
      if (body.access_token_ttl !== undefined) {
        const ttl = Number(body.access_token_ttl);
        if (!Number.isInteger(ttl) || ttl <= 0) {
          ctx.status = 400;
          ctx.body = { error: 'access_token_ttl must be a positive integer' };
          return;
        }
        accessTokenTTL = ttl;
      }
      ctx.body = { access_token_ttl: accessTokenTTL };
      return;
    }
    if (ctx.path === '/__fail' && ctx.method === 'POST') {
      const body = await readJson(ctx);
      failure = {
        count: Number(body.count ?? 1),
        status: Number(body.status ?? 503),
        error: body.error ?? 'temporarily_unavailable',
        error_description: body.error_description ?? 'injected failure (test hook)',
        delay_ms: Number(body.delay_ms ?? 0),
      };
      ctx.body = failure;
      return;
    }

    if (kind) stats[kind].total += 1;

    if (kind === 'token' && failure.count > 0) {
      failure.count -= 1;
      const { status, error, error_description: description, delay_ms: delay } = failure;
      if (delay > 0) await sleep(delay);
      if (status) {
        ctx.status = status;
        ctx.set('Cache-Control', 'no-store');
        ctx.body = { error, error_description: description };
        return;
      }
    }

    await requestContext.run(ctx, next);
  } finally {
    const clientId = ctx.oidc?.client?.clientId;
    if (kind) {
      if (ctx.status >= 200 && ctx.status < 300) stats[kind].ok += 1;
      else stats[kind].error += 1;
    }
    if (kind === 'token') {
      const params = ctx.oidc?.params || {};
      stats.token_history.push({
        at: Date.now(),
        status: ctx.status,
        client_id: clientId || params.client_id || null,
        client_auth: clientAuthKind(ctx),
        grant_type: params.grant_type || null,
        scope: params.scope || null,
        // the resource parameter as sent (null when absent and defaulted by the server)
        resource: ctx.state.resourceDefaulted ? null : params.resource || null,
        error: ctx.status >= 400 && ctx.body && typeof ctx.body === 'object' ? ctx.body.error || null : null,
      });
      if (stats.token_history.length > HISTORY_MAX) stats.token_history.shift();
    }
    const ms = Number(process.hrtime.bigint() - started) / 1e6;
    console.error(
      `${new Date().toISOString()} ${ctx.method} ${ctx.path} ${ctx.status}`
      + `${clientId ? ` client=${clientId}` : ''} ${ms.toFixed(1)}ms`,
    );
  }
});

provider.on('server_error', (ctx, err) => {
  console.error(`oidc-provider-e2e: server_error on ${ctx.method} ${ctx.path}: ${err.stack || err}`);
});

const server = http.createServer(provider.callback());
server.keepAliveTimeout = 5000;
server.on('error', (err) => fatal(`cannot listen on ${HOST}:${port}: ${err.code || err.message}`));
server.listen(port, HOST, () => {
  console.error(`oidc-provider-e2e: listening, issuer ${issuer}, resource ${resource}, access token ttl ${accessTokenTTL}s`);
});

function shutdown(signal) {
  console.error(`oidc-provider-e2e: ${signal}, shutting down`);
  server.close(() => process.exit(0));
  server.closeAllConnections();
  setTimeout(() => process.exit(0), 2000).unref();
}
process.on('SIGTERM', () => shutdown('SIGTERM'));
process.on('SIGINT', () => shutdown('SIGINT'));

const parentPid = Number.parseInt(process.env.OP_PARENT_PID || '', 10);
if (Number.isInteger(parentPid) && parentPid > 0) {
  setInterval(() => {
    try {
      process.kill(parentPid, 0);
    } catch {
      shutdown(`parent ${parentPid} gone`);
    }
  }, 1000).unref();
}
