// Runs the flame graph SVG's own script in node against a minimal DOM built from the SVG, then
// replays user actions and prints the resulting state as JSON, so flamegraph_svg_test.cpp can
// check zoom and search without a browser.
//
//   node svg_script_harness.js FILE.svg '[{"click": "name"}, {"search": "re"}, {"key": "Escape"}]'
//
// The DOM covers what the script uses: querySelector(All) by tag, class or id, getAttribute,
// setAttribute, classList, textContent, parentNode, addEventListener and window.prompt. The SVG
// is parsed with regular expressions that know its layout; xmllint checks its well-formedness
// separately.
'use strict';
const fs = require('fs');

const [svgPath, actionsJson] = process.argv.slice(2);
const svgText = fs.readFileSync(svgPath, 'utf8');
const actions = JSON.parse(actionsJson || '[]');

function unescapeXml(s) {
  return s.replace(/&(lt|gt|quot|#39|amp);/g, (_, e) =>
    ({lt: '<', gt: '>', quot: '"', '#39': "'", amp: '&'})[e]);
}

function attributes(tag) {
  const out = new Map();
  const re = /([\w:-]+)="([^"]*)"/g;
  let m;
  while ((m = re.exec(tag)) !== null) out.set(m[1], unescapeXml(m[2]));
  return out;
}

class Element {
  constructor(tag, attrs, text) {
    this.tagName = tag;
    this.attrs = attrs || new Map();
    this.textContent = text === undefined ? '' : text;
    this.children = [];
    this.parentNode = null;
    this.listeners = {};
    const el = this;
    this.classList = {
      contains(c) { return el.classes().includes(c); },
      toggle(c, force) {
        const has = el.classes().includes(c);
        const want = force === undefined ? !has : !!force;
        if (want && !has) el.attrs.set('class', el.classes().concat([c]).join(' '));
        if (!want && has) el.attrs.set('class', el.classes().filter((x) => x !== c).join(' '));
        return want;
      },
    };
  }
  classes() { return (this.attrs.get('class') || '').split(/\s+/).filter((x) => x); }
  getAttribute(n) { return this.attrs.has(n) ? this.attrs.get(n) : null; }
  setAttribute(n, v) { this.attrs.set(n, String(v)); }
  append(child) { child.parentNode = this; this.children.push(child); return child; }
  matches(sel) {
    if (sel.startsWith('#')) return this.getAttribute('id') === sel.slice(1);
    const [tag, cls] = sel.split('.');
    return (tag === '' || tag === this.tagName) && (cls === undefined || this.classList.contains(cls));
  }
  querySelectorAll(sel) {
    const out = [];
    const walk = (e) => e.children.forEach((c) => { if (c.matches(sel)) out.push(c); walk(c); });
    walk(this);
    return out;
  }
  querySelector(sel) { return this.querySelectorAll(sel)[0] || null; }
  addEventListener(type, fn) { (this.listeners[type] = this.listeners[type] || []).push(fn); }
  dispatch(type, event) { (this.listeners[type] || []).forEach((fn) => fn(event)); }
}

const svgOpen = /<svg\b[^>]*>/.exec(svgText);
if (!svgOpen) throw new Error('no <svg> element');
const svg = new Element('svg', attributes(svgOpen[0]));
const byId = new Map();
// Top-level <text id=...> elements: title, buttons, details, matched.
for (const m of svgText.matchAll(/<text ([^>]*\bid="[^"]*"[^>]*)>([^<]*)/g)) {
  const e = svg.append(new Element('text', attributes(m[1]), unescapeXml(m[2])));
  byId.set(e.getAttribute('id'), e);
}
const framesGroup = svg.append(new Element('g', new Map([['id', 'frames']])));
byId.set('frames', framesGroup);
const frameRe =
  /<g (class="f[^"]*"[^>]*)><title>([^<]*)<\/title><rect ([^>]*)\/><text ([^>]*)>([^<]*)<\/text><\/g>/g;
for (const m of svgText.matchAll(frameRe)) {
  const g = framesGroup.append(new Element('g', attributes(m[1])));
  g.append(new Element('title', new Map(), unescapeXml(m[2])));
  g.append(new Element('rect', attributes(m[3])));
  g.append(new Element('text', attributes(m[4]), unescapeXml(m[5])));
}

const scripts = [...svgText.matchAll(/<script[^>]*><!\[CDATA\[([\s\S]*?)\]\]><\/script>/g)];
if (scripts.length !== 1) throw new Error(`expected one script, found ${scripts.length}`);

const prompts = [];
const document = {
  documentElement: svg,
  getElementById: (id) => byId.get(id) || null,
  listeners: {},
  addEventListener(type, fn) { (this.listeners[type] = this.listeners[type] || []).push(fn); },
};
const window = { prompt: () => (prompts.length ? prompts.shift() : null) };
new Function('document', 'window', scripts[0][1])(document, window);

const frames = framesGroup.children;
function frameNamed(name) {
  const f = frames.find((g) => g.getAttribute('data-n') === name);
  if (!f) throw new Error(`no frame named ${name}`);
  return f;
}

for (const a of actions) {
  if ('click' in a) {
    framesGroup.dispatch('click', { target: frameNamed(a.click).querySelector('rect') });
  } else if ('search' in a) {
    prompts.push(a.search);
    const btn = byId.get('search');
    if (btn.textContent !== 'Search') btn.dispatch('click', {});  // clears the last search
    btn.dispatch('click', {});
  } else if ('button' in a) {
    byId.get(a.button).dispatch('click', {});
  } else if ('key' in a) {
    (document.listeners.keydown || []).forEach((fn) =>
      fn({ key: a.key, ctrlKey: !!a.ctrl, metaKey: false, preventDefault() {} }));
  } else if ('hover' in a) {
    framesGroup.dispatch('mouseover', { target: frameNamed(a.hover).querySelector('rect') });
  }
}

const state = {
  matched: byId.get('matched').textContent,
  details: byId.get('details').textContent,
  reset_hidden: byId.get('reset').classList.contains('h'),
  search_label: byId.get('search').textContent,
  frames: frames.map((g) => ({
    name: g.getAttribute('data-n'),
    depth: Number(g.getAttribute('data-d')),
    hidden: g.classList.contains('h'),
    ancestor: g.classList.contains('a'),
    matched: g.classList.contains('m'),
    x: Number(g.querySelector('rect').getAttribute('x')),
    width: Number(g.querySelector('rect').getAttribute('width')),
    label: g.querySelector('text').textContent,
  })),
};
process.stdout.write(JSON.stringify(state));
