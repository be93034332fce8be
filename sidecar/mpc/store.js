'use strict';
// A party's state at rest: one file, encrypted under a key derived from a passphrase.
//
//   key        = scrypt(passphrase, salt, N=2^17, r=8, p=1) -> 32 bytes   (about 128 MiB, ~0.6 s)
//   ciphertext = AES-256-GCM(key, iv, state JSON), AAD = the header fields below
// The file is written with mode 0600 through a temporary file and a rename; its directory is 0700.
// Each write uses a fresh IV; the salt (and so the derived key) is kept for the life of the
// process, so re-sealing after key generation costs no second scrypt. A wrong passphrase and a
// modified file are the same failure: the GCM tag does not verify.

const crypto = require('node:crypto');
const fs = require('node:fs');
const path = require('node:path');

const codec = require('./codec');

const FORMAT = 'lpbot-mpc-party-state';
const VERSION = 1;
const SCRYPT = { N: 2 ** 17, r: 8, p: 1 };
const MAXMEM = 256 * 1024 * 1024;
const MIN_PASSPHRASE = 12;

class StoreError extends Error {
  constructor(code, message) {
    super(message);
    this.code = code;
  }
}

function deriveKey(passphrase, salt, kdf) {
  return crypto.scryptSync(passphrase.normalize('NFKC'), salt, 32, {
    N: kdf.N,
    r: kdf.r,
    p: kdf.p,
    maxmem: MAXMEM,
  });
}

function headerAad(h) {
  return Buffer.from(
    [h.format, h.version, h.index, h.kdf.name, h.kdf.N, h.kdf.r, h.kdf.p, h.kdf.salt, h.cipher.name, h.cipher.iv].join('|'),
  );
}

function writeFile0600(file, text) {
  fs.mkdirSync(path.dirname(file), { recursive: true, mode: 0o700 });
  const tmp = `${file}.tmp-${crypto.randomBytes(6).toString('hex')}`;
  const fd = fs.openSync(tmp, 'wx', 0o600);
  try {
    fs.writeSync(fd, text);
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
  fs.chmodSync(tmp, 0o600);
  fs.renameSync(tmp, file);
}

class SealedStore {
  constructor(dir) {
    this.dir = dir;
    this.file = path.join(dir, 'state.enc.json');
    this.key = null;
    this.kdf = null;
  }

  exists() {
    return fs.existsSync(this.file);
  }

  // Derive a new key (fresh salt) for a new state file.
  create(passphrase) {
    if (passphrase.length < MIN_PASSPHRASE) {
      throw new StoreError('weak_passphrase', `passphrase shorter than ${MIN_PASSPHRASE} characters`);
    }
    this.kdf = { name: 'scrypt', ...SCRYPT, salt: crypto.randomBytes(16).toString('base64') };
    this.key = deriveKey(passphrase, Buffer.from(this.kdf.salt, 'base64'), this.kdf);
  }

  load(passphrase, index) {
    let sealed;
    try {
      sealed = JSON.parse(fs.readFileSync(this.file, 'utf8'));
    } catch (err) {
      throw new StoreError('no_state', `cannot read ${this.file}: ${err.code || err.message}`);
    }
    const h = sealed.header;
    if (!h || h.format !== FORMAT || h.version !== VERSION || h.kdf?.name !== 'scrypt') {
      throw new StoreError('bad_state', `${this.file} is not a version ${VERSION} party state`);
    }
    if (index !== undefined && h.index !== index) {
      throw new StoreError('bad_state', `${this.file} belongs to party ${h.index}, not ${index}`);
    }
    const key = deriveKey(passphrase, Buffer.from(h.kdf.salt, 'base64'), h.kdf);
    let plaintext;
    try {
      const decipher = crypto.createDecipheriv('aes-256-gcm', key, Buffer.from(h.cipher.iv, 'base64'));
      decipher.setAAD(headerAad(h));
      decipher.setAuthTag(Buffer.from(sealed.tag, 'base64'));
      plaintext = Buffer.concat([
        decipher.update(Buffer.from(sealed.ciphertext, 'base64')),
        decipher.final(),
      ]);
    } catch (_err) {
      throw new StoreError('wrong_passphrase', 'wrong passphrase, or the state file was modified');
    }
    this.key = key;
    this.kdf = h.kdf;
    return codec.decode(plaintext.toString('utf8'));
  }

  save(state) {
    if (!this.key) throw new StoreError('locked', 'the store has no key (unlock first)');
    const header = {
      format: FORMAT,
      version: VERSION,
      index: state.index,
      kdf: this.kdf,
      cipher: { name: 'aes-256-gcm', iv: crypto.randomBytes(12).toString('base64') },
    };
    const cipher = crypto.createCipheriv('aes-256-gcm', this.key, Buffer.from(header.cipher.iv, 'base64'));
    cipher.setAAD(headerAad(header));
    const ct = Buffer.concat([cipher.update(codec.encode(state), 'utf8'), cipher.final()]);
    const sealed = { header, ciphertext: ct.toString('base64'), tag: cipher.getAuthTag().toString('base64') };
    writeFile0600(this.file, `${JSON.stringify(sealed)}\n`);
  }
}

module.exports = { SealedStore, StoreError, writeFile0600 };
