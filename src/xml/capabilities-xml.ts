/** The parts of libvirt's capabilities XML (virConnectGetCapabilities) a host view shows. */
import { attr, child, children, intText, parseXml, path, text } from './xml.js';

export interface GuestCapability {
  /** hvm, xen, exe… */
  osType: string;
  arch: string;
  wordSize: number | null;
  emulator: string | null;
  /** Domain types this arch can run: qemu (TCG), kvm… */
  domainTypes: string[];
  /** Machine types, canonical names first-seen order, aliases resolved (`pc` -> its canonical name is listed too). */
  machines: string[];
}

export interface CapabilitiesXml {
  hostArch: string | null;
  guests: GuestCapability[];
}

export function parseCapabilitiesXml(xml: string): CapabilitiesXml {
  const root = parseXml(xml);
  return {
    hostArch: text(path(root, 'host', 'cpu', 'arch')),
    guests: children(root, 'guest').flatMap((guest) => {
      const osType = text(child(guest, 'os_type')) ?? 'unknown';
      return children(guest, 'arch').map((arch) => ({
        osType,
        arch: attr(arch, 'name') ?? 'unknown',
        wordSize: intText(child(arch, 'wordsize')),
        emulator: text(child(arch, 'emulator')),
        domainTypes: [
          ...new Set(children(arch, 'domain').map((d) => attr(d, 'type') ?? 'unknown')),
        ],
        machines: [...new Set(children(arch, 'machine').map((m) => text(m) ?? ''))].filter(
          (m) => m !== '',
        ),
      }));
    }),
  };
}
