/**
 * The responses check (issue #13): every HTTP response the test apps sent
 * (recorded by test/support/secrets.ts's recordResponses) against the
 * OpenAPI document. Each record is matched to its operation (path template
 * and method), to the operation's declared response (its status, else
 * `4XX`/`5XX`, else `default`), to a declared media type, and its JSON body
 * (application/json, application/problem+json) is validated with Ajv as
 * JSON Schema 2020-12, OpenAPI 3.1's dialect. Declared headers it sends are
 * validated too.
 *
 * What the document does not describe is handled by explicit rules, never
 * by skipping what does not match:
 * - `graphql`: /graphql, whose contract is openapi/schema.graphql;
 * - `docs`: the documentation pages and files under /docs (their problems
 *   still validate as ProblemDetails);
 * - `wrong-method`: a documented path with a method it does not take must
 *   be a 405 problem with an Allow header;
 * - `cors-preflight`: OPTIONS on a documented path the CORS layer answered
 *   (204 with the origin allowed) is a browser's preflight, no operation;
 * - `unknown-action`: POST …/domains/{d}/actions/{x} or …/pools/{p}/actions/{x}
 *   for an action no operation describes must be a 400 problem (the route
 *   refuses it naming `action`);
 * - `unknown-path`: any other path must be a 404 problem;
 * - `partial`: a JSON body the client stopped reading, or longer than the
 *   recorder keeps, is no JSON to validate (its status and media type are).
 * An undocumented status of a documented operation, a media type it does
 * not declare, a body where none is declared or a body that fails its
 * schema is a mismatch.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import Ajv2020Module from 'ajv/dist/2020.js';
import addFormatsModule from 'ajv-formats';

// CommonJS modules: their classes are their default exports' `default`.
const Ajv2020 = Ajv2020Module.default;
const addFormats = addFormatsModule.default;
type Ajv = InstanceType<typeof Ajv2020>;

type Json = Record<string, unknown>;

/** One recorded response, as recordResponses writes it. */
/** A domain's or pool's action the document has no operation for (the route refuses it: 400). */
const UNKNOWN_ACTION = /^\/v1\/hosts\/[^/]+\/(domains|pools)\/[^/]+\/actions\/[^/]+$/;

/** A CORS preflight the CORS layer answered: 204 with the origin allowed. */
function isCorsPreflight(record: ResponseRecord): boolean {
  return record.status === 204 && typeof record.headers['access-control-allow-origin'] === 'string';
}

export interface ResponseRecord {
  method: string;
  /** The request's path, without its query, as sent (percent-encoded). */
  path: string;
  status: number;
  headers: Record<string, unknown>;
  body: string;
  /** The body was longer than the recorder keeps. */
  truncated?: boolean;
  /** false: the connection closed before the response ended. */
  finished?: boolean;
  /** The test file that received it. */
  file?: string;
}

export interface Mismatch {
  /** `GET /v1/hosts/{host}` (the operation) or the rule and the request's path. */
  operation: string;
  status: number;
  file: string | undefined;
  /** Where in the run directory: `responses-<pid>.jsonl:<line>`. */
  where: string;
  errors: string[];
}

export interface CheckResult {
  read: number;
  /** JSON bodies validated against their declared schema. */
  validated: number;
  /** Responses without a JSON body whose status, media type and headers were checked (204, HEAD, SSE, XML). */
  checked: number;
  /** Responses left unvalidated, by rule. */
  skipped: Record<string, number>;
  /** Validated and checked responses, by rule (`operation`: a documented operation). */
  byRule: Record<string, number>;
  /** Documented operations no response was recorded for. */
  unexercised: string[];
  mismatches: Mismatch[];
}

const METHODS = ['get', 'put', 'post', 'delete', 'options', 'head', 'patch', 'trace'];
const DOC_ID = 'openapi.json';
const PROBLEM_SCHEMA = '#/components/schemas/ProblemDetails';

interface Template {
  path: string;
  segments: string[];
  literals: number;
}

function isObject(value: unknown): value is Json {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** A JSON pointer's segment, escaped and URI-encoded (for a `$ref` fragment). */
function pointerSegment(key: string): string {
  return encodeURIComponent(key.replaceAll('~', '~0').replaceAll('/', '~1'));
}

function decodeSegment(segment: string): string {
  try {
    return decodeURIComponent(segment);
  } catch {
    return segment;
  }
}

/** A media type without its parameters, lower-cased (`application/json; charset=utf-8` → `application/json`). */
export function mediaType(contentType: unknown): string | undefined {
  if (typeof contentType !== 'string') return undefined;
  return contentType.split(';')[0]?.trim().toLowerCase() || undefined;
}

function isJson(media: string | undefined): boolean {
  return media === 'application/json' || (media?.endsWith('+json') ?? false);
}

/** Does the declared media range (`application/json`, `text/*`, `*\/*`) cover `media`? */
function covers(range: string, media: string): boolean {
  const r = range.toLowerCase();
  if (r === '*/*' || r === media) return true;
  return r.endsWith('/*') && media.startsWith(r.slice(0, -1));
}

export class ResponseChecker {
  private readonly ajv: Ajv;
  private readonly templates: Template[];
  private readonly compiled = new Map<string, ReturnType<Ajv['compile']>>();

  constructor(private readonly document: Json) {
    this.ajv = new Ajv2020({
      strict: true,
      strictTypes: false,
      allErrors: true,
      keywords: [
        // OpenAPI's own schema keywords, which validate nothing.
        'example',
        'discriminator',
        'xml',
        'externalDocs',
        // The document's top level, which is the root of the schema resource.
        ...Object.keys(document).filter((k) => k !== '$id'),
      ],
    });
    addFormats(this.ajv);
    // The whole document as one schema resource: components refer to each other by `#/components/…`.
    this.ajv.addSchema({ ...document, $id: DOC_ID }, DOC_ID, undefined, false);
    const paths = isObject(document.paths) ? document.paths : {};
    this.templates = Object.keys(paths)
      .map((path) => {
        const segments = path.split('/');
        return { path, segments, literals: segments.filter((s) => !s.startsWith('{')).length };
      })
      // The most literal first: /v1/tokens/self before /v1/tokens/{id}.
      .sort((a, b) => b.literals - a.literals);
  }

  /** The template `path` (as sent) is an instance of, or undefined. */
  matchPath(path: string): string | undefined {
    const segments = path.split('/').map(decodeSegment);
    return this.templates.find(
      (t) =>
        t.segments.length === segments.length &&
        t.segments.every((s, i) => {
          const given = segments[i] ?? '';
          return s.startsWith('{') && s.endsWith('}') ? given !== '' : s === given;
        }),
    )?.path;
  }

  check(records: Iterable<{ record: ResponseRecord; where: string }>): CheckResult {
    const result: CheckResult = {
      read: 0,
      validated: 0,
      checked: 0,
      skipped: {},
      byRule: {},
      unexercised: [],
      mismatches: [],
    };
    const exercised = new Set<string>();
    const count = (table: Record<string, number>, key: string): void => {
      table[key] = (table[key] ?? 0) + 1;
    };
    for (const { record, where } of records) {
      result.read++;
      const outcome = this.checkOne(record);
      if (outcome.operation !== undefined) exercised.add(outcome.operation);
      if (outcome.errors.length > 0) {
        result.mismatches.push({
          operation: outcome.label,
          status: record.status,
          file: record.file,
          where,
          errors: outcome.errors,
        });
      } else if (outcome.kind === 'skipped') {
        count(result.skipped, outcome.rule);
      } else {
        result[outcome.kind]++;
        count(result.byRule, outcome.rule);
      }
    }
    const paths = isObject(this.document.paths) ? this.document.paths : {};
    for (const [path, item] of Object.entries(paths)) {
      if (!isObject(item)) continue;
      for (const method of METHODS) {
        const label = `${method.toUpperCase()} ${path}`;
        if (isObject(item[method]) && !exercised.has(label)) result.unexercised.push(label);
      }
    }
    return result;
  }

  private checkOne(record: ResponseRecord): {
    kind: 'validated' | 'checked' | 'skipped';
    rule: string;
    label: string;
    operation?: string;
    errors: string[];
  } {
    const method = record.method.toUpperCase();
    const segments = record.path.split('/').map(decodeSegment);
    const template = this.matchPath(record.path);
    if (template === undefined) {
      if (segments[1] === 'graphql' && segments.length === 2) {
        return { kind: 'skipped', rule: 'graphql', label: `graphql ${record.path}`, errors: [] };
      }
      if (segments[1] === 'docs') {
        // The documentation's pages and files are no API operation; its problems are problems.
        const label = `docs ${method} ${record.path}`;
        if (mediaType(record.headers['content-type']) === 'application/problem+json') {
          return { ...this.problem(record, 'docs'), label };
        }
        return { kind: 'skipped', rule: 'docs', label, errors: [] };
      }
      if (method === 'POST' && UNKNOWN_ACTION.test(record.path)) {
        // Each action is its own documented operation; any other is refused naming `action`.
        const label = `unknown-action ${method} ${record.path}`;
        const outcome = { ...this.problem(record, 'unknown-action'), label };
        if (record.status !== 400) {
          outcome.errors.unshift(
            `an action no operation describes answered ${record.status}, not 400`,
          );
        }
        return outcome;
      }
      const label = `unknown-path ${method} ${record.path}`;
      const outcome = { ...this.problem(record, 'unknown-path'), label };
      if (record.status !== 404) {
        outcome.errors.unshift(
          `a path the document does not describe answered ${record.status}, not 404`,
        );
      }
      return outcome;
    }
    const item = (this.document.paths as Json)[template] as Json;
    let operationMethod = method.toLowerCase();
    // HEAD is GET without a body (Fastify answers it for every GET route).
    if (operationMethod === 'head' && !isObject(item.head) && isObject(item.get)) {
      operationMethod = 'get';
    }
    const operation = item[operationMethod];
    if (!isObject(operation) && method === 'OPTIONS' && isCorsPreflight(record)) {
      // A browser's CORS preflight: answered by the CORS layer for every path, not an operation.
      return {
        kind: 'checked',
        rule: 'cors-preflight',
        label: `cors-preflight ${template}`,
        errors: [],
      };
    }
    if (!isObject(operation)) {
      const label = `wrong-method ${method} ${template}`;
      const outcome = { ...this.problem(record, 'wrong-method'), label };
      if (record.status !== 405) {
        outcome.errors.unshift(
          `${method} on ${template}, which does not take it, answered ${record.status}, not 405`,
        );
      }
      const allow = record.headers.allow;
      const declared = METHODS.filter((m) => isObject(item[m])).map((m) => m.toUpperCase());
      if (typeof allow !== 'string') {
        outcome.errors.push('a 405 without an Allow header');
      } else {
        const allowed = allow.split(',').map((m) => m.trim().toUpperCase());
        const missing = declared.filter((m) => !allowed.includes(m));
        if (missing.length > 0) outcome.errors.push(`Allow '${allow}' lacks ${missing.join(', ')}`);
      }
      return outcome;
    }
    const label = `${operationMethod.toUpperCase()} ${template}`;
    const outcome = {
      kind: 'checked' as 'validated' | 'checked' | 'skipped',
      rule: 'operation',
      label,
      operation: label,
      errors: [] as string[],
    };
    const responses = isObject(operation.responses) ? operation.responses : {};
    const status = String(record.status);
    const key = [status, `${status[0]}XX`, 'default'].find((k) => k in responses);
    if (key === undefined) {
      outcome.errors.push(
        `status ${status} is not declared (declared: ${Object.keys(responses).join(', ')})`,
      );
      return outcome;
    }
    const pointer = ['paths', template, operationMethod, 'responses', key];
    const response = this.resolve(responses[key], pointer);
    outcome.errors.push(...this.headerErrors(record, response.value, response.pointer));
    const media = mediaType(record.headers['content-type']);
    const content = isObject(response.value.content) ? response.value.content : undefined;
    const hasBody = record.body.length > 0;
    if (content === undefined || Object.keys(content).length === 0) {
      if (hasBody)
        outcome.errors.push(`a ${media ?? 'untyped'} body where ${status} declares none`);
      return outcome;
    }
    if (method === 'HEAD' || (!hasBody && record.finished === false)) return outcome;
    const range =
      media === undefined ? undefined : Object.keys(content).find((r) => covers(r, media));
    if (range === undefined) {
      outcome.errors.push(
        `media type ${media ?? '(none)'} is not declared (declared: ${Object.keys(content).join(', ')})`,
      );
      return outcome;
    }
    if (!isJson(media)) return outcome;
    if (record.truncated === true || record.finished === false) {
      return { ...outcome, kind: 'skipped', rule: 'partial' };
    }
    outcome.errors.push(
      ...this.validate(
        `${DOC_ID}#/${[...response.pointer, 'content', range, 'schema'].map(pointerSegment).join('/')}`,
        record.body,
        // A problem's `status` is the answer's own.
        media === 'application/problem+json' ? record.status : undefined,
      ),
    );
    outcome.kind = 'validated';
    return outcome;
  }

  /** A response under a rule: a problem, whose body must validate as ProblemDetails. */
  private problem(
    record: ResponseRecord,
    rule: string,
  ): {
    kind: 'validated' | 'checked';
    rule: string;
    errors: string[];
  } {
    const media = mediaType(record.headers['content-type']);
    if (record.method.toUpperCase() === 'HEAD' && record.body === '') {
      return {
        kind: 'checked',
        rule,
        errors:
          media === 'application/problem+json' ? [] : [`a HEAD problem typed ${media ?? '(none)'}`],
      };
    }
    if (media !== 'application/problem+json') {
      return {
        kind: 'validated',
        rule,
        errors: [`a ${media ?? 'untyped'} answer, not application/problem+json`],
      };
    }
    return {
      kind: 'validated',
      rule,
      errors: this.validate(`${DOC_ID}${PROBLEM_SCHEMA}`, record.body, record.status),
    };
  }

  /** Follows a `$ref` (components/responses) to the response object and its pointer. */
  private resolve(node: unknown, pointer: string[]): { value: Json; pointer: string[] } {
    let value = node;
    let at = pointer;
    for (let hops = 0; isObject(value) && typeof value.$ref === 'string' && hops < 10; hops++) {
      const ref = value.$ref;
      if (!ref.startsWith('#/')) throw new Error(`only local references: ${ref}`);
      at = ref
        .slice(2)
        .split('/')
        .map((s) => s.replaceAll('~1', '/').replaceAll('~0', '~'));
      value = at.reduce<unknown>((n, k) => (isObject(n) ? n[k] : undefined), this.document);
    }
    return { value: isObject(value) ? value : {}, pointer: at };
  }

  /** Each declared header the response sent, validated against its schema. */
  private headerErrors(record: ResponseRecord, response: Json, pointer: string[]): string[] {
    const errors: string[] = [];
    const headers = isObject(response.headers) ? response.headers : {};
    for (const [name, declared] of Object.entries(headers)) {
      const sent = record.headers[name.toLowerCase()];
      const header = this.resolve(declared, [...pointer, 'headers', name]);
      if (sent === undefined) {
        if (header.value.required === true) errors.push(`header ${name} is required but missing`);
        continue;
      }
      const schema = header.value.schema;
      if (!isObject(schema)) continue;
      const text = Array.isArray(sent) ? sent.join(', ') : String(sent);
      // A header is text: an integer header's value is its decimal digits.
      const value =
        schema.type === 'integer' || schema.type === 'number'
          ? /^-?\d+(\.\d+)?$/.test(text)
            ? Number(text)
            : text
          : text;
      const ref = `${DOC_ID}#/${[...header.pointer, 'schema'].map(pointerSegment).join('/')}`;
      errors.push(...this.validateValue(ref, value, `header ${name}`));
    }
    return errors;
  }

  private validate(ref: string, body: string, problemStatus?: number): string[] {
    let value: unknown;
    try {
      value = JSON.parse(body);
    } catch {
      return [`the body is no JSON: ${body.slice(0, 80)}`];
    }
    const errors = this.validateValue(ref, value, 'body');
    if (problemStatus !== undefined && isObject(value) && value.status !== problemStatus) {
      errors.push(
        `the problem's status ${String(value.status)} is not the answer's ${problemStatus}`,
      );
    }
    return errors;
  }

  private validateValue(ref: string, value: unknown, what: string): string[] {
    let validate = this.compiled.get(ref);
    if (validate === undefined) {
      validate = this.ajv.compile({ $ref: ref });
      this.compiled.set(ref, validate);
    }
    if (validate(value)) return [];
    return (validate.errors ?? []).map((e) => {
      const params =
        e.keyword === 'additionalProperties'
          ? ` '${String((e.params as Json).additionalProperty)}'`
          : e.keyword === 'enum'
            ? ` ${JSON.stringify((e.params as Json).allowedValues)}`
            : '';
      const at = e.instancePath === '' ? '' : e.instancePath;
      return `${what}${at} ${e.message ?? e.keyword}${params} (${schemaPath(e.schemaPath)}; got ${show(valueAt(value, e.instancePath))})`;
    });
  }
}

function schemaPath(path: string): string {
  return decodeURIComponent(path).replace(/^openapi\.json#\//, '#/');
}

function valueAt(value: unknown, pointer: string): unknown {
  if (pointer === '') return value;
  return pointer
    .slice(1)
    .split('/')
    .map((s) => s.replaceAll('~1', '/').replaceAll('~0', '~'))
    .reduce<unknown>(
      (n, k) => (isObject(n) || Array.isArray(n) ? (n as Json)[k] : undefined),
      value,
    );
}

function show(value: unknown): string {
  const json = JSON.stringify(value) ?? String(value);
  return json.length > 80 ? `${json.slice(0, 77)}...` : json;
}

/** Every response record of a run directory, with where it is. */
export function* readResponseRecords(
  dir: string,
): Generator<{ record: ResponseRecord; where: string }> {
  const files = readdirSync(dir)
    .filter((f) => /^responses-\d+\.jsonl$/.test(f))
    .sort();
  for (const file of files) {
    const lines = readFileSync(join(dir, file), 'utf8').split('\n');
    for (const [i, line] of lines.entries()) {
      if (line === '') continue;
      yield { record: JSON.parse(line) as ResponseRecord, where: `${file}:${i + 1}` };
    }
  }
}
