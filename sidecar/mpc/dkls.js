'use strict';
// Loads 0xCarbon's DKLs23 (wasm-bindgen "web" target) into Node.
//
// The package ships ES-module glue without "type": "module", so Node cannot `require` it; the
// glue is imported from a data: URL (always an ES module) and the .wasm bytes are given to
// initSync. The wasm logs through console.*; those calls are silenced here because stdout carries
// the party protocol, and only the last panic line is kept for error replies.

const fs = require('node:fs');
const path = require('node:path');

const PACKAGE = '@0xcarbon/dkls23-wasm';

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
  silenceWasmConsole();
  const dir = path.dirname(require.resolve(`${PACKAGE}/package.json`));
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

module.exports = { loadDkls };
