'use strict';

/**
 * Turn a title into a URL slug: "Crème Brûlée, Again!" -> "creme-brulee-again".
 *
 * Slugs contain only lower-case ASCII letters and digits, joined by `separator` (default "-"),
 * with no separator at either end and never two in a row.
 */
function slugify(text, options = {}) {
  const separator = options.separator ?? '-';
  return String(text)
    .toLowerCase()
    .replace(/[^a-z0-9]/g, separator);
}

module.exports = { slugify };
