// svgcanvas ships as CommonJS; give it an `exports` object to fill in a browser page.
window.exports = window.exports || {};
