/**
 * What walks a request body does so without recursion: the depth count run
 * before JSON.parse, and withoutNulls; XML too deep to walk is refused when
 * parsed. None may overflow the stack, however deep the input.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { jsonDepthExceeds } from '#src/common/limits/json-depth.js';
import { withoutNulls } from '#src/common/without-nulls.js';
import { MAX_XML_DEPTH, parseXml, XmlParseError } from '#src/xml/xml.js';

describe('jsonDepthExceeds', () => {
  it('counts arrays and objects, not brackets inside strings', () => {
    assert.equal(jsonDepthExceeds('{"a": [1, {"b": 2}]}', 3), false);
    assert.equal(jsonDepthExceeds('{"a": [1, {"b": 2}]}', 2), true);
    assert.equal(jsonDepthExceeds(JSON.stringify({ s: '[[[[{{{{' }), 1), false);
    assert.equal(jsonDepthExceeds(JSON.stringify({ s: 'a\\"[[[[' }), 1), false, 'escaped quote');
    assert.equal(jsonDepthExceeds('[[], [], [[]]]', 3), false, 'siblings do not add up');
    assert.equal(jsonDepthExceeds('"just a string"', 0), false);
  });

  it('answers at once for 200,000 nested arrays', () => {
    const deep = '['.repeat(200_000) + ']'.repeat(200_000);
    assert.equal(jsonDepthExceeds(deep, 64), true);
    assert.equal(jsonDepthExceeds(deep, 200_000), false);
  });
});

describe('withoutNulls', () => {
  class Input {
    a?: string | null;
    nested?: Input | null;
  }

  it('drops null fields at every depth, keeps array nulls and classes', () => {
    const input = Object.assign(new Input(), {
      a: null,
      nested: Object.assign(new Input(), { a: 'x', nested: null }),
      list: [1, null, { b: null, c: 2 }],
    });
    const out = withoutNulls(input);
    assert.ok(out instanceof Input);
    assert.ok(out.nested instanceof Input);
    assert.deepEqual(JSON.parse(JSON.stringify(out)), {
      nested: { a: 'x' },
      list: [1, null, { c: 2 }],
    });
    assert.equal(input.a, null, 'the input is left as it was');
    assert.equal(withoutNulls(null), null);
    assert.equal(withoutNulls('s'), 's');
  });

  it('copies 200,000 nested arrays without overflowing the stack', () => {
    const deep = JSON.parse('['.repeat(200_000) + ']'.repeat(200_000)) as unknown[];
    let copy = withoutNulls(deep);
    let depth = 1;
    while (Array.isArray(copy) && copy.length > 0) {
      copy = copy[0] as unknown[];
      depth++;
    }
    assert.equal(depth, 200_000);
  });
});

describe('parseXml', () => {
  const nested = (depth: number) => '<a>'.repeat(depth) + '</a>'.repeat(depth);

  it(`refuses elements nested deeper than ${MAX_XML_DEPTH}`, () => {
    assert.equal(parseXml(nested(MAX_XML_DEPTH)).tagName, 'a');
    assert.throws(() => parseXml(nested(MAX_XML_DEPTH + 1)), XmlParseError);
    assert.throws(() => parseXml(nested(130_000)), /nested deeper than 100 elements/);
  });
});
