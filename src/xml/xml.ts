/**
 * The one XML toolkit of the gateway: a real parser for what libvirt returns
 * and a builder for what we send. Never regular expressions over XML, never
 * XML assembled from strings.
 */
import {
  DOMImplementation,
  DOMParser,
  XMLSerializer,
  type Document,
  type Element,
  type Node,
} from '@xmldom/xmldom';

export class XmlParseError extends Error {
  override readonly name = 'XmlParseError';
}

/** Parses a document; throws XmlParseError for anything that is not well-formed XML. */
export function parseXml(xml: string): Element {
  let failure: string | null = null;
  let root: Element | null = null;
  try {
    const doc = new DOMParser({
      onError: (level, message) => {
        if (level !== 'warning' && failure === null) failure = message;
      },
    }).parseFromString(xml, 'text/xml');
    root = doc.documentElement;
  } catch (err) {
    failure = (err as Error).message;
  }
  if (failure !== null || !root)
    throw new XmlParseError(`malformed XML: ${failure ?? 'no root element'}`);
  if (depthExceeds(root, MAX_XML_DEPTH)) {
    throw new XmlParseError(`XML nested deeper than ${MAX_XML_DEPTH} elements`);
  }
  return root;
}

/**
 * Deeper than any libvirt document (a domain's is under 10): what walks a
 * parsed document (the serializer, too) recurses, so a deeper one is refused.
 */
export const MAX_XML_DEPTH = 100;

/** Whether elements nest deeper than `max` under `root`; without recursion. */
function depthExceeds(root: Element, max: number): boolean {
  const stack: Array<[Node, number]> = [[root, 1]];
  while (stack.length > 0) {
    const [node, depth] = stack.pop()!;
    if (depth > max) return true;
    for (let n = node.firstChild; n; n = n.nextSibling) {
      if (n.nodeType === 1) stack.push([n, depth + 1]);
    }
  }
  return false;
}

/** Direct children of `e` named `name`. */
export function children(e: Element, name: string): Element[] {
  const out: Element[] = [];
  for (let n = e.firstChild; n; n = n.nextSibling) {
    if (n.nodeType === 1 && (n as Element).tagName === name) out.push(n as Element);
  }
  return out;
}

/** The first direct child named `name`, or null. */
export function child(e: Element | null, name: string): Element | null {
  if (!e) return null;
  for (let n = e.firstChild; n; n = n.nextSibling) {
    if (n.nodeType === 1 && (n as Element).tagName === name) return n as Element;
  }
  return null;
}

/** Follows a path of child names: `path(domain, 'os', 'type')`. */
export function path(e: Element | null, ...names: string[]): Element | null {
  let cur = e;
  for (const name of names) cur = child(cur, name);
  return cur;
}

export function attr(e: Element | null, name: string): string | null {
  if (!e || !e.hasAttribute(name)) return null;
  return e.getAttribute(name);
}

export function text(e: Element | null): string | null {
  if (!e) return null;
  const t = e.textContent;
  return t === null ? null : t.trim();
}

export function intAttr(e: Element | null, name: string): number | null {
  const v = attr(e, name);
  if (v === null || !/^-?\d+$/.test(v)) return null;
  return Number(v);
}

export function intText(e: Element | null): number | null {
  const t = text(e);
  if (t === null || !/^-?\d+$/.test(t)) return null;
  return Number(t);
}

const UNIT_FACTORS: Readonly<Record<string, number>> = {
  b: 1,
  bytes: 1,
  k: 1024,
  kib: 1024,
  kb: 1000,
  m: 1024 ** 2,
  mib: 1024 ** 2,
  mb: 1000 ** 2,
  g: 1024 ** 3,
  gib: 1024 ** 3,
  gb: 1000 ** 3,
  t: 1024 ** 4,
  tib: 1024 ** 4,
  tb: 1000 ** 4,
};

/**
 * A libvirt scaled integer (`<memory unit='KiB'>65536</memory>`, `<capacity unit='bytes'>`)
 * in bytes. `defaultUnit` applies when the element has no unit attribute.
 */
export function bytesOf(e: Element | null, defaultUnit: string): number | null {
  const value = intText(e);
  if (value === null) return null;
  const unit = (attr(e, 'unit') ?? defaultUnit).toLowerCase();
  const factor = UNIT_FACTORS[unit];
  return factor === undefined ? null : value * factor;
}

/** Builds an XML document from nested plain data, escaping everything. */
export interface XmlNode {
  name: string;
  attrs?: Readonly<Record<string, string | number | undefined>>;
  text?: string | number;
  children?: readonly (XmlNode | null | undefined | false)[];
}

export function buildXml(root: XmlNode): string {
  const doc = new DOMImplementation().createDocument(null, root.name, null);
  fill(doc, doc.documentElement!, root);
  return new XMLSerializer().serializeToString(doc);
}

/**
 * Adds `node` (as buildXml would build it) as the last child of `parent`, an
 * element of a parsed document: for the rare edit of XML a caller gave (a
 * missing `<uuid>` added to a raw domain definition).
 */
export function appendXml(parent: Element, node: XmlNode): void {
  const doc = parent.ownerDocument;
  if (!doc) throw new Error('appendXml: the element belongs to no document');
  const e = doc.createElement(node.name);
  fill(doc, e, node);
  parent.appendChild(e);
}

/** Serializes a parsed (and possibly edited) element back to XML. */
export function serializeXml(e: Element): string {
  return new XMLSerializer().serializeToString(e);
}

function fill(doc: Document, e: Element, node: XmlNode): void {
  for (const [k, v] of Object.entries(node.attrs ?? {}))
    if (v !== undefined) e.setAttribute(k, String(v));
  if (node.text !== undefined) e.appendChild(doc.createTextNode(String(node.text)));
  for (const c of node.children ?? []) {
    if (!c) continue;
    const ce = doc.createElement(c.name);
    fill(doc, ce, c);
    e.appendChild(ce);
  }
}
