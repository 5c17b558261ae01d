// The flame graph's script. It runs inside its SVG: the whole document when the SVG is a file of
// its own, or one <svg> of a page (the report embeds each flame graph inline, its script and
// style carrying the page's CSP nonce). Every lookup is scoped to its own SVG, so several flame
// graphs share a page; only a standalone one takes the keyboard (Ctrl-F, F3, Escape).
(function () {
  'use strict';
  var me = document.currentScript;
  var svg = me && me.ownerSVGElement ? me.ownerSVGElement : document.documentElement;
  var standalone = svg === document.documentElement;
  function byId(id) { return svg.querySelector('#' + id); }
  var total = Number(svg.getAttribute('data-total'));
  var pad = Number(svg.getAttribute('data-pad'));
  var span = Number(svg.getAttribute('data-span'));
  var charPx = Number(svg.getAttribute('data-char-px'));
  var framesGroup = byId('frames');
  var details = byId('details');
  var matched = byId('matched');
  var resetBtn = byId('reset');
  var searchBtn = byId('search');
  var icBtn = byId('ic');
  var frames = [];
  var byElement = new Map();
  var root = null;
  var term = null;
  var ignoreCase = false;

  Array.prototype.forEach.call(framesGroup.querySelectorAll('g.f'), function (g) {
    var f = {
      g: g,
      x: Number(g.getAttribute('data-x')),
      w: Number(g.getAttribute('data-w')),
      d: Number(g.getAttribute('data-d')),
      name: g.getAttribute('data-n'),
      rect: g.querySelector('rect'),
      text: g.querySelector('text'),
      title: g.querySelector('title')
    };
    frames.push(f);
    byElement.set(g, f);
    if (f.d === 0) root = f;
  });

  // The label that fits a frame px wide; the renderer computes the same at first draw.
  function fit(name, px) {
    var n = Math.floor((px - 6) / charPx);
    if (n < 3) return '';
    if (name.length <= n) return name;
    return name.substring(0, n - 2) + '..';
  }

  function draw(f, px, pw) {
    f.rect.setAttribute('x', px.toFixed(2));
    f.rect.setAttribute('width', Math.max(pw - 0.5, 0.1).toFixed(2));
    f.text.setAttribute('x', (px + 3).toFixed(2));
    f.text.textContent = fit(f.name, pw);
  }

  // Shows z across the full width: its callees scaled with it, its callers full width and
  // dimmed, everything else hidden. Zooming to the root resets.
  function zoom(z) {
    var x0 = z.x;
    var w0 = z.w > 0 ? z.w : 1;
    frames.forEach(function (f) {
      var inside = f.d >= z.d && f.x >= x0 && f.x + f.w <= x0 + w0;
      var above = f.d < z.d && f.x <= x0 && f.x + f.w >= x0 + w0;
      f.g.classList.toggle('h', !(inside || above));
      f.g.classList.toggle('a', above);
      if (above) {
        draw(f, pad, span);
      } else if (inside) {
        draw(f, pad + (f.x - x0) / w0 * span, f.w / w0 * span);
      }
    });
    resetBtn.classList.toggle('h', z === root);
  }

  // Highlights frames whose name matches the regular expression t (null clears) and shows the
  // share of the total they cover, each stretch of the x axis counted once.
  function search(t) {
    var re = null;
    matched.textContent = '';
    if (t) {
      try {
        re = new RegExp(t, ignoreCase ? 'i' : '');
      } catch (e) {
        matched.textContent = 'Invalid regular expression: ' + e.message;
      }
    }
    term = re === null ? null : t;
    var spans = [];
    frames.forEach(function (f) {
      var m = re !== null && f !== root && re.test(f.name);
      f.g.classList.toggle('m', m);
      if (m) spans.push([f.x, f.x + f.w]);
    });
    spans.sort(function (a, b) { return a[0] - b[0]; });
    var covered = 0;
    var end = -Infinity;
    spans.forEach(function (s) {
      var from = Math.max(s[0], end);
      if (s[1] > from) {
        covered += s[1] - from;
        end = s[1];
      }
    });
    if (re !== null) {
      var pct = total > 0 ? 100 * covered / total : 0;
      matched.textContent = 'Matched: ' + pct.toFixed(2) + '% (' + spans.length + ' frames)';
    }
    searchBtn.textContent = re === null ? 'Search' : 'Reset Search';
    searchBtn.classList.toggle('on', re !== null);
  }

  function ask() {
    var t = window.prompt('Search frames (regular expression)', term === null ? '' : term);
    if (t !== null && t !== '') search(t);
  }

  function frameOf(node) {
    for (var n = node; n && n !== framesGroup; n = n.parentNode) {
      var f = byElement.get(n);
      if (f) return f;
    }
    return null;
  }

  function summary(f) {
    var lines = f.title.textContent.split('\n');
    return lines.length > 1 ? lines[0] + ' \u2014 ' + lines[1] : lines[0];
  }

  framesGroup.addEventListener('click', function (e) {
    var f = frameOf(e.target);
    if (f) zoom(f);
  });
  framesGroup.addEventListener('mouseover', function (e) {
    var f = frameOf(e.target);
    details.textContent = f ? summary(f) : ' ';
  });
  framesGroup.addEventListener('mouseout', function () { details.textContent = ' '; });
  resetBtn.addEventListener('click', function () { zoom(root); });
  searchBtn.addEventListener('click', function () {
    if (term !== null) {
      search(null);
    } else {
      ask();
    }
  });
  icBtn.addEventListener('click', function () {
    ignoreCase = !ignoreCase;
    icBtn.classList.toggle('on', ignoreCase);
    if (term !== null) search(term);
  });
  if (standalone) document.addEventListener('keydown', function (e) {
    if (e.key === 'F3' || ((e.ctrlKey || e.metaKey) && (e.key === 'f' || e.key === 'F'))) {
      e.preventDefault();
      ask();
    } else if (e.key === 'Escape') {
      search(null);
      zoom(root);
    }
  });

  if (root !== null) zoom(root);
})();
