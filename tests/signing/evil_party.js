'use strict';
// A cheating party for the tests: honest except that in signing round 2 it reveals an instance
// point other than the one it committed to in round 1. Its peers must abort.
const path = require('node:path');

const party = require(path.join(__dirname, '..', '..', 'sidecar', 'mpc', 'party.js'));

(async () => {
  const dkls = await party.loadDkls();
  const honest = dkls.signPhase2;
  dkls.signPhase2 = (...args) => {
    const out = honest(...args);
    if (out && out.Ok) {
      for (const m of out.Ok[2]) m.instance_point = m.public_share;
    }
    return out;
  };
  await party.main({ dkls });
})();
