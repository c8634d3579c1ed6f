// DOM helpers the pages share.

// create makes an element with a class name.
export function create(tag, className) {
  const e = document.createElement(tag);
  e.className = className;
  return e;
}
