// Prints the code point range tables of src/data/unicode_classes.cpp: \p{L}, \p{N} and \s exactly as
// node's regex engine (the one the gpt-3-encoder reference uses) classifies them.
// Usage: node scripts/gen-unicode-classes.js   (paste the output into src/data/unicode_classes.cpp)
const ranges = (re) => {
  const r = [];
  let s = -1;
  for (let c = 0; c <= 0x110000; c++) {
    const m = c < 0x110000 && re.test(String.fromCodePoint(c));
    if (m && s < 0) s = c;
    if (!m && s >= 0) { r.push([s, c - 1]); s = -1; }
  }
  return r;
};
const hex = (x) => '0x' + x.toString(16).toUpperCase().padStart(4, '0');
const table = (name, r) => {
  const items = r.map(([a, b]) => `{${hex(a)}, ${hex(b)}}`);
  const lines = [];
  for (let i = 0; i < items.length; i += 6) lines.push('    ' + items.slice(i, i + 6).join(', ') + ',');
  return `constexpr CodeRange ${name}[] = {\n${lines.join('\n')}\n};\n`;
};
console.log(`// Unicode ${process.versions.unicode} (node ${process.versions.node})\n`);
console.log(table('kLetters', ranges(/^\p{L}$/u)) + '\n' + table('kNumbers', ranges(/^\p{N}$/u)) + '\n' +
            table('kSpaces', ranges(/^\s$/u)));
