'use strict';

const test = require('node:test');
const assert = require('node:assert/strict');
const { slugify } = require('../slugify');

test('lower-cases single words', () => {
  assert.equal(slugify('Hello'), 'hello');
});

test('joins words with the separator', () => {
  assert.equal(slugify('hello world'), 'hello-world');
  assert.equal(slugify('hello world', { separator: '_' }), 'hello_world');
});

test('drops punctuation without doubling separators', () => {
  assert.equal(slugify('Hello, World!'), 'hello-world');
});
