/**
 * Unit tests for expand.ts: every $name form, relational operators, loops and Postfix's error texts.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { compareLevels, expand, ExpandError, references } from '../../../src/config/expand.ts';

const vars: Record<string, string> = { v: 'val', e: '', lvl: '3.6', a: '$b', b: '${v}!', loop1: '$loop2', loop2: '$loop1' };
const x = (text: string): string => expand(text, { lookup: (n) => vars[n] });

test('plain forms: $name, ${name}, $(name), undefined is empty, $$ is a dollar', () => {
  assert.equal(x('$v|${v}|$(v)|${ v }|$undefined|$$v|$$$v'), 'val|val|val|val||$v|$val');
  assert.equal(x('a$v.b'), 'aval.b');
});

test('conditionals ? and : with plain and braced values', () => {
  assert.equal(x('${v?yes}|${e?yes}|${v:no}|${e:no}|${undef:no}'), 'yes|||no|no');
  assert.equal(x('${v?{a b}:{c d}}|${e?{a b}:{c d}}|${v?{a{b}c}}|${v?x:y}|${v?x}y}'), 'a b|c d|a{b}c|x:y|xy}');
  assert.equal(x('${v?{${v}x}}|${v?$v}'), 'valx|val');
});

test('relational form: numeric, string and compatibility-level comparisons', () => {
  assert.equal(x('${{$v} == {val} ? {eq} : {ne}}'), 'eq');
  assert.equal(x('${{10} < {9} ? {lt} : {ge}}|${{1}=={01}?{a}:{b}}|${{ 1} == {1} ? {a} : {b}}'), 'ge|a|b');
  assert.equal(x('${{b} > {a} ? {a} : {b}}|${{1} != {1} ? {a} : {b}}|${{1} <= {1} ? {a} : {b}}|${{1} >= {2} ? {a} : {b}}'), 'a|b|a|b');
  assert.equal(x('${{$lvl} <level {3.11} ? {old} : {new}}|${{3.11} >=level {3.11} ? {a} : {b}}|${{3.6.1} <level {3.6} ? {a} : {b}}'), 'old|a|b');
  assert.equal(x('[${{1} == {1}}][${{1} == {2}}][${{1} == {2} ? {a}}]'), '[true][][]');
  assert.equal(compareLevels('3.6', '3.11'), -1);
  assert.equal(compareLevels('2', '1.9'), 1);
});

test('recursive expansion and loop detection', () => {
  assert.equal(x('$a'), 'val!');
  assert.throws(() => x('$loop1'), (e: unknown) => e instanceof ExpandError && /unreasonable macro call nesting: "loop\d"/.test(e.message));
});

test('syntax errors carry Postfix wording', () => {
  const cases: Array<[string, RegExp]> = [
    ['${v', /^truncated macro reference: "\$\{v"$/],
    ['a$', /^empty macro name: "a\$"$/],
    ['${}', /^empty macro name/],
    ['${v!x}', /^attribute name syntax error at: "\.\.\.v>>>!x"$/],
    ['${v?{x} junk}', /^":" expected at/],
    ['${v:{x}:{y}}', /^unexpected input at/],
    ['${{1} =~ {1} ? {a} : {b}}', /expected at/],
    ['${{1}==}', /"\{expression\}" expected at/],
    ['${{x} <level {3.6} ? {a} : {b}}', /^malformed compatibility level syntax: "x"$/],
  ];
  for (const [text, re] of cases) assert.throws(() => x(text), (e: unknown) => e instanceof ExpandError && re.test(e.message), text);
});

test('references() walks every branch without values', () => {
  assert.deepEqual(references('$a ${b?{$c}:{$d}} ${{$e} == {x} ? {$f} : {$g}} $$h'), ['a', 'b', 'c', 'd', 'e', 'f', 'g']);
});

test('${name{text}}: the domain_to_ascii function (Postfix 3.11), unknown functions refused', () => {
  const lookup = (n: string) => ({ mydomain: 'bücher.example', plain: 'example.com' })[n];
  assert.equal(expand('${domain_to_ascii{$mydomain}}', { lookup }), 'xn--bcher-kva.example');
  assert.equal(expand('.${domain_to_ascii{$plain}}', { lookup }), '.example.com');
  assert.throws(() => expand('${nosuch{$plain}}', { lookup }), /unknown function "nosuch"/);
});
