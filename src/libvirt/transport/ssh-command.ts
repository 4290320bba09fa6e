/**
 * The command run on the SSH server to reach its libvirt daemon, built as
 * libvirt 9.0 builds it (src/rpc/virnetclient.c, virNetClientSSHHelperCommand;
 * the `proxy=` and `netcat=` parameters of docs/uri.rst), so a server that
 * works with `virsh -c qemu+ssh://…` works with this client:
 *
 * - `netcat`: `nc -U <socket>`, with `-q0` when that nc has a `-q` option
 *   (Debian's OpenBSD nc would otherwise never exit after our end closes);
 * - `native`: `virt-ssh-helper <name URI>`, which finds the daemon itself;
 * - `auto`: virt-ssh-helper when the server has it, else netcat. A `netcat=`
 *   binary given with `auto` means netcat, as in libvirt.
 *
 * Unlike libvirt, every value is quoted, the socket path too.
 */
import { UriError } from '../errors.js';

export type SshProxyMode = 'auto' | 'native' | 'netcat';

export interface RemoteCommandOptions {
  readonly proxy: SshProxyMode;
  /** The `netcat=` binary, when given (default `nc`). */
  readonly netcat?: string;
  /** The daemon's UNIX socket on the server (for netcat). */
  readonly socketPath: string;
  /** The URI virt-ssh-helper opens there: the name sent in CONNECT_OPEN. */
  readonly name: string;
  /** virt-ssh-helper's `-r`: the helper's own connection read-only. */
  readonly readOnly?: boolean;
}

/** POSIX shell single quoting: the value reaches the program as one word, whatever it holds. */
export function shellQuote(value: string): string {
  return `'${value.replace(/'/g, `'\\''`)}'`;
}

/** The `proxy=` parameter, checked: libvirt knows these three modes. */
export function parseProxyMode(value: string | undefined): SshProxyMode {
  if (value === undefined || value === '') return 'auto';
  if (value === 'auto' || value === 'native' || value === 'netcat') return value;
  throw new UriError(`proxy=${value} is not a proxy mode (use auto, native or netcat)`);
}

/** netcat on the socket; `-q0` only where nc says `-q` takes an argument (libvirt's probe). */
function netcatCommand(netcat: string, socketPath: string): string {
  const nc = shellQuote(netcat);
  return (
    `if ${nc} -q 2>&1 | grep "requires an argument" >/dev/null 2>&1; then ARG=-q0; else ARG=; fi; ` +
    `exec ${nc} $ARG -U ${shellQuote(socketPath)}`
  );
}

function helperCommand(name: string, readOnly: boolean): string {
  return `exec virt-ssh-helper ${readOnly ? '-r ' : ''}${shellQuote(name)}`;
}

/**
 * The exec request's command line. It runs under `sh -c` whatever the user's
 * login shell is, the inner script quoted once more for that outer shell.
 */
export function remoteProxyCommand(options: RemoteCommandOptions): string {
  let proxy = options.proxy;
  if (proxy === 'auto' && options.netcat !== undefined) proxy = 'netcat';
  if (proxy === 'native' && options.netcat !== undefined) {
    throw new UriError('netcat= is not valid with proxy=native');
  }
  const nc = netcatCommand(options.netcat ?? 'nc', options.socketPath);
  const helper = helperCommand(options.name, options.readOnly ?? false);
  let script: string;
  switch (proxy) {
    case 'native':
      script = helper;
      break;
    case 'netcat':
      script = nc;
      break;
    case 'auto':
      script = `if command -v virt-ssh-helper >/dev/null 2>&1; then ${helper}; else ${nc}; fi`;
      break;
  }
  return `sh -c ${shellQuote(script)}`;
}
