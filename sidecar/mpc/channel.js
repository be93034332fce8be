'use strict';
// Party-to-party channels: X25519 key agreement and AES-256-GCM, from Node's crypto.
//
// The DKLs23 messages are plain JSON and some carry secrets (the DKG polynomial evaluations, OT
// seeds), so every message between two parties is sealed before the coordinator relays it.
// Keys for a pair (i, j) in one session:
//   ikm  = X25519(static_i, static_j) || X25519(eph_i, eph_j)
//   salt = SHA-256(transcript)   (protocol, session kind and id, both indices, both ephemeral keys)
//   okm  = HKDF-SHA256(ikm, salt, "lpbot-mpc/1 channel", 64); key(lo->hi) = okm[0:32],
//          key(hi->lo) = okm[32:64]
// The static keys are each party's long-term identity (pinned at key generation, kept in its
// encrypted state), so a relay that swaps keys cannot derive the channel key and its messages fail
// authentication; the ephemeral keys give each session fresh keys. One message per direction per
// round: the nonce is the round number, and the AAD names session, sender, receiver and round.

const crypto = require('node:crypto');

const codec = require('./codec');

const PROTOCOL = 'lpbot-mpc/1';

class ChannelError extends Error {}

function generateIdentity() {
  const { privateKey } = crypto.generateKeyPairSync('x25519');
  return privateKey.export({ format: 'jwk' });
}

function privateFromJwk(jwk) {
  return crypto.createPrivateKey({ key: jwk, format: 'jwk' });
}

function publicOf(privateKey) {
  return crypto.createPublicKey(privateKey).export({ format: 'jwk' }).x;
}

function publicFromRaw(x) {
  if (typeof x !== 'string' || !/^[A-Za-z0-9_-]{43}$/.test(x)) {
    throw new ChannelError('malformed X25519 public key');
  }
  return crypto.createPublicKey({ key: { kty: 'OKP', crv: 'X25519', x }, format: 'jwk' });
}

function newEphemeral() {
  const { privateKey } = crypto.generateKeyPairSync('x25519');
  return { privateKey, publicKey: publicOf(privateKey) };
}

function dh(privateKey, publicRaw) {
  return crypto.diffieHellman({ privateKey, publicKey: publicFromRaw(publicRaw) });
}

// Keys for the channel between `me` and `peer`; `transcript` binds the session.
function pairKeys({ me, peer, myStatic, peerStatic, myEph, peerEph, transcript }) {
  const ikm = Buffer.concat([dh(myStatic, peerStatic), dh(myEph.privateKey, peerEph)]);
  const [lo, hi] = me < peer ? [me, peer] : [peer, me];
  const [ephLo, ephHi] = me < peer ? [myEph.publicKey, peerEph] : [peerEph, myEph.publicKey];
  const salt = crypto
    .createHash('sha256')
    .update(`${PROTOCOL}|${transcript}|${lo}|${hi}|${ephLo}|${ephHi}`)
    .digest();
  const okm = Buffer.from(crypto.hkdfSync('sha256', ikm, salt, `${PROTOCOL} channel`, 64));
  const loHi = okm.subarray(0, 32);
  const hiLo = okm.subarray(32, 64);
  return me === lo ? { send: loHi, recv: hiLo } : { send: hiLo, recv: loHi };
}

function nonce(round) {
  const iv = Buffer.alloc(12);
  iv.writeUInt32BE(round, 8);
  return iv;
}

function aad(session, from, to, round) {
  return Buffer.from(`${PROTOCOL}|${session}|${from}>${to}|${round}`);
}

function seal(key, { session, from, to, round }, payload) {
  const cipher = crypto.createCipheriv('aes-256-gcm', key, nonce(round));
  cipher.setAAD(aad(session, from, to, round));
  const ct = Buffer.concat([cipher.update(codec.encode(payload), 'utf8'), cipher.final()]);
  return Buffer.concat([ct, cipher.getAuthTag()]).toString('base64');
}

function open(key, { session, from, to, round }, sealed) {
  try {
    const buf = Buffer.from(sealed, 'base64');
    const decipher = crypto.createDecipheriv('aes-256-gcm', key, nonce(round));
    decipher.setAAD(aad(session, from, to, round));
    decipher.setAuthTag(buf.subarray(buf.length - 16));
    const pt = Buffer.concat([decipher.update(buf.subarray(0, buf.length - 16)), decipher.final()]);
    return codec.decode(pt.toString('utf8'));
  } catch (_err) {
    throw new ChannelError(`message from party ${from} (round ${round}) failed authentication`);
  }
}

module.exports = {
  PROTOCOL,
  ChannelError,
  generateIdentity,
  privateFromJwk,
  publicOf,
  newEphemeral,
  pairKeys,
  seal,
  open,
};
