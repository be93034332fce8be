'use strict';
// JSON for the library's values: the wasm returns BTreeMaps as Map and byte strings as
// Uint8Array, which plain JSON would flatten. Both are tagged on the way out and rebuilt on the
// way in ({"$map": [[k, v], ...]}, {"$u8": "<base64>"}).

function replacer(_key, value) {
  if (value instanceof Map) return { $map: [...value.entries()] };
  if (value instanceof Uint8Array) return { $u8: Buffer.from(value).toString('base64') };
  return value;
}

function reviver(_key, value) {
  if (value && typeof value === 'object' && !Array.isArray(value)) {
    if (Array.isArray(value.$map)) return new Map(value.$map);
    if (typeof value.$u8 === 'string') return new Uint8Array(Buffer.from(value.$u8, 'base64'));
  }
  return value;
}

const encode = (value) => JSON.stringify(value, replacer);
const decode = (text) => JSON.parse(text, reviver);

module.exports = { encode, decode };
