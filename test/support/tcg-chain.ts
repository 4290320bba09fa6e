/**
 * A running TCG domain whose disk `vda` is a 4-image qcow2 chain
 * (base <- s1 <- s2 <- top), each layer holding a data pattern of its own,
 * and the independent witnesses of what a block job did to it: libvirt's live
 * XML, `qemu-img info --backing-chain`, and the patterns read back with qemu-io.
 */
import assert from 'node:assert/strict';
import { LibvirtClient, type RemoteDomain } from '#src/libvirt/index.js';
import { liveChain, tcgDomainXml, type ChainMember } from './domain-xml.js';
import {
  backingChain,
  createChain,
  hasPattern,
  makeImageDir,
  writePattern,
} from './qemu-images.js';

export const LAYERS = ['base', 's1', 's2', 'top'] as const;
export type Layer = (typeof LAYERS)[number];

/** Each layer's byte, written at its own offset (MiB). */
export const PATTERNS: Readonly<Record<Layer, number>> = {
  base: 0x11,
  s1: 0x22,
  s2: 0x33,
  top: 0x44,
};
export const OFFSETS: Readonly<Record<Layer, number>> = { base: 0, s1: 2, s2: 4, top: 6 };
/** Where a layer's extra MiB go (to make a job on it take a while under a bandwidth limit). */
const EXTRA_AT: Readonly<Record<Layer, number>> = { base: 1, s1: 3, s2: 12, top: 8 };

export interface ChainOptions {
  /** Extra MiB of the layer's pattern (top: at most 4, s2: at most 4). */
  extraMiB?: Partial<Record<Layer, number>>;
}

export class TcgChainDomain {
  private constructor(
    readonly client: LibvirtClient,
    readonly name: string,
    readonly dir: string,
    readonly paths: Readonly<Record<Layer, string>>,
    public dom: RemoteDomain,
    private readonly removeDir: () => Promise<void>,
  ) {}

  /** Creates the chain, writes the patterns, defines (persistent) and starts the domain. */
  static async create(
    client: LibvirtClient,
    name: string,
    options: ChainOptions = {},
  ): Promise<TcgChainDomain> {
    const images = await makeImageDir(name);
    const list = await createChain(images.dir, [...LAYERS]);
    const paths = Object.fromEntries(LAYERS.map((l, i) => [l, list[i]!])) as Record<Layer, string>;
    for (const layer of LAYERS) {
      await writePattern(paths[layer], PATTERNS[layer], OFFSETS[layer]);
      for (let i = 0; i < (options.extraMiB?.[layer] ?? 0); i++) {
        await writePattern(paths[layer], PATTERNS[layer], EXTRA_AT[layer] + i);
      }
    }
    const defined = await client.rpc.domainDefineXmlFlags({
      xml: tcgDomainXml(name, paths.top),
      flags: 0,
    });
    const dom = (await client.rpc.domainCreateWithFlags({ dom: defined.dom, flags: 0 })).dom;
    return new TcgChainDomain(client, name, images.dir, paths, dom, images.remove);
  }

  async liveChain(): Promise<ChainMember[]> {
    return liveChain(
      (await this.client.rpc.domainGetXmlDesc({ dom: this.dom, flags: 0 })).xml,
      'vda',
    );
  }

  async persistentTop(): Promise<string | null> {
    const xml = (await this.client.rpc.domainGetXmlDesc({ dom: this.dom, flags: 2 })).xml;
    return liveChain(xml, 'vda')[0]?.path ?? null;
  }

  /**
   * The live chain is `expected` (paths, top first), every member carries an
   * index, and qemu-img sees the same chain from the top image.
   */
  async assertChain(expected: readonly string[], what = 'the chain'): Promise<ChainMember[]> {
    const live = await this.liveChain();
    assert.deepEqual(
      live.map((m) => m.path),
      expected,
      `${what}: libvirt's live XML`,
    );
    assert.ok(
      live.every((m) => m.index !== null),
      `${what}: every member has an index`,
    );
    const qemu = await backingChain(expected[0]!);
    assert.deepEqual(
      qemu.map((i) => i.filename),
      expected,
      `${what}: qemu-img info --backing-chain`,
    );
    return live;
  }

  /**
   * Reads each layer's pattern back through `image` (and so through its
   * backing chain), with the domain paused: pausing makes QEMU flush its
   * qcow2 metadata to the files.
   */
  async assertPatterns(image: string, layers: readonly Layer[] = LAYERS): Promise<void> {
    await this.client.rpc.domainSuspend({ dom: this.dom });
    try {
      for (const layer of layers) {
        assert.ok(
          await hasPattern(image, PATTERNS[layer], OFFSETS[layer]),
          `${layer}'s data (0x${PATTERNS[layer].toString(16)} at ${OFFSETS[layer]} MiB) reads back through ${image}`,
        );
      }
    } finally {
      await this.client.rpc.domainResume({ dom: this.dom });
    }
  }

  /** Whether `image` alone (with what backs it) holds `layer`'s pattern; the domain is paused meanwhile. */
  async holds(image: string, layer: Layer): Promise<boolean> {
    await this.client.rpc.domainSuspend({ dom: this.dom });
    try {
      return await hasPattern(image, PATTERNS[layer], OFFSETS[layer]);
    } finally {
      await this.client.rpc.domainResume({ dom: this.dom });
    }
  }

  async remove(): Promise<void> {
    try {
      await this.client.rpc.domainDestroyFlags({ dom: this.dom, flags: 0 }).catch(() => undefined);
      await this.client.rpc.domainUndefineFlags({ dom: this.dom, flags: 0 }).catch(() => undefined);
    } finally {
      await this.removeDir();
    }
  }
}
