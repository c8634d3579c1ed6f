// Generates vectors.json: JWTs and a JWKS made by jose (panva/jose), an
// implementation nobody here wrote, for shared/jwt's tests. The tests read
// the committed vectors.json and need neither node nor jose. To regenerate:
//
//   mkdir -p /tmp/josegen && cp gen.mjs /tmp/josegen && cd /tmp/josegen \
//     && npm init -y && npm i jose@5 && node gen.mjs > vectors.json
//
// and copy vectors.json back here. Keys are fresh each run; the clock is fixed.
import * as jose from 'jose';

const now = 1767225600; // 2026-01-01T00:00:00Z, the tests' clock
const iss = 'https://app.example';
const aud = 'edgepoll-vip';

const ed = await jose.generateKeyPair('EdDSA', { crv: 'Ed25519', extractable: true });
const ec = await jose.generateKeyPair('ES256', { extractable: true });
const otherEd = await jose.generateKeyPair('EdDSA', { crv: 'Ed25519', extractable: true });
const otherEc = await jose.generateKeyPair('ES256', { extractable: true });
const rsa = await jose.generateKeyPair('RS256', { extractable: true });

const edJwk = { ...(await jose.exportJWK(ed.publicKey)), kid: 'ed1', alg: 'EdDSA', use: 'sig' };
const ecJwk = { ...(await jose.exportJWK(ec.publicKey)), kid: 'ec1', alg: 'ES256', use: 'sig' };
const jwks = { keys: [edJwk, ecJwk] };

async function sign(key, header, claims, options) {
  const j = new jose.SignJWT(claims).setProtectedHeader(header);
  return j.sign(key, options);
}
const base = (over = {}) => ({ iss, aud, sub: 'user-42', iat: now - 60, exp: now + 300, ...over });

const cases = [];
const add = (name, jwt, want, sub) => cases.push({ name, jwt, want, sub });

add('eddsa ok', await sign(ed.privateKey, { alg: 'EdDSA', kid: 'ed1', typ: 'JWT' }, base()), 'ok', 'user-42');
add('es256 ok', await sign(ec.privateKey, { alg: 'ES256', kid: 'ec1' }, base({ sub: 'user-7' })), 'ok', 'user-7');
add('aud array ok', await sign(ed.privateKey, { alg: 'EdDSA', kid: 'ed1' }, base({ aud: ['other', aud] })), 'ok', 'user-42');
add('no kid, one key of its alg', await sign(ec.privateKey, { alg: 'ES256' }, base()), 'ok', 'user-42');
add('expired within skew ok', await sign(ed.privateKey, { alg: 'EdDSA', kid: 'ed1' }, base({ exp: now - 10 })), 'ok', 'user-42');
add('nbf within skew ok', await sign(ed.privateKey, { alg: 'EdDSA', kid: 'ed1' }, base({ nbf: now + 10 })), 'ok', 'user-42');
add('unicode sub ok', await sign(ed.privateKey, { alg: 'EdDSA', kid: 'ed1' }, base({ sub: 'Zoë \u{1F600}' })), 'ok', 'Zoë \u{1F600}');

add('eddsa bad signature (other key)', await sign(otherEd.privateKey, { alg: 'EdDSA', kid: 'ed1' }, base()), 'bad_signature');
add('es256 bad signature (other key)', await sign(otherEc.privateKey, { alg: 'ES256', kid: 'ec1' }, base()), 'bad_signature');
{
  const good = await sign(ed.privateKey, { alg: 'EdDSA', kid: 'ed1' }, base());
  const [h, , s] = good.split('.');
  const forged = jose.base64url.encode(JSON.stringify(base({ sub: 'admin' })));
  add('claims changed after signing', `${h}.${forged}.${s}`, 'bad_signature');
}
add('alg none', new jose.UnsecuredJWT(base()).encode(), 'bad_alg');
{
  // HS256 keyed with the Ed25519 public key's bytes: the classic confusion.
  const secret = jose.base64url.decode(edJwk.x);
  add('HS256 with the public key', await sign(secret, { alg: 'HS256', kid: 'ed1' }, base()), 'bad_alg');
}
add('RS256', await sign(rsa.privateKey, { alg: 'RS256', kid: 'ed1' }, base()), 'bad_alg');
add('ES256 header on an EdDSA kid', await sign(ec.privateKey, { alg: 'ES256', kid: 'ed1' }, base()), 'unknown_kid');
add('unknown kid', await sign(ed.privateKey, { alg: 'EdDSA', kid: 'nope' }, base()), 'unknown_kid');
add('expired', await sign(ed.privateKey, { alg: 'EdDSA', kid: 'ed1' }, base({ exp: now - 3600 })), 'expired');
add('expired es256', await sign(ec.privateKey, { alg: 'ES256', kid: 'ec1' }, base({ exp: now - 31 })), 'expired');
add('no exp', await sign(ed.privateKey, { alg: 'EdDSA', kid: 'ed1' }, { iss, aud, sub: 'user-42' }), 'expired');
add('not yet valid', await sign(ed.privateKey, { alg: 'EdDSA', kid: 'ed1' }, base({ nbf: now + 3600 })), 'not_yet_valid');
add('wrong aud', await sign(ed.privateKey, { alg: 'EdDSA', kid: 'ed1' }, base({ aud: 'someone-else' })), 'wrong_aud');
add('wrong aud array', await sign(ed.privateKey, { alg: 'EdDSA', kid: 'ed1' }, base({ aud: ['a', 'b'] })), 'wrong_aud');
add('no aud', await sign(ed.privateKey, { alg: 'EdDSA', kid: 'ed1' }, { iss, sub: 'u', exp: now + 60 }), 'wrong_aud');
add('wrong iss', await sign(ed.privateKey, { alg: 'EdDSA', kid: 'ed1' }, base({ iss: 'https://evil.example' })), 'wrong_iss');
add('no sub', await sign(ed.privateKey, { alg: 'EdDSA', kid: 'ed1' }, { iss, aud, exp: now + 60 }), 'bad_sub');
add('crit header', await sign(ed.privateKey, { alg: 'EdDSA', kid: 'ed1', crit: ['x-ext'], 'x-ext': 1 }, base(), { crit: { 'x-ext': true } }), 'bad_alg');
add('two parts', 'eyJhbGciOiJFZERTQSJ9.e30', 'malformed');
add('not base64', 'e30.e30.!!!', 'malformed');

console.log(JSON.stringify({ generator: 'jose ' + (await import('jose/package.json', { with: { type: 'json' } }).then(m => m.default.version).catch(() => '5')), now, iss, aud, skew_seconds: 30, jwks, cases }, null, 1));
