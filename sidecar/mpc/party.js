'use strict';
// One MPC party: holds one share of a threshold ECDSA key and runs DKLs23 key generation and
// signing with its peers through a coordinator that only relays sealed messages.
//
//   node sidecar/mpc/party.js --dir <party dir> --passphrase-env <ENV NAME> [--passphrase-fd <N>]
//
// The passphrase is read once, at start, from file descriptor N (a pipe the starting process
// wrote it to and closed), so it is in no process's environment or argv; the variable's name is
// only named in messages. Without --passphrase-fd (a party started by hand) it is read from the
// environment variable.
//
// Protocol: newline-delimited JSON on stdin (requests) and stdout (replies); diagnostics, never
// secrets, on stderr. See sidecar/mpc/README.md for the messages and the custody model.

const crypto = require('node:crypto');
const fs = require('node:fs');
const path = require('node:path');
const readline = require('node:readline');

const channel = require('./channel');
const { SealedStore, StoreError, writeFile0600 } = require('./store');
const { loadDkls } = require('./dkls');

const MAX_PARTIES = 16;

class PartyError extends Error {
  constructor(code, message) {
    super(message);
    this.code = code;
  }
}

const fail = (code, message) => {
  throw new PartyError(code, message);
};

const sha256hex = (text) => crypto.createHash('sha256').update(text).digest('hex');
const bytes = (hex) => Array.from(Buffer.from(hex, 'hex'));
const isHex32 = (v) => typeof v === 'string' && /^[0-9a-f]{64}$/.test(v);

function checkIndices(list, n, what) {
  if (!Array.isArray(list) || list.some((k) => !Number.isInteger(k) || k < 1 || k > n)) {
    fail('bad_request', `${what} must be party indices 1..${n}`);
  }
  if (new Set(list).size !== list.length) fail('bad_request', `${what} repeat a party`);
}

// The library marks the parties of a message; they must match the authenticated channel.
function checkParties(msg, from, to, what) {
  const p = msg && msg.parties;
  if (!p || p.sender !== from || p.receiver !== to) {
    fail('aborted', `party ${from} sent a ${what} message addressed ${p?.sender}->${p?.receiver}`);
  }
}

function unwrap(result, what) {
  if (result && result.Err) {
    const e = result.Err;
    fail('aborted', `${what}: ${e.description || JSON.stringify(e)}`);
  }
  return result && result.Ok !== undefined ? result.Ok : result;
}

class Party {
  constructor(dir, passphraseEnv, dkls, passphrase) {
    this.dir = path.resolve(dir);
    this.passphraseEnv = passphraseEnv;
    this.secret = passphrase;
    this.dkls = dkls;
    this.store = new SealedStore(this.dir);
    this.publicFile = path.join(this.dir, 'party.json');
    this.state = null; // decrypted: { index, identity (JWK), peers, share, address, ... }
    this.session = null;
  }

  passphrase() {
    const value = this.secret;
    if (!value) fail('no_passphrase', `set ${this.passphraseEnv} to the passphrase of ${this.dir}`);
    return value;
  }

  publicInfo() {
    try {
      return JSON.parse(fs.readFileSync(this.publicFile, 'utf8'));
    } catch (_err) {
      return null;
    }
  }

  writePublic() {
    const s = this.state;
    const info = {
      index: s.index,
      identity: channel.publicOf(channel.privateFromJwk(s.identity)),
      address: s.address,
      public_key: s.publicKey,
      key_id: s.keyId,
      threshold: s.threshold,
      share_count: s.shareCount,
      peers: s.peers,
    };
    writeFile0600(this.publicFile, `${JSON.stringify(info, null, 2)}\n`);
  }

  status() {
    const s = this.state;
    const pub = s ? null : this.publicInfo();
    const src = s
      ? {
          index: s.index,
          identity: channel.publicOf(channel.privateFromJwk(s.identity)),
          address: s.address,
          key_id: s.keyId,
          threshold: s.threshold,
          share_count: s.shareCount,
        }
      : pub || {};
    return {
      protocol: channel.PROTOCOL,
      initialized: this.store.exists(),
      unlocked: s !== null,
      has_share: s ? s.share !== null : Boolean(src.address),
      index: src.index ?? null,
      identity: src.identity ?? null,
      address: src.address ?? null,
      key_id: src.key_id ?? null,
      threshold: src.threshold ?? null,
      share_count: src.share_count ?? null,
    };
  }

  // ---- requests ---------------------------------------------------------------------------

  op_status() {
    return this.status();
  }

  op_init({ index }) {
    if (!Number.isInteger(index) || index < 1 || index > MAX_PARTIES) {
      fail('bad_request', `index must be 1..${MAX_PARTIES}`);
    }
    if (this.store.exists()) {
      this.op_unlock({ index });
      return this.status();
    }
    this.store.create(this.passphrase());
    this.state = {
      version: 1,
      index,
      identity: channel.generateIdentity(),
      peers: {},
      share: null,
      address: null,
      publicKey: null,
      keyId: null,
      threshold: null,
      shareCount: null,
    };
    this.store.save(this.state);
    this.writePublic();
    return this.status();
  }

  op_unlock({ index } = {}) {
    if (!this.store.exists()) fail('no_state', `no party state in ${this.dir} (run key generation)`);
    const passphrase = this.passphrase();
    try {
      this.state = this.store.load(passphrase, index);
    } catch (err) {
      if (err instanceof StoreError && err.code === 'wrong_passphrase') {
        fail('wrong_passphrase', `${this.dir}: wrong passphrase (${this.passphraseEnv}), or the state file was modified`);
      }
      throw err;
    }
    return this.status();
  }

  requireUnlocked() {
    if (!this.state) fail('locked', 'party is locked (unlock first)');
    return this.state;
  }

  op_abort({ session }) {
    if (this.session && (!session || this.session.id === session)) this.session = null;
    return {};
  }

  op_start(req) {
    const s = this.requireUnlocked();
    this.session = null;
    if (!isHex32(req.session)) fail('bad_request', 'session must be 32 bytes of lowercase hex');
    const sess = { id: req.session, kind: req.kind, round: 0, eph: channel.newEphemeral() };
    if (req.kind === 'keygen') this.startKeygen(s, sess, req);
    else if (req.kind === 'sign') this.startSign(s, sess, req);
    else fail('bad_request', `unknown session kind ${req.kind}`);
    this.session = sess;
    return {
      outbox: sess.peers.map((to) => ({ from: s.index, to, round: 0, eph: sess.eph.publicKey })),
    };
  }

  startKeygen(s, sess, { threshold: t, share_count: n, identities }) {
    if (s.share) fail('has_share', `${this.dir} already holds a share of ${s.address}; use a new directory`);
    if (!Number.isInteger(n) || n < 2 || n > MAX_PARTIES) fail('bad_request', `share_count must be 2..${MAX_PARTIES}`);
    if (!Number.isInteger(t) || t < 2 || t > n) fail('bad_request', 'threshold must be 2..share_count');
    if (s.index > n) fail('bad_request', `party ${s.index} is outside 1..${n}`);
    const ids = identities || {};
    const all = Array.from({ length: n }, (_, k) => k + 1);
    for (const k of all) {
      if (typeof ids[k] !== 'string') fail('bad_request', `no identity key for party ${k}`);
    }
    const mine = channel.publicOf(channel.privateFromJwk(s.identity));
    if (ids[s.index] !== mine) fail('bad_request', 'the identity given for this party is not its own');
    for (const [k, pin] of Object.entries(s.peers || {})) {
      if (ids[k] !== pin) fail('bad_request', `identity of party ${k} differs from the pinned one`);
    }
    Object.assign(sess, {
      t,
      n,
      all,
      peers: all.filter((k) => k !== s.index),
      identities: Object.fromEntries(all.map((k) => [k, ids[k]])),
      label: `keygen|${t}of${n}`,
    });
  }

  startSign(s, sess, { digest, signers, address }) {
    if (!s.share) fail('no_share', `${this.dir} holds no key share (run key generation)`);
    if (address && address.toLowerCase() !== s.address.toLowerCase()) {
      fail('wrong_key', `party ${s.index} holds a share of ${s.address}, not ${address}`);
    }
    if (!isHex32(digest)) fail('bad_request', 'digest must be 32 bytes of lowercase hex');
    checkIndices(signers, s.shareCount, 'signers');
    if (signers.length !== s.threshold) {
      fail('bad_request', `a ${s.threshold}-of-${s.shareCount} key signs with exactly ${s.threshold} parties, got ${signers.length}`);
    }
    if (!signers.includes(s.index)) fail('bad_request', `party ${s.index} is not among the signers`);
    const all = [...signers].sort((a, b) => a - b);
    Object.assign(sess, {
      digest,
      all,
      peers: all.filter((k) => k !== s.index),
      identities: { ...s.peers, [s.index]: channel.publicOf(channel.privateFromJwk(s.identity)) },
      label: `sign|${s.keyId}|${digest}`,
    });
  }

  op_step({ session, round, inbox }) {
    const s = this.requireUnlocked();
    const sess = this.session;
    if (!sess || sess.id !== session) fail('bad_request', 'no such session');
    try {
      if (round !== sess.round + 1) fail('bad_request', `expected round ${sess.round + 1}, got ${round}`);
      const received = this.receive(s, sess, round, inbox);
      sess.round = round;
      const handler = sess.kind === 'keygen' ? this.keygenRound : this.signRound;
      const out = handler.call(this, s, sess, round, received);
      if (out.done) {
        this.session = null;
        return { done: true, result: out.done };
      }
      const outbox = sess.peers.map((to) => ({
        from: s.index,
        to,
        round,
        sealed: channel.seal(sess.keys[to].send, { session: sess.id, from: s.index, to, round }, out.send[to]),
      }));
      return { outbox };
    } catch (err) {
      this.session = null;
      throw err;
    }
  }

  // Check the inbox holds exactly one envelope from each peer; open it.
  receive(s, sess, round, inbox) {
    if (!Array.isArray(inbox) || inbox.length !== sess.peers.length) {
      fail('aborted', `round ${round}: expected ${sess.peers.length} messages, got ${inbox?.length}`);
    }
    const byPeer = {};
    for (const env of inbox) {
      if (!sess.peers.includes(env.from) || env.to !== s.index || env.round !== round - 1) {
        fail('aborted', `round ${round}: unexpected envelope ${env.from}->${env.to} (round ${env.round})`);
      }
      if (byPeer[env.from]) fail('aborted', `round ${round}: two messages from party ${env.from}`);
      byPeer[env.from] = env;
    }
    if (round === 1) {
      this.agreeKeys(s, sess, byPeer);
      return {};
    }
    const payloads = {};
    for (const j of sess.peers) {
      payloads[j] = channel.open(
        sess.keys[j].recv,
        { session: sess.id, from: j, to: s.index, round: round - 1 },
        byPeer[j].sealed,
      );
    }
    return payloads;
  }

  agreeKeys(s, sess, byPeer) {
    const myStatic = channel.privateFromJwk(s.identity);
    const ephs = { [s.index]: sess.eph.publicKey };
    for (const j of sess.peers) ephs[j] = byPeer[j].eph;
    const transcript = `${sess.label}|${sess.id}`;
    sess.keys = {};
    for (const j of sess.peers) {
      if (typeof sess.identities[j] !== 'string') fail('aborted', `no pinned identity for party ${j}`);
      sess.keys[j] = channel.pairKeys({
        me: s.index,
        peer: j,
        myStatic,
        peerStatic: sess.identities[j],
        myEph: sess.eph,
        peerEph: ephs[j],
        transcript,
      });
    }
    // The library's session id: fresh per run, bound to everyone's ephemeral key.
    const parts = sess.all.map((k) => `${k}:${sess.identities[k] ?? ''}:${ephs[k]}`).join('|');
    sess.protocolId = bytes(sha256hex(`${channel.PROTOCOL}|${transcript}|${parts}`));
  }

  // ---- key generation: 4 rounds -----------------------------------------------------------

  keygenRound(s, sess, round, got) {
    const i = s.index;
    const d = this.dkls;
    const data = { parameters: { threshold: sess.t, share_count: sess.n }, party_index: i, session_id: sess.protocolId };
    const send = {};
    if (round === 1) {
      const fragments = d.dkgPhase1(data);
      sess.ownFragment = fragments[i - 1];
      for (const j of sess.peers) send[j] = { fragment: fragments[j - 1] };
      return { send };
    }
    if (round === 2) {
      const fragments = [sess.ownFragment];
      for (const j of sess.peers) {
        if (!/^[0-9A-Fa-f]{64}$/.test(got[j].fragment || '')) fail('aborted', `party ${j} sent a malformed fragment`);
        fragments.push(got[j].fragment);
      }
      const [polyPoint, proofCommitment, zeroKeep, zeroTransmit, bipKeep, bipBroadcast] = d.dkgPhase2(data, fragments);
      Object.assign(sess, { polyPoint, proofCommitment, zeroKeep2: zeroKeep, bipKeep });
      sess.bip2 = new Map([[i, bipBroadcast]]);
      for (const j of sess.peers) {
        send[j] = {
          commitment: proofCommitment.commitment,
          zero: zeroTransmit.find((m) => m.parties.receiver === j),
          bip: bipBroadcast,
        };
      }
      return { send };
    }
    if (round === 3) {
      sess.commitments = {};
      sess.zero2 = [];
      for (const j of sess.peers) {
        const m = got[j];
        checkParties(m.zero, j, i, 'zero-share');
        if (!m.bip || m.bip.sender_index !== j) fail('aborted', `party ${j} sent a foreign chain-code commitment`);
        sess.commitments[j] = m.commitment;
        sess.zero2.push(m.zero);
        sess.bip2.set(j, m.bip);
      }
      const [zeroKeep, zeroTransmit, mulKeep, mulTransmit, bipBroadcast] = d.dkgPhase3(data, sess.zeroKeep2, sess.bipKeep);
      Object.assign(sess, { zeroKeep3: zeroKeep, mulKeep });
      sess.bip3 = new Map([[i, bipBroadcast]]);
      for (const j of sess.peers) {
        send[j] = {
          proof: sess.proofCommitment.proof,
          zero: zeroTransmit.find((m) => m.parties.receiver === j),
          mul: mulTransmit.find((m) => m.parties.receiver === j),
          bip: bipBroadcast,
        };
      }
      return { send };
    }
    // round 4: open the commitments, finish, seal the share
    const proofs = [sess.proofCommitment];
    const zero3 = [];
    const mul = [];
    for (const j of sess.peers) {
      const m = got[j];
      checkParties(m.zero, j, i, 'zero-share');
      checkParties(m.mul, j, i, 'multiplication');
      if (!m.bip || m.bip.sender_index !== j) fail('aborted', `party ${j} sent a foreign chain code`);
      // the proof is checked against the commitment that party j sent in the round before
      proofs.push({ index: j, proof: m.proof, commitment: sess.commitments[j] });
      zero3.push(m.zero);
      mul.push(m.mul);
      sess.bip3.set(j, m.bip);
    }
    const share = unwrap(
      d.dkgPhase4(data, sess.polyPoint, proofs, sess.zeroKeep3, sess.zero2, zero3, sess.mulKeep, mul, sess.bip2, sess.bip3),
      'key generation aborted',
    );
    Object.assign(s, {
      share,
      address: share.eth_address,
      publicKey: share.pk,
      keyId: Buffer.from(share.session_id).toString('hex'),
      threshold: sess.t,
      shareCount: sess.n,
      peers: Object.fromEntries(sess.peers.map((k) => [k, sess.identities[k]])),
    });
    this.store.save(s);
    this.writePublic();
    return { done: { address: s.address, public_key: s.publicKey, key_id: s.keyId } };
  }

  // ---- signing: 4 rounds ------------------------------------------------------------------

  signRound(s, sess, round, got) {
    const i = s.index;
    const d = this.dkls;
    const data = { sign_id: sess.protocolId, counterparties: sess.peers, message_hash: bytes(sess.digest) };
    const send = {};
    const collect = (what) =>
      sess.peers.map((j) => {
        checkParties(got[j].m, j, i, what);
        return got[j].m;
      });
    if (round === 1) {
      const [uniqueKeep, keep, transmit] = d.signPhase1(s.share, data);
      Object.assign(sess, { uniqueKeep, keep });
      for (const j of sess.peers) send[j] = { m: transmit.find((m) => m.parties.receiver === j) };
      return { send };
    }
    if (round === 2) {
      const [uniqueKeep, keep, transmit] = unwrap(
        d.signPhase2(s.share, data, sess.uniqueKeep, sess.keep, collect('sign round 1')),
        'signing aborted',
      );
      Object.assign(sess, { uniqueKeep, keep });
      for (const j of sess.peers) send[j] = { m: transmit.find((m) => m.parties.receiver === j) };
      return { send };
    }
    if (round === 3) {
      const [xCoord, broadcast] = unwrap(
        d.signPhase3(s.share, data, sess.uniqueKeep, sess.keep, collect('sign round 2')),
        'signing aborted',
      );
      Object.assign(sess, { xCoord, broadcast });
      for (const j of sess.peers) send[j] = { b: broadcast };
      return { send };
    }
    const broadcasts = [sess.broadcast, ...sess.peers.map((j) => got[j].b)];
    const [sHex, recoveryId] = unwrap(d.signPhase4(s.share, data, sess.xCoord, broadcasts, true), 'signing aborted');
    return { done: { r: sess.xCoord, s: sHex, recovery_id: recoveryId } };
  }
}

// ---- the stdin/stdout loop --------------------------------------------------------------

function parseArgs(argv) {
  const out = {};
  for (let k = 2; k < argv.length; k += 2) {
    if (argv[k] === '--dir') out.dir = argv[k + 1];
    else if (argv[k] === '--passphrase-env') out.passphraseEnv = argv[k + 1];
    else if (argv[k] === '--passphrase-fd') out.passphraseFd = argv[k + 1];
    else throw new Error(`unknown argument ${argv[k]}`);
  }
  if (!out.dir || !out.passphraseEnv) {
    throw new Error('usage: party.js --dir DIR --passphrase-env NAME [--passphrase-fd N]');
  }
  return out;
}

// The passphrase: read to the end of its pipe and the pipe closed; else the named variable.
function readPassphrase(args) {
  if (args.passphraseFd === undefined) return process.env[args.passphraseEnv] || undefined;
  const fd = Number(args.passphraseFd);
  if (!Number.isInteger(fd) || fd < 3) throw new Error('--passphrase-fd takes a descriptor >= 3');
  const chunks = [];
  const buf = Buffer.alloc(4096);
  for (;;) {
    const n = fs.readSync(fd, buf, 0, buf.length, null);
    if (n === 0) break;
    chunks.push(Buffer.from(buf.subarray(0, n)));
  }
  fs.closeSync(fd);
  const text = Buffer.concat(chunks).toString('utf8');
  return text || undefined;
}

const OPS = new Set(['status', 'init', 'unlock', 'start', 'step', 'abort']);

async function main({ dkls } = {}) {
  const args = parseArgs(process.argv);
  const party = new Party(args.dir, args.passphraseEnv, dkls || (await loadDkls()), readPassphrase(args));
  const reply = (obj) => process.stdout.write(`${JSON.stringify(obj)}\n`);
  const rl = readline.createInterface({ input: process.stdin, crlfDelay: Infinity });
  let chain = Promise.resolve();
  rl.on('line', (line) => {
    chain = chain.then(async () => {
      let req;
      try {
        req = JSON.parse(line);
      } catch (_err) {
        reply({ id: null, ok: false, error: { code: 'bad_request', message: 'not JSON' } });
        return;
      }
      const { id, op } = req;
      if (op === 'shutdown') {
        reply({ id, ok: true, result: {} });
        process.exit(0);
      }
      try {
        if (!OPS.has(op)) fail('bad_request', `unknown op ${op}`);
        reply({ id, ok: true, result: party[`op_${op}`](req) });
      } catch (err) {
        if (err instanceof PartyError || err instanceof StoreError || err instanceof channel.ChannelError) {
          const code = err instanceof channel.ChannelError ? 'auth_failed' : err.code;
          reply({ id, ok: false, error: { code, message: err.message } });
        } else {
          // a wasm trap or a bug: no secret is in the message, and the instance is replaced
          const detail = err instanceof WebAssembly.RuntimeError ? party.dkls.lastPanic() : '';
          party.session = null;
          reply({ id, ok: false, error: { code: 'internal', message: `${err.message} ${detail}`.trim() } });
          if (err instanceof WebAssembly.RuntimeError) await party.dkls.reset();
        }
      }
    });
  });
  rl.on('close', () => chain.then(() => process.exit(0)));
}

if (require.main === module) {
  main().catch((err) => {
    process.stderr.write(`party: ${err.message}\n`);
    process.exit(2);
  });
}

module.exports = { main, loadDkls };
