import { XdrReader } from './reader.js';
import { XdrWriter } from './writer.js';
import { XdrError } from './xdr-error.js';

/**
 * A pair of functions that put one XDR type on the wire and take it off again.
 * Structs, arrays and optionals are built from these, so a procedure's
 * argument and return types are declared once, as data, and TypeScript infers
 * the JavaScript shape from the declaration.
 */
export interface Codec<T> {
  encode(w: XdrWriter, v: T): void;
  decode(r: XdrReader): T;
}

export type Infer<C> = C extends Codec<infer T> ? T : never;

export const int: Codec<number> = {
  encode: (w, v) => w.writeInt(v),
  decode: (r) => r.readInt(),
};

export const uint: Codec<number> = {
  encode: (w, v) => w.writeUint(v),
  decode: (r) => r.readUint(),
};

export const hyper: Codec<bigint> = {
  encode: (w, v) => w.writeHyper(v),
  decode: (r) => r.readHyper(),
};

export const uhyper: Codec<bigint> = {
  encode: (w, v) => w.writeUhyper(v),
  decode: (r) => r.readUhyper(),
};

export const double: Codec<number> = {
  encode: (w, v) => w.writeDouble(v),
  decode: (r) => r.readDouble(),
};

export const bool: Codec<boolean> = {
  encode: (w, v) => w.writeBool(v),
  decode: (r) => r.readBool(),
};

/** XDR has no 8- or 16-bit types: `char`, `short` and their unsigned forms take 4 bytes. */
export const char: Codec<number> = int;
export const uchar: Codec<number> = uint;
export const short: Codec<number> = int;
export const ushort: Codec<number> = uint;

export const empty: Codec<void> = {
  encode: () => undefined,
  decode: () => undefined,
};

export function string(max: number): Codec<string> {
  return {
    encode: (w, v) => w.writeString(v, max),
    decode: (r) => r.readString(max),
  };
}

export function opaque(max: number): Codec<Buffer> {
  return {
    encode: (w, v) => w.writeOpaque(v, max),
    decode: (r) => r.readOpaque(max),
  };
}

export function fixedOpaque(length: number): Codec<Buffer> {
  return {
    encode: (w, v) => {
      if (v.length !== length)
        throw new XdrError(`fixed opaque needs ${length} bytes, got ${v.length}`);
      w.writeFixedOpaque(v);
    },
    decode: (r) => Buffer.from(r.readFixedOpaque(length)),
  };
}

/**
 * `char name[N]`: N characters, each widened to a 4-byte XDR int on the wire
 * (so 32 characters take 128 bytes). Decoded up to the first NUL.
 */
export function fixedCharString(length: number): Codec<string> {
  return {
    encode: (w, v) => {
      const bytes = Buffer.from(v, 'utf8');
      if (bytes.length > length) throw new XdrError(`string longer than char[${length}]`);
      for (let i = 0; i < length; i++) w.writeInt(i < bytes.length ? (bytes[i]! << 24) >> 24 : 0);
    },
    decode: (r) => {
      const bytes = Buffer.alloc(length);
      for (let i = 0; i < length; i++) bytes[i] = r.readInt() & 0xff;
      const nul = bytes.indexOf(0);
      return bytes.toString('utf8', 0, nul === -1 ? length : nul);
    },
  };
}

/** An XDR optional (`T *`): a 4-byte present flag, then the value when present. */
export function optional<T>(c: Codec<T>): Codec<T | null> {
  return {
    encode: (w, v) => {
      if (v === null || v === undefined) {
        w.writeUint(0);
      } else {
        w.writeUint(1);
        c.encode(w, v);
      }
    },
    decode: (r) => {
      const present = r.readUint();
      if (present === 0) return null;
      if (present !== 1) throw new XdrError(`invalid optional flag ${present}`);
      return c.decode(r);
    },
  };
}

/** A variable-length array `T x<max>`: a count, then the elements. */
export function array<T>(c: Codec<T>, max: number): Codec<T[]> {
  return {
    encode: (w, v) => {
      if (v.length > max) throw new XdrError(`array length ${v.length} exceeds maximum ${max}`);
      w.writeUint(v.length);
      for (const item of v) c.encode(w, item);
    },
    decode: (r) => {
      const n = r.readUint();
      if (n > max) throw new XdrError(`array length ${n} exceeds maximum ${max}`);
      // Each element takes at least 4 bytes; refuse counts the data cannot hold
      // before allocating for them.
      if (n * 4 > r.remaining) throw new XdrError(`array of ${n} elements overruns the data`);
      const out = new Array<T>(n);
      for (let i = 0; i < n; i++) out[i] = c.decode(r);
      return out;
    },
  };
}

/** A fixed-length array `T x[n]`: exactly n elements, no count. */
export function fixedArray<T>(c: Codec<T>, n: number): Codec<T[]> {
  return {
    encode: (w, v) => {
      if (v.length !== n) throw new XdrError(`fixed array needs ${n} elements, got ${v.length}`);
      for (const item of v) c.encode(w, item);
    },
    decode: (r) => {
      const out = new Array<T>(n);
      for (let i = 0; i < n; i++) out[i] = c.decode(r);
      return out;
    },
  };
}

type Fields = Record<string, Codec<unknown>>;
export type StructOf<F extends Fields> = { [K in keyof F]: Infer<F[K]> };

/** A struct: its fields in declaration order (JavaScript keeps string keys in insertion order). */
export function struct<F extends Fields>(fields: F): Codec<StructOf<F>> {
  const entries = Object.entries(fields);
  return {
    encode: (w, v) => {
      for (const [key, c] of entries) c.encode(w, (v as Record<string, unknown>)[key]);
    },
    decode: (r) => {
      const out: Record<string, unknown> = {};
      for (const [key, c] of entries) out[key] = c.decode(r);
      return out as StructOf<F>;
    },
  };
}

/** A discriminated union on an int: `arms` maps each discriminant to the codec of its value. */
export function union<A extends Record<number, Codec<unknown>>>(
  arms: A,
): Codec<{ [K in keyof A & number]: { type: K; value: Infer<A[K]> } }[keyof A & number]> {
  return {
    encode: (w, v) => {
      const arm = arms[v.type];
      if (!arm) throw new XdrError(`no union arm for discriminant ${v.type}`);
      w.writeInt(v.type);
      arm.encode(w, v.value);
    },
    decode: (r) => {
      const type = r.readInt();
      const arm = arms[type];
      if (!arm) throw new XdrError(`unknown union discriminant ${type}`);
      return { type, value: arm.decode(r) } as never;
    },
  };
}

/** Encodes a value alone (for tests and fixtures). */
export function encodeToBuffer<T>(c: Codec<T>, v: T): Buffer {
  const w = new XdrWriter();
  c.encode(w, v);
  return Buffer.from(w.finish());
}

/** Decodes a whole buffer, refusing trailing bytes. */
export function decodeFromBuffer<T>(c: Codec<T>, buf: Buffer): T {
  const r = new XdrReader(buf);
  const v = c.decode(r);
  r.assertEnd();
  return v;
}
