// Test-only OAuth 2.0 authorization server for oauthcli's end-to-end tests.
//
// A real, independent implementation (panva's oidc-provider 9) listening on 127.0.0.1 only,
// configured for every grant oauthcli speaks: client_credentials (four client auth methods),
// the device authorization grant (RFC 8628), authorization_code + PKCE with loopback redirects
// on any port (RFC 8252), refresh tokens with rotation (offline_access), RFC 8693 token
// exchange (a grant registered here), DPoP (RFC 9449, server nonces required), client
// authentication by an assertion from a fake CI issuer (RFC 7523 private_key_jwt), revocation
// and introspection, resource indicators (JWT access tokens carrying aud, scope, cnf.jkt).
// Never use it for anything else: keys are generated per run, storage is in memory, the login
// accepts any name (oidc-provider's dev interactions) and the /__* routes are test hooks.
//
// Configuration (environment):
//   OP_PORT               port to listen on (or argv[2]); required
//   OP_RESOURCE           the API resource indicator, e.g. http://127.0.0.1:8081/api; required
//   OP_DPOP_RESOURCE      the DPoP-verifying API's resource indicator (optional)
//   OP_ACCESS_TOKEN_TTL   access token lifetime in seconds (default 300)
//   OP_CLI_JWT_JWKS       path of a JSON file with the public JWKS of client cli-jwt; required
//   OP_CI_JWKS            path of a JSON file with the public JWKS of the fake CI issuer, which
//                         client cli-ci trusts for private_key_jwt (optional: no cli-ci without)
//   OP_PARENT_PID         optional: exit when this process is gone (no orphan after a crash)
//
// Test hooks (no authentication, loopback only):
//   GET  /__stats   -> JSON counters of HTTP requests to the token, revocation, introspection,
//                      device authorization and authorization endpoints, and a short history
//                      of token requests and of authorization requests
//   POST /__reset   -> zero the counters, clear the history and any pending failure injection,
//                      and put every /__config setting back to its default
//   POST /__config  -> JSON body, any of:
//                      access_token_ttl (s)       lifetime of the tokens issued from now on
//                      device_code_ttl (s)        lifetime of the device codes issued from now on
//                      device_interval (s)        the `interval` of device authorization answers
//                                                 (default 1); a poll sooner than 0.8 x interval
//                                                 answers slow_down and adds 5 s (RFC 8628 3.5)
//                      dpop_require_nonce (bool)  DPoP proofs at the token endpoint need a
//                                                 server nonce (default true)
//                      ignore_dpop (bool)         behave as a server without DPoP: the DPoP
//                                                 header is dropped, Bearer tokens are issued
//                      structured_token_errors (bool)  answer revocation/introspection of a
//                                                 JWT access token as oidc-provider 9 does (400
//                                                 unsupported_token_type) instead of the default
//                                                 200 / {"active": false} of RFC 7009/7662 for
//                                                 tokens the server does not keep
//                      oauth_metadata (bool)      serve RFC 8414's /.well-known/oauth-
//                                                 authorization-server (default true, as
//                                                 oidc-provider 9 does; false: 404 there, only
//                                                 the OpenID document remains)
//   POST /__fail    -> JSON body {count, status, error, error_description, delay_ms}: the next
//                      `count` token endpoint requests wait delay_ms, then answer `status` with
//                      {error, error_description} (status 0: only the delay, then normal handling)
//
// Logs one line per HTTP request to stderr (method, path, status, client_id, duration) and one
// line per grant served to stdout:
//   oidc-provider-e2e: grant grant_type=<type> client=<id> status=<code> auth=<method>
//     token_type=<Bearer|DPoP|-> dpop_proof=<yes|no> error=<code|->
// never a secret, a token, a code, a query string or a request body.

import { AsyncLocalStorage } from 'node:async_hooks';
import * as crypto from 'node:crypto';
import { readFileSync } from 'node:fs';
import * as http from 'node:http';

import Provider, { errors } from 'oidc-provider';
// Deep imports (the package has no "exports" map; the version is pinned exactly): the grant
// helpers the built-in grants use, for the registered token-exchange grant, and the internal
// registry of grant handlers, to put the RFC 8628 slow_down rule in front of device_code.
import * as grantHelpers from 'oidc-provider/lib/helpers/grants.js';
import { applyDpopBinding } from 'oidc-provider/lib/helpers/grant_common.js';
import instance from 'oidc-provider/lib/helpers/weak_cache.js';

const HOST = '127.0.0.1';
const SCOPES = 'api.read api.write';
const INTERACTIVE_SCOPES = `openid offline_access ${SCOPES}`;
const DEVICE_CODE = 'urn:ietf:params:oauth:grant-type:device_code';
const TOKEN_EXCHANGE = 'urn:ietf:params:oauth:grant-type:token-exchange';
const ACCESS_TOKEN_TYPE = 'urn:ietf:params:oauth:token-type:access_token';
const JWT_TOKEN_TYPE = 'urn:ietf:params:oauth:token-type:jwt';

function fatal(message) {
  console.error(`oidc-provider-e2e: ${message}`);
  process.exit(2);
}

const port = Number.parseInt(process.env.OP_PORT || process.argv[2] || '', 10);
if (!Number.isInteger(port) || port <= 0 || port > 65535) fatal('OP_PORT (or argv[2]) must be a port number');

function loopbackUrl(name) {
  const value = process.env[name];
  if (!value) return undefined;
  if (new URL(value).hostname !== HOST) fatal(`${name} must be a loopback (127.0.0.1) URL`);
  return value;
}

const resource = loopbackUrl('OP_RESOURCE');
if (!resource) fatal('OP_RESOURCE must be set to the API resource indicator');
const dpopResource = loopbackUrl('OP_DPOP_RESOURCE');
const resources = new Set([resource, dpopResource].filter(Boolean));

const DEFAULTS = {
  accessTokenTTL: Number.parseInt(process.env.OP_ACCESS_TOKEN_TTL || '300', 10),
  deviceCodeTTL: 600,
  deviceInterval: 1,
  dpopRequireNonce: true,
  ignoreDpop: false,
  structuredTokenErrors: false,
  oauthMetadata: true,
};
if (!Number.isInteger(DEFAULTS.accessTokenTTL) || DEFAULTS.accessTokenTTL <= 0) fatal('OP_ACCESS_TOKEN_TTL must be a positive integer');
let settings = { ...DEFAULTS };

const jwksPath = process.env.OP_CLI_JWT_JWKS;
if (!jwksPath) fatal('OP_CLI_JWT_JWKS must be the path of the public JWKS of client cli-jwt');
const cliJwtJwks = JSON.parse(readFileSync(jwksPath, 'utf8'));
const ciJwks = process.env.OP_CI_JWKS ? JSON.parse(readFileSync(process.env.OP_CI_JWKS, 'utf8')) : undefined;

const issuer = `http://${HOST}:${port}`;

// Fresh RS256 signing key for every run.
const { privateKey, publicKey } = crypto.generateKeyPairSync('rsa', { modulusLength: 2048 });
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
  {
    // DPoP-bound tokens only (RFC 9449 section 5.2); its default resource is the DPoP API.
    client_id: 'cli-dpop',
    client_secret: 'dp0p-s3cret+with%odd:chars/too',
    token_endpoint_auth_method: 'client_secret_basic',
    dpop_bound_access_tokens: true,
  },
  {
    client_id: 'cli-exchange',
    client_secret: 'exch4nge-s3cret+with%odd:chars/too',
    token_endpoint_auth_method: 'client_secret_basic',
    grant_types: [TOKEN_EXCHANGE, 'client_credentials'],
  },
  ...(ciJwks ? [{
    // Workload identity: the assertion is issued by the fake CI issuer (iss = sub = client_id,
    // aud = the token endpoint), whose public keys are registered as this client's JWKS.
    client_id: 'cli-ci',
    token_endpoint_auth_method: 'private_key_jwt',
    token_endpoint_auth_signing_alg: 'RS256',
    jwks: ciJwks,
  }] : []),
  // Interactive clients: public (auth "none", PKCE required), native so that any loopback port
  // of the redirect URI is accepted (RFC 8252 section 7.3), refresh tokens with offline_access.
  {
    client_id: 'cli-device',
    token_endpoint_auth_method: 'none',
    grant_types: [DEVICE_CODE, 'refresh_token'],
    scope: INTERACTIVE_SCOPES,
  },
  {
    client_id: 'cli-authcode',
    application_type: 'native',
    token_endpoint_auth_method: 'none',
    grant_types: ['authorization_code', 'refresh_token'],
    response_types: ['code'],
    redirect_uris: ['http://127.0.0.1/callback', 'http://localhost/callback'],
    scope: INTERACTIVE_SCOPES,
  },
  {
    // The same with a client secret (a confidential client still uses PKCE).
    client_id: 'cli-authcode-secret',
    client_secret: 'c0de-s3cret+with%odd:chars/too',
    application_type: 'native',
    token_endpoint_auth_method: 'client_secret_basic',
    grant_types: ['authorization_code', 'refresh_token'],
    response_types: ['code'],
    redirect_uris: ['http://127.0.0.1/callback', 'http://localhost/callback'],
    scope: INTERACTIVE_SCOPES,
  },
].map((client) => ({
  grant_types: grantTypes,
  response_types: [],
  redirect_uris: [],
  scope: SCOPES,
  ...client,
}));

function resourceServerInfo(indicator) {
  return {
    scope: SCOPES,
    audience: indicator,
    accessTokenTTL: settings.accessTokenTTL,
    accessTokenFormat: 'jwt',
    jwt: { sign: { alg: 'RS256' } },
  };
}

function unknownResource() {
  return new errors.InvalidTarget(`unknown resource indicator, this server only knows ${[...resources].join(', ')}`);
}

// Pages without any outside resource (the stock ones load a web font from the internet).
function page(title, inner) {
  return `<!DOCTYPE html><html><head><meta charset="utf-8"><title>${title}</title></head>`
    + `<body><h1>${title}</h1>${inner}</body></html>`;
}

const provider = new Provider(issuer, {
  clients,
  jwks: { keys: [signingJwk] },
  cookies: { keys: [crypto.randomBytes(32).toString('base64url')] },
  scopes: ['openid', 'offline_access', ...SCOPES.split(' ')],
  clientAuthMethods: ['none', 'client_secret_basic', 'client_secret_post', 'client_secret_jwt', 'private_key_jwt'],
  // A fixed test user: any login name signs in as that account, password ignored.
  findAccount: async (ctx, sub) => ({ accountId: sub, claims: async () => ({ sub }) }),
  rotateRefreshToken: true,
  features: {
    // Login and consent pages (any login, any password); the e2e browser fills them.
    devInteractions: { enabled: true },
    clientCredentials: { enabled: true },
    deviceFlow: {
      enabled: true,
      userCodeInputSource: async (ctx, form, out, err) => {
        const msg = err ? `<p id="error">${err.name === 'AbortedError' ? 'The sign-in was interrupted' : 'The code is incorrect, try again'}</p>` : '';
        ctx.body = page('Enter code', `${msg}${form}<button type="submit" form="op.deviceInputForm">Continue</button>`);
      },
      userCodeConfirmSource: async (ctx, form, client) => {
        ctx.body = page('Confirm Device', `<p>${client.clientId}</p>${form}`
          + '<button id="confirm" type="submit" form="op.deviceConfirmForm">Continue</button>'
          + '<button id="abort" type="submit" form="op.deviceConfirmForm" value="yes" name="abort">Abort</button>');
      },
      successSource: async (ctx) => {
        ctx.body = page('Sign-in Success', '<p id="device-done">You can close this page.</p>');
      },
    },
    dPoP: {
      enabled: true,
      nonceSecret: crypto.randomBytes(32),
      requireNonce: () => settings.dpopRequireNonce,
    },
    revocation: { enabled: true },
    introspection: {
      enabled: true,
      // Any authenticated registered client may introspect any token (test server).
      allowedPolicy: async () => true,
    },
    resourceIndicators: {
      enabled: true,
      // A request without a resource parameter gets an API anyway, so a JWT is issued:
      // cli-dpop's is the DPoP API, everyone else's the plain one.
      defaultResource: async (ctx, client) => {
        ctx.state.resourceDefaulted = true;
        return client?.clientId === 'cli-dpop' && dpopResource ? dpopResource : resource;
      },
      useGrantedResource: async () => true,
      getResourceServerInfo: async (ctx, indicator) => {
        if (!resources.has(indicator)) throw unknownResource();
        return resourceServerInfo(indicator);
      },
    },
  },
  // Millisecond issuance time, so that the resource server's "reject tokens issued before now"
  // hook can tell apart tokens issued within the same second as the hook call.
  extraTokenClaims: async () => ({ iat_ms: Date.now() }),
  formats: {
    customizers: {
      // The token-exchange grant issues a ClientCredentials token; this gives it the subject
      // of the exchanged token and the RFC 8693 section 4.1 act claim.
      jwt: async (ctx, token, jwt) => {
        const exchanged = ctx?.state?.exchanged;
        if (!exchanged) return;
        jwt.payload.sub = exchanged.sub;
        if (exchanged.act) jwt.payload.act = exchanged.act;
      },
    },
  },
  // Functions, not numbers: a number would take precedence over the resource server's
  // accessTokenTTL and freeze the value, while POST /__config changes it at run time.
  ttl: {
    AccessToken: () => settings.accessTokenTTL,
    ClientCredentials: () => settings.accessTokenTTL,
    Grant: 600,
    IdToken: 600,
    Interaction: 600,
    Session: 600,
    RefreshToken: 600,
    DeviceCode: () => settings.deviceCodeTTL,
    BackchannelAuthenticationRequest: 600,
  },
  renderError: async (ctx, out) => {
    ctx.type = 'json';
    ctx.body = out;
  },
});

// --- RFC 8693 token exchange ----------------------------------------------------------------
// subject_token (and actor_token) must be an access token this server issued: a JWT verified
// against this server's own key (not expired, this issuer), or an opaque one it stores.

function b64json(part) {
  return JSON.parse(Buffer.from(part, 'base64url').toString('utf8'));
}

async function verifyOwnToken(value, type, name) {
  if (!value) throw new errors.InvalidRequest(`missing required parameter '${name}'`);
  if (type !== ACCESS_TOKEN_TYPE && type !== JWT_TOKEN_TYPE) {
    throw new errors.InvalidRequest(`unsupported ${name}_type, this server takes ${ACCESS_TOKEN_TYPE} or ${JWT_TOKEN_TYPE}`);
  }
  const parts = String(value).split('.');
  if (parts.length === 3) {
    let header;
    let claims;
    try {
      header = b64json(parts[0]);
      claims = b64json(parts[1]);
    } catch {
      throw new errors.InvalidGrant(`${name} is not a valid JWT`);
    }
    const signed = Buffer.from(`${parts[0]}.${parts[1]}`);
    const ok = header.alg === 'RS256' && header.kid === signingJwk.kid
      && crypto.verify('RSA-SHA256', signed, publicKey, Buffer.from(parts[2], 'base64url'));
    if (!ok) throw new errors.InvalidGrant(`${name} was not issued by this server`);
    if (claims.iss !== issuer) throw new errors.InvalidGrant(`${name} has another issuer`);
    if (typeof claims.exp !== 'number' || claims.exp <= Date.now() / 1000) throw new errors.InvalidGrant(`${name} is expired`);
    return claims;
  }
  const stored = await provider.AccessToken.find(value) || await provider.ClientCredentials.find(value);
  if (!stored || stored.isExpired) throw new errors.InvalidGrant(`${name} is invalid or expired`);
  return { sub: stored.accountId || stored.clientId, scope: stored.scope, client_id: stored.clientId };
}

function single(value, name) {
  if (Array.isArray(value)) {
    if (value.length !== 1) throw new errors.InvalidTarget(`only one ${name} value is supported`);
    return value[0];
  }
  return value;
}

async function tokenExchangeHandler(ctx) {
  const { client, params } = ctx.oidc;
  const subject = await verifyOwnToken(params.subject_token, params.subject_token_type, 'subject_token');
  let actor;
  if (params.actor_token) {
    actor = await verifyOwnToken(params.actor_token, params.actor_token_type, 'actor_token');
  } else if (params.actor_token_type) {
    throw new errors.InvalidRequest('actor_token_type given without actor_token');
  }
  const requested = params.requested_token_type;
  if (requested && requested !== ACCESS_TOKEN_TYPE && requested !== JWT_TOKEN_TYPE) {
    throw new errors.InvalidRequest(`unsupported requested_token_type, this server issues ${ACCESS_TOKEN_TYPE}`);
  }

  // audience and resource both name the target API here (its URL).
  const audience = single(params.audience, 'audience');
  const target = single(params.resource, 'resource');
  if (audience && target && audience !== target) throw new errors.InvalidTarget('audience and resource name different APIs');
  const indicator = audience || target || (Array.isArray(subject.aud) ? subject.aud[0] : subject.aud) || resource;
  if (!resources.has(indicator)) throw unknownResource();

  const dPoP = await grantHelpers.validateDpop(provider, ctx);

  // The scope: the one asked for (within the client's), else the subject token's; always
  // within the subject token's and the target API's.
  const subjectScopes = new Set(String(subject.scope || '').split(' ').filter(Boolean));
  const asked = params.scope ? [...grantHelpers.validateClientScope(provider, ctx)] : [...subjectScopes];
  const apiScopes = new Set(SCOPES.split(' '));
  const scope = asked.filter((s) => subjectScopes.has(s) && apiScopes.has(s)).join(' ') || undefined;

  const token = new provider.ClientCredentials({ client, scope });
  token.resourceServer = new provider.ResourceServer(indicator, resourceServerInfo(indicator));
  await applyDpopBinding(provider, ctx, dPoP, token);
  const act = actor ? { sub: actor.sub, ...(actor.act ? { act: actor.act } : {}) } : subject.act;
  ctx.state.exchanged = { sub: subject.sub, act };
  ctx.state.exchange = { audience: indicator, actor: Boolean(actor) };
  const value = await token.save();

  ctx.body = {
    access_token: value,
    issued_token_type: ACCESS_TOKEN_TYPE,
    token_type: token.tokenType,
    expires_in: token.expiration,
    ...(scope ? { scope } : {}),
  };
}

provider.registerGrantType(
  TOKEN_EXCHANGE,
  tokenExchangeHandler,
  ['subject_token', 'subject_token_type', 'actor_token', 'actor_token_type', 'requested_token_type', 'audience', 'resource', 'scope'],
  ['audience', 'resource'],
);

// --- RFC 8628 section 3.5 slow_down in front of the device_code grant ------------------------
const handlers = instance(provider).grantTypeHandlers;
const deviceCodeHandler = handlers.get(DEVICE_CODE);
const devicePolls = new Map(); // sha256(device_code) -> { last, interval }
handlers.set(DEVICE_CODE, async (ctx) => {
  const key = crypto.createHash('sha256').update(String(ctx.oidc.params.device_code || '')).digest('hex');
  const now = Date.now();
  const poll = devicePolls.get(key) || { last: 0, interval: settings.deviceInterval };
  const early = poll.last && now - poll.last < poll.interval * 800;
  poll.last = now;
  if (early) {
    poll.interval += 5;
    devicePolls.set(key, poll);
    throw new errors.SlowDown(`polled sooner than the interval; poll every ${poll.interval} s`);
  }
  devicePolls.set(key, poll);
  if (devicePolls.size > 1000) devicePolls.delete(devicePolls.keys().next().value);
  return deviceCodeHandler(ctx);
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
  [new URL(provider.urlFor('device_authorization')).pathname]: 'device_authorization',
  [new URL(provider.urlFor('authorization')).pathname]: 'authorization',
};

function emptyStats() {
  const counter = () => ({ total: 0, ok: 0, error: 0 });
  return {
    token: counter(),
    revocation: counter(),
    introspection: counter(),
    device_authorization: counter(),
    authorization: counter(),
    token_history: [],
    authorization_history: [],
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

const CONFIG_KEYS = {
  access_token_ttl: ['accessTokenTTL', 'seconds'],
  device_code_ttl: ['deviceCodeTTL', 'seconds'],
  device_interval: ['deviceInterval', 'seconds'],
  dpop_require_nonce: ['dpopRequireNonce', 'boolean'],
  ignore_dpop: ['ignoreDpop', 'boolean'],
  structured_token_errors: ['structuredTokenErrors', 'boolean'],
  oauth_metadata: ['oauthMetadata', 'boolean'],
};

function configView() {
  return Object.fromEntries(Object.entries(CONFIG_KEYS).map(([key, [name]]) => [key, settings[name]]));
}

function applyConfig(body) {
  const next = { ...settings };
  for (const [key, value] of Object.entries(body)) {
    const spec = CONFIG_KEYS[key];
    if (!spec) return `unknown setting ${key}; known: ${Object.keys(CONFIG_KEYS).join(', ')}`;
    const [name, kind] = spec;
    if (kind === 'seconds') {
      const n = Number(value);
      if (!Number.isInteger(n) || n <= 0) return `${key} must be a positive integer`;
      next[name] = n;
    } else {
      if (typeof value !== 'boolean') return `${key} must be true or false`;
      next[name] = value;
    }
  }
  settings = next;
  return undefined;
}

function tokenLogLine(ctx, clientId) {
  const params = ctx.oidc?.params || {};
  const body = ctx.body && typeof ctx.body === 'object' ? ctx.body : {};
  const error = ctx.status >= 400 ? body.error || '-' : '-';
  const extra = ctx.state.exchange ? ` audience=${ctx.state.exchange.audience} actor=${ctx.state.exchange.actor ? 'yes' : 'no'}` : '';
  return `oidc-provider-e2e: grant grant_type=${params.grant_type || '-'} client=${clientId || params.client_id || '-'}`
    + ` status=${ctx.status} auth=${clientAuthKind(ctx)} token_type=${ctx.status < 300 ? body.token_type || '-' : '-'}`
    + ` dpop_proof=${ctx.state.dpopProof ? 'yes' : 'no'} error=${error}${extra}`;
}

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
      // The access token TTL stays: the Python side tracks it (set_access_token_ttl).
      settings = { ...DEFAULTS, accessTokenTTL: settings.accessTokenTTL };
      devicePolls.clear();
      ctx.body = { reset: true };
      return;
    }
    if (ctx.path === '/__config' && ctx.method === 'POST') {
      const problem = applyConfig(await readJson(ctx));
      if (problem) {
        ctx.status = 400;
        ctx.body = { error: problem };
        return;
      }
      ctx.body = configView();
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

    if (ctx.path === '/.well-known/oauth-authorization-server' && !settings.oauthMetadata) {
      ctx.status = 404; // a server with OpenID discovery only
      ctx.body = { error: 'not_found' };
      return;
    }
    if (kind) stats[kind].total += 1;
    ctx.state.dpopProof = ctx.headers.dpop !== undefined;
    if (settings.ignoreDpop) delete ctx.req.headers.dpop;

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

    if (kind === 'device_authorization' && ctx.status === 200 && ctx.body && typeof ctx.body === 'object') {
      ctx.body.interval = settings.deviceInterval;
    }
    // RFC 7009 2.2 / RFC 7662 2.2: a token the server does not keep is not an error.
    if ((kind === 'revocation' || kind === 'introspection') && !settings.structuredTokenErrors
        && ctx.status === 400 && ctx.body?.error === 'unsupported_token_type') {
      ctx.status = 200;
      ctx.body = kind === 'revocation' ? '' : { active: false };
    }
  } finally {
    const clientId = ctx.oidc?.client?.clientId;
    if (kind) {
      if (ctx.status >= 200 && ctx.status < 300) stats[kind].ok += 1;
      else stats[kind].error += 1;
    }
    if (kind === 'token') {
      const params = ctx.oidc?.params || {};
      const body = ctx.body && typeof ctx.body === 'object' ? ctx.body : {};
      stats.token_history.push({
        at: Date.now(),
        status: ctx.status,
        client_id: clientId || params.client_id || null,
        client_auth: clientAuthKind(ctx),
        grant_type: params.grant_type || null,
        scope: params.scope || null,
        // the resource parameter as sent (null when absent and defaulted by the server)
        resource: ctx.state.resourceDefaulted ? null : params.resource || null,
        dpop_proof: ctx.state.dpopProof,
        token_type: ctx.status < 300 ? body.token_type || null : null,
        error: ctx.status >= 400 ? body.error || null : null,
      });
      if (stats.token_history.length > HISTORY_MAX) stats.token_history.shift();
      console.log(tokenLogLine(ctx, clientId));
    } else if (kind === 'device_authorization') {
      console.log(`oidc-provider-e2e: device_authorization client=${clientId || '-'} status=${ctx.status}`);
    } else if (kind === 'authorization' && ctx.method === 'GET') {
      const q = ctx.query || {};
      stats.authorization_history.push({
        at: Date.now(),
        status: ctx.status,
        client_id: q.client_id || null,
        response_type: q.response_type || null,
        code_challenge_method: q.code_challenge_method || null,
        code_challenge: Boolean(q.code_challenge),
        redirect_uri: q.redirect_uri || null,
        scope: q.scope || null,
        resource: q.resource || null,
      });
      if (stats.authorization_history.length > HISTORY_MAX) stats.authorization_history.shift();
      console.log(`oidc-provider-e2e: authorization client=${q.client_id || '-'} status=${ctx.status}`
        + ` code_challenge_method=${q.code_challenge_method || '-'}`);
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
  console.error(`oidc-provider-e2e: listening, issuer ${issuer}, resources ${[...resources].join(' ')}, access token ttl ${settings.accessTokenTTL}s`);
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
