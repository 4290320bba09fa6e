/**
 * How deep the arrays and objects of a JSON text nest, counted without parsing
 * it and without recursion: brackets outside strings, one pass. Run before
 * JSON.parse, so a body nested 200,000 deep is refused before anything walks
 * it (validation, withoutNulls, GraphQL's coercion all recurse). Stops as soon
 * as `max` is passed; a text that is not JSON is left to JSON.parse to refuse.
 */
export function jsonDepthExceeds(text: string, max: number): boolean {
  let depth = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (inString) {
      if (c === 0x5c /* \ */) i++;
      else if (c === 0x22 /* " */) inString = false;
    } else if (c === 0x22) {
      inString = true;
    } else if (c === 0x5b /* [ */ || c === 0x7b /* { */) {
      if (++depth > max) return true;
    } else if (c === 0x5d /* ] */ || c === 0x7d /* } */) {
      depth--;
    }
  }
  return false;
}
