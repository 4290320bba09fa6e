/**
 * A small YAML emitter for the generated documents (openapi/asyncapi.yaml):
 * JSON values only, block style, two spaces, keys in insertion order, so the
 * same value always gives the same text. A string is written plain when no
 * YAML reader could take it for anything else, as a literal block (`|-`)
 * when it is long or has several lines, else double-quoted (JSON's escapes,
 * which YAML reads the same).
 */
export function toYaml(value: unknown): string {
  const r = render(value, 0);
  return `${r.block ? r.lines.join('\n') : r.head}\n`;
}

/**
 * How a value is written: a non-empty mapping or sequence is `block` lines
 * at `indent`; anything else is a `head` that follows `key: ` or `- `, and
 * for a literal block, its lines after.
 */
type Rendered = { block: true; lines: string[] } | { block: false; head: string; lines: string[] };

function render(value: unknown, indent: number): Rendered {
  const pad = ' '.repeat(indent);
  if (value === null) return scalar('null');
  if (typeof value === 'boolean') return scalar(String(value));
  if (typeof value === 'number') {
    if (!Number.isFinite(value)) throw new TypeError(`YAML: ${value} is no JSON number`);
    return scalar(String(value));
  }
  if (typeof value === 'string') return text(value, indent);
  if (Array.isArray(value)) {
    if (value.length === 0) return scalar('[]');
    const lines: string[] = [];
    for (const item of value as unknown[]) {
      const r = render(item, indent + 2);
      if (r.block) {
        // The item's first line, at indent + 2, takes the dash in its indentation.
        lines.push(`${pad}- ${r.lines[0]!.slice(indent + 2)}`, ...r.lines.slice(1));
      } else {
        lines.push(`${pad}- ${r.head}`, ...r.lines);
      }
    }
    return { block: true, lines };
  }
  if (typeof value === 'object') {
    const entries = Object.entries(value as Record<string, unknown>).filter(
      ([, v]) => v !== undefined,
    );
    if (entries.length === 0) return scalar('{}');
    const lines: string[] = [];
    for (const [key, v] of entries) {
      const r = render(v, indent + 2);
      if (r.block) lines.push(`${pad}${yamlKey(key)}:`, ...r.lines);
      else lines.push(`${pad}${yamlKey(key)}: ${r.head}`, ...r.lines);
    }
    return { block: true, lines };
  }
  throw new TypeError(`YAML: a ${typeof value} is no JSON value`);
}

function scalar(head: string): Rendered {
  return { block: false, head, lines: [] };
}

/** Words YAML 1.1 or 1.2 readers take for booleans or null. */
const RESERVED = /^(?:true|false|null|yes|no|on|off|y|n|~)$/i;
/**
 * A plain scalar: begins with a letter, `_`, `$` or `/`; holds no character
 * YAML gives a meaning to inside one (`:`, `#`, quotes, brackets, braces,
 * backslashes), no control character, and does not end with a space.
 */
const PLAIN_CHARS = "A-Za-z0-9_$/.,;()+\\-*=<>?!&%@^~|`'\\u00a0-\\u2027\\u202a-\\ufefe";
const PLAIN = new RegExp(`^[A-Za-z_$/](?:[ ${PLAIN_CHARS}]*[${PLAIN_CHARS}])?$`, 'u');
const PLAIN_KEY = /^[A-Za-z_$][A-Za-z0-9_$.-]*$/;
/** Whether `s` holds what a literal block cannot hold as is: a control character but the line feed. */
function hasControl(s: string): boolean {
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if ((c < 0x20 && c !== 0x0a) || (c >= 0x7f && c <= 0x9f)) return true;
    if (c === 0x2028 || c === 0x2029 || c === 0xfeff) return true;
  }
  return false;
}
/** Longer strings that cannot be plain read better as a block. */
const BLOCK_FROM = 60;

function text(s: string, indent: number): Rendered {
  const multiline = s.includes('\n');
  if (!multiline && PLAIN.test(s) && !RESERVED.test(s)) return scalar(s);
  const lines = s.split('\n');
  const blockable =
    !hasControl(s) &&
    !s.startsWith(' ') &&
    !s.startsWith('\n') &&
    !s.endsWith('\n') &&
    lines.every((line) => !line.endsWith(' '));
  if (blockable && (multiline || s.length > BLOCK_FROM)) {
    const pad = ' '.repeat(indent);
    return { block: false, head: '|-', lines: lines.map((l) => (l === '' ? '' : pad + l)) };
  }
  return scalar(quote(s));
}

function yamlKey(key: string): string {
  return PLAIN_KEY.test(key) && !RESERVED.test(key) ? key : quote(key);
}

/** Double-quoted: JSON's escapes, and YAML's non-printable characters escaped too. */
function quote(s: string): string {
  return JSON.stringify(s).replace(
    /[\u007f-\u009f\u2028\u2029\ufeff]/gu,
    (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`,
  );
}
