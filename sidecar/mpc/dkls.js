'use strict';
// Loads a DKLs23 build (wasm-bindgen "web" target, the interface of `@0xcarbon/dkls23-wasm`)
// into Node. The backend is optional and installed explicitly: `make mpc` puts
// `@0xcarbon/dkls23-wasm` 1.0.2 under sidecar/mpc/backend/node_modules (that package carries no
// licence grant; see the README). LPBOT_MPC_BACKEND names the directory of another build with the
// same exports (dkls23_wasm.js, dkls23_wasm_bg.wasm) instead.
//
// The package ships ES-module glue without "type": "module", so Node cannot `require` it; the
// glue is imported from a data: URL (always an ES module) and the .wasm bytes are given to
// initSync. The wasm logs through console.*; those calls are silenced here because stdout carries
// the party protocol, and only the last panic line is kept for error replies.

const fs = require('node:fs');
const path = require('node:path');

const PACKAGE = '@0xcarbon/dkls23-wasm';
const INSTALLED = path.join(__dirname, 'backend', 'node_modules', ...PACKAGE.split('/'));

class BackendMissing extends Error {
  constructor(message) {
    super(message);
    this.code = 'no_backend';
  }
}

function backendDir() {
  const dir = process.env.LPBOT_MPC_BACKEND || INSTALLED;
  for (const f of ['dkls23_wasm.js', 'dkls23_wasm_bg.wasm']) {
    if (!fs.existsSync(path.join(dir, f))) {
      throw new BackendMissing(
        `the MPC backend is not installed (${path.join(dir, f)} is missing): run \`make mpc\` ` +
          'or set LPBOT_MPC_BACKEND to a licensed DKLs23 build; see the README, Custody',
      );
    }
  }
  return dir;
}

let lastPanic = '';

function silenceWasmConsole() {
  const drop = () => {};
  console.log = drop;
  console.info = drop;
  console.debug = drop;
  console.warn = drop;
  console.error = (...args) => {
    lastPanic = String(args[0] ?? '').split('\n')[0].slice(0, 300);
  };
}

async function instantiate(glue, compiled, generation) {
  // a distinct source per generation gives a distinct module, hence a fresh wasm instance
  const source = Buffer.concat([glue, Buffer.from(`\n// instance ${generation}\n`)]);
  const mod = await import(`data:text/javascript;base64,${source.toString('base64')}`);
  mod.initSync(compiled);
  return mod;
}

async function loadDkls() {
  const dir = backendDir();
  silenceWasmConsole();
  const glue = fs.readFileSync(path.join(dir, 'dkls23_wasm.js'));
  const compiled = new WebAssembly.Module(fs.readFileSync(path.join(dir, 'dkls23_wasm_bg.wasm')));
  let generation = 0;
  let mod = await instantiate(glue, compiled, generation);
  return {
    // key generation (DKLs23; Protocol 9.1 of eprint 2023/602)
    dkgPhase1: (...a) => mod.phase1_wasm_binding(...a),
    dkgPhase2: (...a) => mod.phase2_wasm_binding(...a),
    dkgPhase3: (...a) => mod.phase3_wasm_binding(...a),
    dkgPhase4: (...a) => mod.phase4_wasm_binding(...a),
    // signing (DKLs23 Protocol 3.6, eprint 2023/765)
    signPhase1: (...a) => mod.sign_phase1(...a),
    signPhase2: (...a) => mod.sign_phase2(...a),
    signPhase3: (...a) => mod.sign_phase3(...a),
    signPhase4: (...a) => mod.sign_phase4(...a),
    // a panic leaves a wasm instance unusable: load a fresh one
    reset: async () => {
      generation += 1;
      mod = await instantiate(glue, compiled, generation);
    },
    lastPanic: () => lastPanic,
  };
}

module.exports = { loadDkls, backendDir, BackendMissing };
