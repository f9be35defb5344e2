// The unaware authorization server behind dcrgate (registrar upstream): node-oidc-provider with
// plain RFC 7591/7592 registration guarded by an initial access token, client credentials,
// introspection, revocation, signed request objects (PS256, ES256) and RFC 8705 mTLS
// (tls_client_auth and certificate-bound access tokens) where the client certificate is read
// from a header set by the gateway: the FAPI-shaped server an Open Banking client expects.
//
// It knows nothing of Open Banking: the gateway has checked the software statement, the signed
// request and the OB profile before it asks this server to create a client.
//
// Environment:
//   PORT                   port to listen on (127.0.0.1 only); default 3000
//   ISSUER                 the public issuer, i.e. the gateway's origin; default http://localhost:$PORT
//   INITIAL_ACCESS_TOKEN   the bearer token that may create clients (required)
//   GATEWAY_CLIENT_ID, GATEWAY_CLIENT_SECRET
//                          optional: a static client for the gateway itself (client_secret_basic),
//                          which introspects and revokes TPPs' tokens (dcrgate's access_token)
//   CLIENT_CERT_HEADER     header carrying the verified TLS client certificate, base64 DER or PEM;
//                          default x-client-cert
//   LOOPBACK_FETCH_HOSTS   host:port list whose jwks_uri may resolve to a loopback or private
//                          address (the sandbox's software_jwks_endpoints on localhost); every
//                          other fetch keeps oidc-provider's SSRF protection
//   NODE_EXTRA_CA_CERTS    (Node's own) CAs to trust when fetching clients' jwks_uri
//
// The certificate header is trusted because only the gateway can reach this server: it listens
// on 127.0.0.1, and the gateway removes the header from every incoming request before it sets it
// from the TLS connection. Never expose this port.
import * as crypto from 'node:crypto';

import Provider from 'oidc-provider';

const port = Number(process.env.PORT || 3000);
const issuer = process.env.ISSUER || `http://localhost:${port}`;
const initialAccessToken = process.env.INITIAL_ACCESS_TOKEN;
const certHeader = (process.env.CLIENT_CERT_HEADER || 'x-client-cert').toLowerCase();

if (!initialAccessToken) {
  console.error('INITIAL_ACCESS_TOKEN is required: registration must not be open');
  process.exit(2);
}

// Signing keys for ID tokens and JWT responses, made at start (a real deployment loads them).
function signingKeys() {
  const rsa = crypto.generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey.export({ format: 'jwk' });
  const ec = crypto.generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey.export({ format: 'jwk' });
  return [
    { ...rsa, kid: 'ps256', alg: 'PS256', use: 'sig' },
    { ...rsa, kid: 'rs256', alg: 'RS256', use: 'sig' },
    { ...ec, kid: 'es256', alg: 'ES256', use: 'sig' },
  ];
}

// FAPI's algorithms: what an OB client signs request objects and client assertions with. ID
// tokens also offer RS256, which OpenID Connect requires every provider to support.
const fapiAlgs = ['PS256', 'ES256'];

// The certificate the gateway forwarded, or undefined.
function forwardedCertificate(ctx) {
  const value = ctx.get(certHeader);
  if (!value) return undefined;
  try {
    const pem = value.includes('BEGIN CERTIFICATE')
      ? value
      : `-----BEGIN CERTIFICATE-----\n${value.replace(/\s+/g, '')}\n-----END CERTIFICATE-----\n`;
    return new crypto.X509Certificate(pem);
  } catch {
    return undefined;
  }
}

// DN comparison for tls_client_auth_subject_dn: attribute by attribute, order-free, type aliases
// and case folded. The gateway already compared the registered DN with the TPP's certificate
// strictly; this only has to recognise the same certificate again at the token endpoint.
const dnAliases = {
  '2.5.4.3': 'cn', commonname: 'cn',
  '2.5.4.6': 'c', countryname: 'c',
  '2.5.4.10': 'o', organizationname: 'o',
  '2.5.4.11': 'ou', organizationalunitname: 'ou',
  '2.5.4.7': 'l', localityname: 'l',
  '2.5.4.8': 'st', stateorprovincename: 'st',
  '2.5.4.97': 'organizationidentifier',
  '1.2.840.113549.1.9.1': 'emailaddress', e: 'emailaddress',
};

function splitUnescaped(s, seps) {
  const out = [];
  let cur = '';
  for (let i = 0; i < s.length; i += 1) {
    if (s[i] === '\\' && i + 1 < s.length) {
      cur += s[i] + s[i + 1];
      i += 1;
    } else if (seps.includes(s[i])) {
      out.push(cur);
      cur = '';
    } else {
      cur += s[i];
    }
  }
  out.push(cur);
  return out;
}

function canonicalDN(dn) {
  const text = dn.trim();
  const parts = text.startsWith('/') ? splitUnescaped(text.slice(1), ['/']) : splitUnescaped(text, [',', '+', '\n']);
  return parts
    .filter((p) => p.trim() !== '')
    .map((p) => {
      const eq = p.indexOf('=');
      const type = p.slice(0, eq).trim().toLowerCase();
      const value = p.slice(eq + 1).trim().replace(/\\(.)/g, '$1').replace(/\s+/g, ' ').toLowerCase();
      return `${dnAliases[type] || type}=${value}`;
    })
    .sort();
}

function sameDN(a, b) {
  const x = canonicalDN(a);
  const y = canonicalDN(b);
  return x.length === y.length && x.every((v, i) => v === y[i]);
}

const loopbackFetchHosts = (process.env.LOOPBACK_FETCH_HOSTS || '').split(/[\s,]+/).filter(Boolean);

// oidc-provider refuses to fetch from special-use addresses (SSRF protection); the sandbox
// serves TPP key sets from the gateway on localhost, so those hosts, and only those, are let
// through.
function fetchClientResource(url, options) {
  if (loopbackFetchHosts.includes(new URL(url).host)) {
    delete options.dispatcher; // eslint-disable-line no-param-reassign
  }
  return globalThis.fetch(url, options);
}

// The gateway's own client: no grants, it only introspects and revokes.
const staticClients = process.env.GATEWAY_CLIENT_ID && process.env.GATEWAY_CLIENT_SECRET
  ? [{
    client_id: process.env.GATEWAY_CLIENT_ID,
    client_secret: process.env.GATEWAY_CLIENT_SECRET,
    token_endpoint_auth_method: 'client_secret_basic',
    grant_types: [],
    response_types: [],
    redirect_uris: [],
  }]
  : [];

const provider = new Provider(issuer, {
  clients: staticClients,
  fetch: fetchClientResource,
  jwks: { keys: signingKeys() },
  scopes: ['openid', 'offline_access', 'accounts', 'payments', 'fundsconfirmations'],
  clientAuthMethods: ['tls_client_auth', 'private_key_jwt', 'client_secret_basic', 'client_secret_post'],
  enabledJWA: {
    clientAuthSigningAlgValues: fapiAlgs,
    idTokenSigningAlgValues: [...fapiAlgs, 'RS256'],
    requestObjectSigningAlgValues: fapiAlgs,
  },
  features: {
    devInteractions: { enabled: false },
    clientCredentials: { enabled: true },
    introspection: { enabled: true },
    revocation: { enabled: true },
    // Signed request objects (JAR): discovery publishes request_object_signing_alg_values_supported,
    // which an OB client reads to choose its request_object_signing_alg.
    requestObjects: { enabled: true, requireSignedRequestObject: true },
    registration: {
      enabled: true,
      initialAccessToken,
      // OB client_ids are at most 36 characters: UUIDs.
      idFactory: () => crypto.randomUUID(),
      secretFactory: async () => crypto.randomBytes(27).toString('base64url'),
    },
    registrationManagement: { enabled: true, rotateRegistrationAccessToken: true },
    mTLS: {
      enabled: true,
      tlsClientAuth: true,
      certificateBoundAccessTokens: true,
      getCertificate: forwardedCertificate,
      // The gateway verified the chain against the directory CAs before forwarding it.
      certificateAuthorized: (ctx) => forwardedCertificate(ctx) !== undefined,
      certificateSubjectMatches(ctx, property, expected) {
        const cert = forwardedCertificate(ctx);
        return property === 'tls_client_auth_subject_dn' && cert !== undefined && sameDN(cert.subject, expected);
      },
    },
  },
  ttl: { ClientCredentials: 600 },
  // Only the gateway reaches this server, over loopback; the public origin is the gateway's.
  routes: { registration: '/reg' },
});

// A protected resource, as the bank's APIs would be: GET /resource with one of this server's
// client-credentials tokens answers whose token it is. A certificate-bound token (RFC 8705 §3)
// is accepted only over a connection with the certificate it is bound to: a resource server
// must check the binding itself, since introspection only reports it (cnf.x5t#S256), and
// node-oidc-provider's userinfo, which does check it, takes only tokens of an end user's grant.
provider.use(async (ctx, next) => {
  if (ctx.path !== '/resource') {
    await next();
    return;
  }
  ctx.set('Cache-Control', 'no-store');
  const refuse = (description) => {
    ctx.status = 401;
    ctx.set('WWW-Authenticate', `Bearer error="invalid_token", error_description="${description}"`);
    ctx.body = { error: 'invalid_token', error_description: description };
  };
  if (ctx.method !== 'GET') {
    ctx.status = 405;
    return;
  }
  const [scheme, value] = (ctx.get('authorization') || '').split(' ');
  if (scheme?.toLowerCase() !== 'bearer' || !value) {
    refuse('no bearer token');
    return;
  }
  const token = await provider.ClientCredentials.find(value);
  if (!token || !(await provider.Client.find(token.clientId))) {
    refuse('the access token is not active');
    return;
  }
  if (token['x5t#S256']) {
    const cert = forwardedCertificate(ctx);
    const thumbprint = cert && crypto.createHash('sha256').update(cert.raw).digest('base64url');
    if (thumbprint !== token['x5t#S256']) {
      refuse('the access token is bound to another certificate');
      return;
    }
  }
  ctx.body = { client_id: token.clientId, scope: token.scope, certificate_bound: Boolean(token['x5t#S256']) };
});

// X-Forwarded-Proto from the gateway makes generated URLs https.
provider.proxy = true;

provider.on('server_error', (ctx, err) => console.error('server_error', err));
// Why a client failed to authenticate is only in the error's details and causes; operators
// need it.
function reasons(err) {
  const out = [];
  for (let e = err; e && out.length < 5; e = e.cause) {
    out.push(e.error_detail || e.error_description || e.message);
  }
  return out.join(': ');
}
for (const event of ['grant.error', 'registration_create.error', 'registration_update.error', 'introspection.error']) {
  provider.on(event, (ctx, err) => console.error(event, err.error, reasons(err)));
}

provider.listen(port, '127.0.0.1', () => {
  console.log(`oidc-provider ${issuer} listening on 127.0.0.1:${port}`);
});
