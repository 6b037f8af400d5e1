// RFC 6902 JSON Patch, applied the way the server applies it: all operations
// or none (the input is never changed), with RFC 6901 pointers. The canvas
// uses it to keep its local document and its optimistic view.

import { NorthstarError } from './errors.js';

/** Returns a new document: `document` with `ops` applied. Throws `patch_failed`. */
export function applyPatch(document, ops) {
  let result = structuredClone(document);
  ops.forEach((op, index) => {
    try {
      result = applyOne(result, op);
    } catch (error) {
      throw new NorthstarError('patch_failed', `operation ${index} (${op?.op} ${op?.path}): ${error.message}`, { op_index: index });
    }
  });
  return result;
}

function applyOne(document, op) {
  switch (op.op) {
    case 'add': return add(document, op.path, structuredClone(op.value));
    case 'remove': return remove(document, op.path);
    case 'replace': return add(remove(document, op.path), op.path, structuredClone(op.value));
    case 'move': {
      if (op.path.startsWith(op.from + '/')) throw new Error('cannot move a value into itself');
      const value = get(document, op.from);
      return add(remove(document, op.from), op.path, value);
    }
    case 'copy': return add(document, op.path, structuredClone(get(document, op.from)));
    case 'test':
      if (!equal(get(document, op.path), op.value)) throw new Error('test failed');
      return document;
    default: throw new Error(`unknown op "${op.op}"`);
  }
}

function tokens(pointer) {
  if (pointer === '') return [];
  if (!pointer.startsWith('/')) throw new Error(`"${pointer}" is not a JSON pointer`);
  return pointer.slice(1).split('/').map(t => t.replace(/~1/g, '/').replace(/~0/g, '~'));
}

/** The container the pointer's last token lives in, and that token. */
function parent(document, pointer) {
  const path = tokens(pointer);
  const last = path.pop();
  let node = document;
  for (const token of path) {
    node = child(node, token);
  }
  return [node, last];
}

function child(node, token) {
  if (Array.isArray(node)) {
    const index = arrayIndex(node, token, false);
    return node[index];
  }
  if (node !== null && typeof node === 'object' && Object.hasOwn(node, token)) return node[token];
  throw new Error(`path segment "${token}" does not exist`);
}

function arrayIndex(array, token, forInsert) {
  if (forInsert && token === '-') return array.length;
  if (!/^(0|[1-9][0-9]*)$/.test(token)) throw new Error(`"${token}" is not an array index`);
  const index = Number(token);
  if (index > array.length || (!forInsert && index === array.length)) throw new Error(`index ${index} is out of range`);
  return index;
}

function get(document, pointer) {
  let node = document;
  for (const token of tokens(pointer)) node = child(node, token);
  return node;
}

function add(document, pointer, value) {
  if (pointer === '') return value;
  const [node, last] = parent(document, pointer);
  if (Array.isArray(node)) node.splice(arrayIndex(node, last, true), 0, value);
  else if (node !== null && typeof node === 'object') node[last] = value;
  else throw new Error(`the parent of ${pointer} is not a container`);
  return document;
}

function remove(document, pointer) {
  if (pointer === '') throw new Error('cannot remove the whole document');
  const [node, last] = parent(document, pointer);
  if (Array.isArray(node)) node.splice(arrayIndex(node, last, false), 1);
  else if (node !== null && typeof node === 'object' && Object.hasOwn(node, last)) delete node[last];
  else throw new Error(`${pointer} does not exist`);
  return document;
}

function equal(a, b) {
  if (a === b) return true;
  if (typeof a !== 'object' || typeof b !== 'object' || a === null || b === null) return false;
  if (Array.isArray(a) !== Array.isArray(b)) return false;
  const keys = Object.keys(a);
  return keys.length === Object.keys(b).length && keys.every(key => Object.hasOwn(b, key) && equal(a[key], b[key]));
}
